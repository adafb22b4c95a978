package device

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tarm/serial"

	"wicket/internal/clock"
)

// SerialConfig configures a SerialSource.
type SerialConfig struct {
	// Device is the serial device. Prefer the stable link under
	// /dev/serial/by-id/ (for example
	// /dev/serial/by-id/usb-Newland_Auto-ID_NLS-FR40-if00) over
	// /dev/ttyACM0 or /dev/ttyUSB0, whose number can change when the
	// scanner is plugged in again. Required.
	Device string
	// Baud is the line speed. Zero means DefaultBaud. USB CDC-ACM scanners
	// ignore it.
	Baud int
	// Terminator is what the scanner sends after each code. Zero means
	// DefaultTerminator.
	Terminator Terminator
	// MaxFrame bounds one frame in bytes; longer input is dropped, counted
	// and logged, and reading resyncs at the next terminator. Zero means
	// DefaultMaxFrame.
	MaxFrame int
	// InterByteTimeout ends a partial frame after this much silence. Zero
	// means DefaultInterByteTimeout; negative disables it.
	InterByteTimeout time.Duration
	// FlushPartial delivers a timed-out partial frame as a scan, for
	// scanners configured without a terminator. By default it is dropped.
	FlushPartial bool
	// StripAIM removes an AIM symbology identifier such as "]Q1" from the
	// start of each frame; see Scan.Symbology.
	StripAIM bool
	// ReadTimeout bounds one read, and so how soon Run notices that its
	// context is done. Zero means DefaultReadTimeout; it is rounded to
	// tenths of a second, at least 100 ms.
	ReadTimeout time.Duration
	// RetryMin and RetryMax bound the wait between attempts to open the
	// device when it is missing or went away. Zero means DefaultRetryMin
	// and DefaultRetryMax.
	RetryMin, RetryMax time.Duration
}

// Bauds are the standard line speeds, the ones the serial driver can set.
var Bauds = []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600}

func (c SerialConfig) withDefaults() SerialConfig {
	if c.Baud == 0 {
		c.Baud = DefaultBaud
	}
	if c.Terminator == 0 {
		c.Terminator = DefaultTerminator
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.InterByteTimeout == 0 {
		c.InterByteTimeout = DefaultInterByteTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	c.ReadTimeout = max(c.ReadTimeout, 100*time.Millisecond)
	if c.RetryMin == 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	return c
}

// Validate reports the first invalid field, naming it and the fix. Zero
// values are valid: they stand for the defaults.
func (c SerialConfig) Validate() error {
	if c.Device == "" {
		return fmt.Errorf("%w: Device is empty: set the scanner's path, for example its /dev/serial/by-id/usb- path", ErrConfig)
	}
	if c.Baud != 0 && !slices.Contains(Bauds, c.Baud) {
		return fmt.Errorf("%w: Baud %d: use one of %s", ErrConfig, c.Baud, strings.Trim(fmt.Sprint(Bauds), "[]"))
	}
	if err := (FramerConfig{Terminator: c.Terminator, MaxFrame: c.MaxFrame}).Validate(); err != nil {
		return err
	}
	if c.ReadTimeout < 0 || c.ReadTimeout > 25*time.Second {
		return fmt.Errorf("%w: ReadTimeout %v: use 100ms to 25s, or 0 for %v", ErrConfig, c.ReadTimeout, DefaultReadTimeout)
	}
	if c.RetryMin < 0 || c.RetryMax < 0 {
		return fmt.Errorf("%w: RetryMin %v, RetryMax %v: use positive durations, or 0 for the defaults", ErrConfig, c.RetryMin, c.RetryMax)
	}
	if d := c.withDefaults(); d.RetryMin > d.RetryMax {
		return fmt.Errorf("%w: RetryMin %v is above RetryMax %v: lower RetryMin or raise RetryMax", ErrConfig, d.RetryMin, d.RetryMax)
	}
	return nil
}

func (c SerialConfig) framer() FramerConfig {
	f := FramerConfig{
		Terminator:   c.Terminator,
		MaxFrame:     c.MaxFrame,
		FlushPartial: c.FlushPartial,
		StripAIM:     c.StripAIM,
	}
	if c.InterByteTimeout > 0 {
		f.InterByteTimeout = c.InterByteTimeout
	}
	return f
}

// SourceOptions are the optional collaborators of a scan source, a
// SerialSource or a camera.Source.
type SourceOptions struct {
	// Logger receives the source's log lines, which carry the device's
	// path or name; scope it for the role (component=scanner,
	// component=thermometer). Nil discards them.
	Logger *slog.Logger
	// OnState is called from Run when the device comes or goes:
	// (true, nil) once it is open, (false, err) when it cannot be opened or
	// is lost. It is called on changes only, not on every failed retry, and
	// must not block.
	OnState func(connected bool, err error)
	// Clock stamps scans and times the source's waits: a serial line's
	// inter-byte timeout, a camera's decodes and MaxDecodeRate, and the
	// waits between attempts to open the device. Nil means the real clock.
	Clock clock.Clock
}

// SerialStats counts what a SerialSource saw since it was made.
type SerialStats struct {
	Frames      uint64 // scans delivered
	TooLong     uint64 // frames dropped for being over MaxFrame
	Partial     uint64 // partial frames dropped after InterByteTimeout
	Flushed     uint64 // partial frames delivered because of FlushPartial
	Disconnects uint64 // times an open device was lost
	Connected   bool   // whether the device is open now
}

// SerialSource reads scans from a scanner on a serial port (USB CDC-ACM,
// USB serial adapter or UART). It opens the device, reopens it with
// backoff whenever it is missing or fails, and keeps running until its
// context is done.
type SerialSource struct {
	cfg   SerialConfig
	log   *slog.Logger
	clock clock.Clock
	link  *Reconnector

	frames, tooLong, partial, flushed atomic.Uint64

	// Used by the Run goroutine only.
	limit *LogLimiter
}

// NewSerialSource checks cfg and returns a source for it. It does not open
// the device; Run does.
func NewSerialSource(cfg SerialConfig, opts SourceOptions) (*SerialSource, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("device", cfg.Device)
	clk := clock.OrReal(opts.Clock)
	return &SerialSource{
		cfg:   cfg,
		log:   log,
		clock: clk,
		link: NewReconnector(ReconnectConfig{
			RetryMin: cfg.RetryMin, RetryMax: cfg.RetryMax,
			Clock: clk, Logger: log, OnState: opts.OnState,
		}),
		limit: NewLogLimiter(logEvery),
	}, nil
}

// Stats returns the counters. It is safe to call while Run runs.
func (s *SerialSource) Stats() SerialStats {
	return SerialStats{
		Frames:      s.frames.Load(),
		TooLong:     s.tooLong.Load(),
		Partial:     s.partial.Load(),
		Flushed:     s.flushed.Load(),
		Disconnects: s.link.Disconnects(),
		Connected:   s.link.Connected(),
	}
}

// Run implements Source. It opens the device, delivers scans, and when the
// device is missing or a read fails it reports that (OnState, log), closes
// the port and tries again with exponential backoff and jitter, resuming by
// itself when the device is back. It returns nil once ctx is done, within
// about ReadTimeout; it has no other way to end.
func (s *SerialSource) Run(ctx context.Context, out chan<- Scan) error {
	return s.link.Run(ctx, func(ctx context.Context, opened func()) error {
		port, lock, err := s.open()
		if err != nil {
			return fmt.Errorf("open scanner: %w", err)
		}
		defer lock.Close()
		defer func() {
			if cerr := port.Close(); cerr != nil {
				s.log.Debug("close port", "err", cerr)
			}
		}()
		opened()
		return s.read(ctx, port, out)
	})
}

// open locks the device and opens it as a serial port.
func (s *SerialSource) open() (*serial.Port, io.Closer, error) {
	lock, err := LockPort(s.cfg.Device)
	if err != nil {
		return nil, nil, err
	}
	port, err := serial.OpenPort(&serial.Config{
		Name:        s.cfg.Device,
		Baud:        s.cfg.Baud,
		ReadTimeout: s.cfg.ReadTimeout,
	})
	if err != nil {
		lock.Close()
		return nil, nil, err
	}
	return port, lock, nil
}

// read delivers scans from an open port until ctx is done (nil) or the
// port fails (an error wrapping ErrDisconnected).
//
// With a read timeout set, the serial driver returns (0, io.EOF) when no
// byte came in time: that is not the end of the stream. A hung-up line
// (an unplugged USB device) also reads as (0, io.EOF), but at once rather
// than after the timeout, so several fast ones in a row mean it is gone; the
// device path vanishing means the same.
//
// The inter-byte timeout counts only silence while read is reading: time
// spent waiting for out (the decision loop busy with an allowed scan) is
// not silence, since the scanner's bytes wait in the kernel's buffer
// meanwhile, and a code must not split because the gate was busy.
func (s *SerialSource) read(ctx context.Context, port io.Reader, out chan<- Scan) error {
	fr, err := NewFramer(s.cfg.framer())
	if err != nil {
		return err
	}
	buf := make([]byte, readChunk)
	fast := 0
	for ctx.Err() == nil {
		start := s.clock.Now()
		n, err := port.Read(buf)
		now := s.clock.Now()
		var frames []Frame
		if n > 0 {
			frames = fr.Feed(buf[:n], now)
		} else {
			frames = fr.Tick(now)
		}
		if len(frames) > 0 {
			if !s.deliver(ctx, frames, out) {
				return nil
			}
			// deliver may have waited for the decision loop: the rest of
			// a code may have been in the kernel's buffer all along.
			fr.Resume(s.clock.Now())
		}
		switch {
		case err == nil:
			fast = 0
		case !errors.Is(err, io.EOF):
			return fmt.Errorf("%w: %w", ErrDisconnected, err)
		case n > 0:
			fast = 0
		default:
			if now.Sub(start) < s.cfg.ReadTimeout/2 {
				fast++
			} else {
				fast = 0
			}
			if fast >= maxFastEOF {
				return fmt.Errorf("%w: %s: line hung up", ErrDisconnected, s.cfg.Device)
			}
			if _, serr := os.Stat(s.cfg.Device); serr != nil {
				return fmt.Errorf("%w: %w", ErrDisconnected, serr)
			}
		}
	}
	return nil
}

// deliver sends the good frames as scans and counts and logs the rest.
// It reports false if ctx was done first.
func (s *SerialSource) deliver(ctx context.Context, frames []Frame, out chan<- Scan) bool {
	for _, f := range frames {
		switch {
		case f.Err == nil:
			s.frames.Add(1)
			if f.Flushed {
				s.flushed.Add(1)
			}
			s.log.Debug("scan", "bytes", len(f.Data), "symbology", f.Symbology)
			select {
			case out <- Scan{Payload: f.Data, Source: s.cfg.Device, At: f.At, Symbology: f.Symbology}:
			case <-ctx.Done():
				return false
			}
		case errors.Is(f.Err, ErrFrameTooLong):
			s.tooLong.Add(1)
			s.logDropped("too_long", f)
		default:
			s.partial.Add(1)
			s.logDropped("partial", f)
		}
	}
	return true
}

func (s *SerialSource) logDropped(kind string, f Frame) {
	ok, held := s.limit.Allow(kind, f.At)
	if !ok {
		return
	}
	s.log.Warn("dropped scanner input", "err", f.Err, "start", HexDump(f.Data), "max_frame", s.cfg.MaxFrame, "suppressed", held)
}

// ErrPortBusy: another process holds the serial port (a running wicketd,
// or its field tool test-scanner).
var ErrPortBusy = errors.New("serial port held by another process")

// LockPort takes an exclusive advisory lock (flock) on the serial device
// at path, so that two readers never split one scanner's frames between
// them: the gate holds it while the port is open, and so does wicketd
// test-scanner. It fails at once, with ErrPortBusy, if another process
// holds it. Close releases it.
func LockPort(path string) (io.Closer, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrPortBusy, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}
