// Package camera reads QR codes from a camera behind the gate's glass and
// delivers them as device.Scan values, like a hand-held scanner would.
//
// A FrameSource yields grayscale frames (a V4L2 device, or image files and
// MJPEG streams for demos and tests); Source pulls them, keeps only the
// latest frame while the decoder is busy, bounds the decode rate and
// reopens the device with backoff when it goes away.
package camera
