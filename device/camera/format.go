package camera

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Format is the pixel format asked of a V4L2 camera.
type Format string

const (
	// FormatYUYV is packed YUV 4:2:2. The luminance is every other byte,
	// so frames cost no decoding; 640x480 at 30 fps is 18 MB/s, within
	// USB 2.0.
	FormatYUYV Format = "YUYV"
	// FormatMJPEG is a JPEG per frame: less bandwidth, for larger frames
	// or cameras that offer nothing else, at the cost of a JPEG decode.
	FormatMJPEG Format = "MJPEG"
)

// DefaultFormat is the format asked of a camera when none is set: raw
// frames cost no decoding.
const DefaultFormat = FormatYUYV

// UnmarshalText parses "yuyv" or "mjpeg" (any case), so config files can
// name the format.
func (f *Format) UnmarshalText(b []byte) error {
	v := Format(strings.ToUpper(string(b)))
	if v.codes() == nil {
		return fmt.Errorf("%w: format %q: use yuyv or mjpeg", ErrConfig, b)
	}
	*f = v
	return nil
}

// MarshalText returns the format in lower case, as config files write it.
func (f Format) MarshalText() ([]byte, error) {
	return []byte(strings.ToLower(string(f))), nil
}

// fourcc returns the V4L2 pixel format code of four characters.
func fourcc(s string) uint32 {
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

// fourccString spells a V4L2 pixel format code.
func fourccString(c uint32) string {
	b := []byte{byte(c), byte(c >> 8), byte(c >> 16), byte(c >> 24)}
	return strings.TrimRight(string(b), " \x00")
}

// codes returns the V4L2 codes that deliver f, preferred first.
func (f Format) codes() []uint32 {
	switch f {
	case FormatYUYV:
		return []uint32{fourcc("YUYV")}
	case FormatMJPEG:
		return []uint32{fourcc("MJPG"), fourcc("JPEG")}
	}
	return nil
}

// chooseFormat returns the code of the device's formats that delivers
// want, or an ErrUnsupported error listing what the device offers.
func chooseFormat(supported []uint32, want Format) (uint32, error) {
	for _, c := range want.codes() {
		if slices.Contains(supported, c) {
			return c, nil
		}
	}
	names := make([]string, 0, len(supported))
	for _, c := range supported {
		names = append(names, fourccString(c))
	}
	slices.Sort(names)
	return 0, fmt.Errorf("%w: %s: the device offers %s", ErrUnsupported, want, strings.Join(names, ", "))
}

// sizeRange is one frame size a device supports: a discrete size when the
// steps are zero (min equals max), else a stepwise range.
type sizeRange struct {
	minW, maxW, stepW uint32
	minH, maxH, stepH uint32
}

// fit returns the value closest to v in [lo, hi] on the grid lo + k*step.
func fit(v, lo, hi, step uint32) uint32 {
	if v <= lo || hi <= lo {
		return lo
	}
	if v >= hi {
		return hi
	}
	if step <= 1 {
		return v
	}
	k := (v - lo + step/2) / step
	return min(lo+k*step, hi)
}

// chooseSize returns the supported size closest to w by h: least
// difference in pixel count, then in width. ok is false if sizes has no
// usable entry (zero sizes are ignored).
func chooseSize(sizes []sizeRange, w, h uint32) (bw, bh uint32, ok bool) {
	best := math.Inf(1)
	for _, r := range sizes {
		cw := fit(w, r.minW, max(r.maxW, r.minW), r.stepW)
		ch := fit(h, r.minH, max(r.maxH, r.minH), r.stepH)
		if cw == 0 || ch == 0 || cw > MaxFrameSide || ch > MaxFrameSide {
			continue
		}
		d := math.Abs(float64(cw)*float64(ch)-float64(w)*float64(h))*4 + math.Abs(float64(cw)-float64(w))
		if d < best {
			best, bw, bh, ok = d, cw, ch, true
		}
	}
	return bw, bh, ok
}

// V4L2Config configures a V4L2 camera.
type V4L2Config struct {
	// Device is the video device. Prefer the stable link under
	// /dev/v4l/by-id/ (for example
	// /dev/v4l/by-id/usb-046d_C270_HD_WEBCAM_1A2B3C4D-video-index0) or
	// /dev/v4l/by-path/ over /dev/video0, whose number can change when a
	// camera is plugged in again. Required.
	Device string
	// Format is the pixel format asked of the camera. Empty means
	// DefaultFormat. Opening fails with ErrUnsupported, listing the formats
	// the camera offers, if it cannot deliver it.
	Format Format
	// Width and Height are the frame size wanted; the camera's supported
	// size closest to it is used. Zero means DefaultWidth by
	// DefaultHeight.
	Width, Height int
	// FPS is the frame rate asked of the driver, which may round it or
	// ignore it. Zero leaves the driver's default. The Source caps the
	// rate it takes frames at anyway (Config.MaxFPS).
	FPS float64
	// StallTimeout is how long the camera may deliver no frame before it
	// counts as gone. Zero means DefaultStallTimeout.
	StallTimeout time.Duration
}

func (c V4L2Config) withDefaults() V4L2Config {
	if c.Format == "" {
		c.Format = DefaultFormat
	}
	if c.Width == 0 {
		c.Width = DefaultWidth
	}
	if c.Height == 0 {
		c.Height = DefaultHeight
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	return c
}

// Validate reports the first invalid field, naming it and the fix. Zero
// values are valid: they stand for the defaults.
func (c V4L2Config) Validate() error {
	if c.Device == "" {
		return fmt.Errorf("%w: Device is empty: set the camera's path, for example /dev/v4l/by-id/usb-...-video-index0", ErrConfig)
	}
	if c.Format != "" && c.Format.codes() == nil {
		return fmt.Errorf("%w: Format %q: use %q or %q", ErrConfig, c.Format, FormatYUYV, FormatMJPEG)
	}
	if c.Width < 0 || c.Height < 0 || c.Width > MaxFrameSide || c.Height > MaxFrameSide {
		return fmt.Errorf("%w: Width %d, Height %d: use 1 to %d, or 0 for %dx%d", ErrConfig, c.Width, c.Height, MaxFrameSide, DefaultWidth, DefaultHeight)
	}
	if c.FPS < 0 || c.FPS > 1000 || math.IsNaN(c.FPS) {
		return fmt.Errorf("%w: FPS %v: use 1 to 1000, or 0 for the driver's default", ErrConfig, c.FPS)
	}
	if c.StallTimeout < 0 {
		return fmt.Errorf("%w: StallTimeout %v: use a positive duration, or 0 for %v", ErrConfig, c.StallTimeout, DefaultStallTimeout)
	}
	return nil
}
