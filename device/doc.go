// Package device reads voucher codes from scanners. A Source delivers each
// complete read as a Scan on a channel and keeps running across unplugs and
// bad input; it only frames bytes, it never interprets them.
//
// Framing is done by Framer, a pure type that turns bytes and their arrival
// times into frames. HoldOff suppresses the repeats of a code held in front of
// the reader, whichever Source produced it.
package device
