package camera

import (
	"context"
	"errors"
	"image"
	"time"
)

// Frame is one grayscale (luminance only) picture from a FrameSource.
type Frame struct {
	// Gray holds the luminance. It belongs to the FrameSource, which may
	// reuse it on the next call to Next; callers must not modify it and
	// must copy it to keep it.
	Gray *image.Gray
	// At is when the frame was taken (or read), from the process clock.
	At time.Time
	// Seq numbers the frames of one source from 1 up.
	Seq uint64
}

// FrameSource yields frames. Next blocks until a frame is ready, ctx is
// done (it returns ctx.Err()), the source ends (io.EOF) or the device is
// gone (an error wrapping ErrDeviceGone). Next and Close are not safe for
// concurrent use; Close releases the device and may be called once.
type FrameSource interface {
	Next(ctx context.Context) (Frame, error)
	Close() error
}

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrDeviceGone: the camera went away (unplugged, read error, stall).
	// Source reopens it with backoff.
	ErrDeviceGone = errors.New("camera gone")
	// ErrUnsupported: the device cannot deliver what the config asks for;
	// the message lists what it can.
	ErrUnsupported = errors.New("camera format not supported")
	// ErrBadFrame: a frame could not be converted to gray (a corrupt or
	// truncated JPEG, a short YUYV buffer). It is skipped.
	ErrBadFrame = errors.New("bad frame")
	// ErrConfig: a config field is invalid; the message names it.
	ErrConfig = errors.New("invalid config")
)

// copyGray copies src into dst, reusing dst's pixels when they are large
// enough, and returns the copy with bounds starting at (0, 0).
func copyGray(dst, src *image.Gray) *image.Gray {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	dst = sizedGray(dst, w, h)
	for y := range h {
		i := src.PixOffset(b.Min.X, b.Min.Y+y)
		copy(dst.Pix[y*w:(y+1)*w], src.Pix[i:i+w])
	}
	return dst
}

// sizedGray returns a w by h gray image, reusing g's pixels if it can.
func sizedGray(g *image.Gray, w, h int) *image.Gray {
	n := w * h
	if g == nil || cap(g.Pix) < n {
		return image.NewGray(image.Rect(0, 0, w, h))
	}
	g.Pix = g.Pix[:n]
	g.Stride = w
	g.Rect = image.Rect(0, 0, w, h)
	return g
}
