package camera

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"wicket/device"
	"wicket/internal/clock"
)

// Decoder finds and reads one code in a gray image. *qr.Decoder from
// wicket/decoder/qr is one. Any error means no code in the frame. A
// Decoder is used by one goroutine at a time and must not modify the
// image.
type Decoder interface {
	DecodeGray(*image.Gray) ([]byte, error)
}

// Config configures a Source.
type Config struct {
	// Name names the camera in scans (Scan.Source is "camera:" + Name) and
	// logs; normally the device path. Required.
	Name string
	// MaxFPS caps the frames taken per second; frames that come sooner
	// than 7/8 of 1/MaxFPS after the last one taken are skipped, so the
	// jitter of a camera at twice the cap does not halve the rate. Zero
	// means DefaultMaxFPS; negative takes every frame.
	MaxFPS float64
	// MaxDecodeRate caps the decodes per second, so a camera never keeps
	// a small board's cores busy. Zero means no cap beyond one decode at
	// a time.
	MaxDecodeRate float64
	// RepeatAfter is how long the payload emitted last is not emitted
	// again. It only keeps a code held in front of the camera from
	// sending a scan for every frame: the decision loop's device.HoldOff
	// is the real hold-off, and needs to keep seeing the code to keep it
	// held, so keep RepeatAfter below the hold-off window. Zero means
	// DefaultRepeatAfter; negative emits every decode.
	RepeatAfter time.Duration
	// RetryMin and RetryMax bound the wait between attempts to open the
	// camera when it is missing or went away. Zero means DefaultRetryMin
	// and DefaultRetryMax.
	RetryMin, RetryMax time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxFPS == 0 {
		c.MaxFPS = DefaultMaxFPS
	}
	if c.RepeatAfter == 0 {
		c.RepeatAfter = DefaultRepeatAfter
	}
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
func (c Config) Validate() error {
	if c.Name == "" {
		return fmt.Errorf("%w: Name is empty: set it to the camera's device path", ErrConfig)
	}
	if math.IsNaN(c.MaxFPS) || c.MaxFPS > 1000 {
		return fmt.Errorf("%w: MaxFPS %v: use up to 1000, 0 for %d, or negative for no cap", ErrConfig, c.MaxFPS, DefaultMaxFPS)
	}
	if c.MaxDecodeRate < 0 || c.MaxDecodeRate > 1000 || math.IsNaN(c.MaxDecodeRate) {
		return fmt.Errorf("%w: MaxDecodeRate %v: use up to 1000 decodes a second, or 0 for no cap", ErrConfig, c.MaxDecodeRate)
	}
	if c.RetryMin < 0 || c.RetryMax < 0 {
		return fmt.Errorf("%w: RetryMin %v, RetryMax %v: use positive durations, or 0 for the defaults", ErrConfig, c.RetryMin, c.RetryMax)
	}
	if d := c.withDefaults(); d.RetryMin > d.RetryMax {
		return fmt.Errorf("%w: RetryMin %v is above RetryMax %v: lower RetryMin or raise RetryMax", ErrConfig, d.RetryMin, d.RetryMax)
	}
	return nil
}

// Stats counts what a Source saw since it was made.
type Stats struct {
	FramesRead    uint64        // frames returned by the frame source
	FramesSkipped uint64        // frames over MaxFPS, not looked at
	FramesDropped uint64        // frames replaced by a newer one while the decoder was busy
	Decodes       uint64        // frames decoded
	Found         uint64        // decodes that found a code
	Repeats       uint64        // codes not emitted because of RepeatAfter
	Scans         uint64        // scans delivered
	Disconnects   uint64        // times an open camera was lost
	LastDecode    time.Duration // duration of the last decode
	AvgDecode     time.Duration // mean duration of a decode
	Connected     bool          // whether the camera is open now
}

// Source reads codes from a camera (any FrameSource). It implements
// device.Source: Run opens the frame source, reads frames in a goroutine of
// its own and decodes them one at a time. A frame that comes while the
// decoder is busy replaces the one waiting, if any: the latest frame wins,
// so decoding never lags behind the camera and the frames waiting are
// never more than one.
type Source struct {
	cfg   Config
	open  func() (FrameSource, error)
	dec   Decoder
	log   *slog.Logger
	clock clock.Clock
	link  *device.Reconnector

	frameEvery, decodeEvery time.Duration

	read, skipped, dropped, decodes, found, repeats, scans atomic.Uint64
	lastNs, totalNs                                        atomic.Int64

	// Used by the Run goroutine only.
	lastPayload []byte
	lastAt      time.Time
}

var _ device.Source = (*Source)(nil)

// NewSource checks cfg and returns a source that opens frames with open
// (for example a closure calling OpenV4L2) and decodes them with dec. It
// opens nothing; Run does.
func NewSource(cfg Config, open func() (FrameSource, error), dec Decoder, opts device.SourceOptions) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if open == nil || dec == nil {
		return nil, fmt.Errorf("%w: camera source needs a frame source opener and a decoder", ErrConfig)
	}
	cfg = cfg.withDefaults()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("device", cfg.Name)
	s := &Source{
		cfg:   cfg,
		open:  open,
		dec:   dec,
		log:   log,
		clock: clock.OrReal(opts.Clock),
	}
	s.link = device.NewReconnector(device.ReconnectConfig{
		RetryMin: cfg.RetryMin, RetryMax: cfg.RetryMax,
		Clock: s.clock, Logger: log, OnState: opts.OnState,
	})
	if s.cfg.MaxFPS > 0 {
		s.frameEvery = time.Duration(float64(time.Second) / s.cfg.MaxFPS)
	}
	if s.cfg.MaxDecodeRate > 0 {
		s.decodeEvery = time.Duration(float64(time.Second) / s.cfg.MaxDecodeRate)
	}
	return s, nil
}

// Stats returns the counters. It is safe to call while Run runs.
func (s *Source) Stats() Stats {
	st := Stats{
		FramesRead:    s.read.Load(),
		FramesSkipped: s.skipped.Load(),
		FramesDropped: s.dropped.Load(),
		Decodes:       s.decodes.Load(),
		Found:         s.found.Load(),
		Repeats:       s.repeats.Load(),
		Scans:         s.scans.Load(),
		Disconnects:   s.link.Disconnects(),
		LastDecode:    time.Duration(s.lastNs.Load()),
		Connected:     s.link.Connected(),
	}
	if st.Decodes > 0 {
		st.AvgDecode = time.Duration(s.totalNs.Load() / int64(st.Decodes))
	}
	return st
}

// Run implements device.Source. It opens the frame source and delivers a
// scan for each code decoded (Scan.At is the frame's time), leaving out a
// repeat of the last payload within RepeatAfter. When the camera is missing
// or lost (any error from Next but io.EOF) it reports that (OnState, log),
// closes it and opens it again with exponential backoff and jitter. It
// returns nil once ctx is done, after its reading goroutine has ended, or
// when the frame source ends (io.EOF, a file replay without loop) after
// decoding its last frame. Sends on out give way to ctx.
func (s *Source) Run(ctx context.Context, out chan<- device.Scan) error {
	return s.link.Run(ctx, func(ctx context.Context, opened func()) error {
		fs, err := s.open()
		if err != nil {
			return fmt.Errorf("open camera: %w", err)
		}
		defer func() {
			if cerr := fs.Close(); cerr != nil {
				s.log.Debug("close camera", "err", cerr)
			}
		}()
		opened()
		err = s.stream(ctx, fs, out)
		switch {
		case err == nil || ctx.Err() != nil:
			return nil
		case errors.Is(err, io.EOF):
			s.log.Info("frame source ended")
			return nil
		case errors.Is(err, ErrDeviceGone):
			return err
		}
		return fmt.Errorf("%w: %w", ErrDeviceGone, err)
	})
}

// stream decodes frames from fs until ctx is done (nil) or fs fails (its
// error). Frames are read in a goroutine that has ended when stream
// returns.
func (s *Source) stream(ctx context.Context, fs FrameSource, out chan<- device.Scan) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	box := &mailbox{ready: make(chan struct{}, 1), dropped: &s.dropped}
	readErr := make(chan error, 1)
	wg.Go(func() { readErr <- s.pull(ctx, fs, box) })
	defer wg.Wait()
	defer cancel()
	var lastDecode time.Time
	for {
		var ended error
		select {
		case <-ctx.Done():
			return nil
		case <-box.ready:
		case ended = <-readErr:
		}
		if ended == nil && s.decodeEvery > 0 && !lastDecode.IsZero() {
			if d := lastDecode.Add(s.decodeEvery).Sub(s.clock.Now()); d > 0 && !clock.Sleep(ctx, s.clock, d) {
				return nil
			}
		}
		if f, ok := box.take(); ok {
			lastDecode = s.clock.Now()
			sent := s.decode(ctx, f, out)
			box.release(f)
			if !sent {
				return nil
			}
		}
		if ended != nil {
			return ended
		}
	}
}

// pull reads frames into box until fs or ctx fails.
func (s *Source) pull(ctx context.Context, fs FrameSource, box *mailbox) error {
	var last time.Time
	for {
		f, err := fs.Next(ctx)
		if err != nil {
			return err
		}
		s.read.Add(1)
		if f.Gray == nil {
			continue
		}
		if s.frameEvery > 0 && !last.IsZero() && f.At.Sub(last) < s.frameEvery-s.frameEvery/8 {
			s.skipped.Add(1)
			continue
		}
		last = f.At
		box.put(f)
	}
}

// decode decodes f and delivers its code, if any and not a repeat. It
// reports false if ctx was done before the scan could be sent.
func (s *Source) decode(ctx context.Context, f Frame, out chan<- device.Scan) bool {
	start := s.clock.Now()
	payload, err := s.dec.DecodeGray(f.Gray)
	took := s.clock.Since(start)
	s.decodes.Add(1)
	s.lastNs.Store(int64(took))
	s.totalNs.Add(int64(took))
	if err != nil || len(payload) == 0 {
		return true
	}
	s.found.Add(1)
	if s.cfg.RepeatAfter > 0 && s.lastPayload != nil && bytes.Equal(payload, s.lastPayload) && f.At.Sub(s.lastAt) < s.cfg.RepeatAfter {
		s.repeats.Add(1)
		return true
	}
	s.lastPayload = bytes.Clone(payload)
	s.lastAt = f.At
	s.log.Debug("scan", "bytes", len(payload), "seq", f.Seq, "decode", took)
	select {
	case out <- device.Scan{Payload: bytes.Clone(payload), Source: "camera:" + s.cfg.Name, At: f.At}:
		s.scans.Add(1)
		return true
	case <-ctx.Done():
		return false
	}
}

// mailbox holds at most one frame waiting to be decoded, in a buffer of
// its own. A frame put while one waits replaces it. Buffers are recycled,
// so a Source holds two frames' pixels: the one waiting and the one being
// decoded.
type mailbox struct {
	mu      sync.Mutex
	frame   Frame
	full    bool
	spare   *image.Gray
	ready   chan struct{} // has a value when a frame may be waiting
	dropped *atomic.Uint64
}

// put copies f into the mailbox, replacing the frame waiting, if any.
func (m *mailbox) put(f Frame) {
	m.mu.Lock()
	buf := m.spare
	if m.full {
		buf = m.frame.Gray
		m.dropped.Add(1)
	} else {
		m.spare = nil
	}
	f.Gray = copyGray(buf, f.Gray)
	m.frame, m.full = f, true
	m.mu.Unlock()
	select {
	case m.ready <- struct{}{}:
	default:
	}
}

// take removes the waiting frame; the caller gives its buffer back with
// release.
func (m *mailbox) take() (Frame, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.full {
		return Frame{}, false
	}
	f := m.frame
	m.frame, m.full = Frame{}, false
	return f, true
}

func (m *mailbox) release(f Frame) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.spare == nil {
		m.spare = f.Gray
	}
}
