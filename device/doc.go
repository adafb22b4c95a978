// Package device reads voucher codes from scanners. A Source delivers each
// complete read as a Scan on a channel and keeps running across unplugs and
// bad input; it only frames bytes, it never interprets them.
//
// Framing is done by Framer, a pure type that turns bytes and their arrival
// times into frames. HoldOff suppresses the repeats of a code held in front of
// the reader, whichever Source produced it. A Reconnector keeps a device open
// for a source (the serial port here, the camera in device/camera): it reopens
// it with backoff and logs each change of state once. Sources leave the log's
// component to their caller, who knows the role (scanner, thermometer).
package device
