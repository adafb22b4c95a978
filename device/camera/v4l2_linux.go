//go:build linux

package camera

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"time"
	"wicket/device"

	"github.com/blackjack/webcam"
	"golang.org/x/sys/unix"
)

// V4L2 is a Video4Linux camera streaming through mmap'd buffers. Each
// frame's luminance is copied out of the driver's buffer, which is handed
// back at once, into a gray image that Next reuses.
type V4L2 struct {
	cam    *webcam.Webcam
	cfg    V4L2Config
	log    *slog.Logger
	code   uint32
	w, h   int
	gray   *image.Gray
	jpg    []byte
	seq    uint64
	last   time.Time
	limit  *device.LogLimiter
	closed bool
}

var _ FrameSource = (*V4L2)(nil)

// OpenV4L2 opens the camera, picks the pixel format and the supported size
// closest to the one asked for, and starts streaming. log may be nil.
//
// Errors: ErrConfig for a bad cfg; ErrUnsupported if the camera cannot
// deliver cfg.Format (the message lists what it offers); otherwise the
// error of the step that failed, naming the device.
func OpenV4L2(cfg V4L2Config, log *slog.Logger) (*V4L2, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("device", cfg.Device)
	cam, err := webcam.Open(cfg.Device)
	if err != nil {
		return nil, fmt.Errorf("open camera %s: %w", cfg.Device, err)
	}
	v := &V4L2{cam: cam, cfg: cfg, log: log, limit: device.NewLogLimiter(logEvery)}
	if err := v.setup(); err != nil {
		if cerr := cam.Close(); cerr != nil {
			log.Debug("close camera", "err", cerr)
		}
		return nil, fmt.Errorf("open camera %s: %w", cfg.Device, err)
	}
	return v, nil
}

func (v *V4L2) setup() error {
	var codes []uint32
	for c := range v.cam.GetSupportedFormats() {
		codes = append(codes, uint32(c))
	}
	code, err := chooseFormat(codes, v.cfg.Format)
	if err != nil {
		return err
	}
	var sizes []sizeRange
	for _, s := range v.cam.GetSupportedFrameSizes(webcam.PixelFormat(code)) {
		sizes = append(sizes, sizeRange{s.MinWidth, s.MaxWidth, s.StepWidth, s.MinHeight, s.MaxHeight, s.StepHeight})
	}
	w, h, ok := chooseSize(sizes, uint32(v.cfg.Width), uint32(v.cfg.Height))
	if !ok {
		w, h = uint32(v.cfg.Width), uint32(v.cfg.Height)
	}
	got, _, _, err := v.cam.SetImageFormat(webcam.PixelFormat(code), w, h)
	if err != nil {
		return fmt.Errorf("set format %s %dx%d: %w", fourccString(code), w, h, err)
	}
	if uint32(got) != code {
		return fmt.Errorf("%w: asked for %s, the driver set %s", ErrUnsupported, fourccString(code), fourccString(uint32(got)))
	}
	v.code, v.w, v.h = code, int(w), int(h)
	if v.cfg.FPS > 0 {
		if err := v.cam.SetFramerate(float32(v.cfg.FPS)); err != nil {
			v.log.Info("camera ignores the frame rate", "fps", v.cfg.FPS, "err", err)
		}
	}
	if err := v.cam.SetBufferCount(v4l2Buffers); err != nil {
		return err
	}
	if err := v.cam.StartStreaming(); err != nil {
		return err
	}
	v.log.Info("camera streaming", "format", fourccString(code), "width", w, "height", h)
	return nil
}

// Next returns the next frame that converts to gray; frames that do not
// (a corrupt JPEG) are skipped and logged, rate-limited. It blocks until a
// frame comes, ctx is done (noticed within a second; it returns
// ctx.Err()), or the camera is gone: a read error (ENODEV once unplugged)
// or no frame for StallTimeout, returned wrapping ErrDeviceGone. The
// frame's image is reused by the next call.
func (v *V4L2) Next(ctx context.Context) (Frame, error) {
	if v.closed {
		return Frame{}, fmt.Errorf("%w: closed", ErrDeviceGone)
	}
	if v.last.IsZero() {
		v.last = time.Now()
	}
	for {
		if err := ctx.Err(); err != nil {
			return Frame{}, err
		}
		err := v.cam.WaitForFrame(1)
		var timeout *webcam.Timeout
		if errors.As(err, &timeout) {
			if since := time.Since(v.last); since >= v.cfg.StallTimeout {
				return Frame{}, fmt.Errorf("%w: %s: no frame for %v", ErrDeviceGone, v.cfg.Device, since.Round(time.Second))
			}
			continue
		}
		if err != nil {
			return Frame{}, fmt.Errorf("%w: %s: wait for frame: %w", ErrDeviceGone, v.cfg.Device, err)
		}
		buf, idx, err := v.cam.GetFrame()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return Frame{}, fmt.Errorf("%w: %s: read frame: %w", ErrDeviceGone, v.cfg.Device, err)
		}
		at := time.Now()
		v.last = at
		var cerr error
		if v.code == fourcc("YUYV") {
			v.gray, cerr = YUYVToGray(v.gray, buf, v.w, v.h)
		} else {
			v.jpg = append(v.jpg[:0], buf...)
		}
		if err := v.cam.ReleaseFrame(idx); err != nil {
			return Frame{}, fmt.Errorf("%w: %s: requeue buffer: %w", ErrDeviceGone, v.cfg.Device, err)
		}
		if v.code != fourcc("YUYV") {
			v.gray, cerr = JPEGToGray(v.gray, v.jpg)
		}
		if cerr != nil {
			if ok, held := v.limit.Allow("bad_frame", at); ok {
				v.log.Warn("skipped camera frame", "err", cerr, "bytes", len(buf), "suppressed", held)
			}
			continue
		}
		v.seq++
		return Frame{Gray: v.gray, At: at, Seq: v.seq}, nil
	}
}

// Close stops streaming and closes the device. It is safe to call again.
func (v *V4L2) Close() error {
	if v.closed {
		return nil
	}
	v.closed = true
	return v.cam.Close()
}
