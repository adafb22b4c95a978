package device

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// Terminator is the byte sequence a scanner sends after each code.
type Terminator uint8

// Terminators. The zero value means "not set" and is replaced by the
// default of the config it is in.
const (
	// TerminatorCR ends a frame at CR. An LF right after that CR is
	// skipped, so a scanner sending CRLF also works in this mode.
	TerminatorCR Terminator = iota + 1
	// TerminatorLF ends a frame at LF; a CR is data.
	TerminatorLF
	// TerminatorCRLF ends a frame at the pair CR LF; a lone CR or LF is
	// data.
	TerminatorCRLF
)

// DefaultTerminator is the terminator of a zero FramerConfig or
// SerialConfig: CR is most scanners' factory suffix, and a CR mode also
// takes CRLF.
const DefaultTerminator = TerminatorCR

// ParseTerminator parses "cr", "lf" or "crlf" (any case).
func ParseTerminator(s string) (Terminator, error) {
	switch strings.ToLower(s) {
	case "cr":
		return TerminatorCR, nil
	case "lf":
		return TerminatorLF, nil
	case "crlf":
		return TerminatorCRLF, nil
	}
	return 0, fmt.Errorf("%w: terminator %q: use cr, lf or crlf", ErrConfig, s)
}

// String returns "cr", "lf", "crlf", or "Terminator(n)" for other values.
func (t Terminator) String() string {
	switch t {
	case TerminatorCR:
		return "cr"
	case TerminatorLF:
		return "lf"
	case TerminatorCRLF:
		return "crlf"
	}
	return fmt.Sprintf("Terminator(%d)", uint8(t))
}

// MarshalText implements encoding.TextMarshaler.
func (t Terminator) MarshalText() ([]byte, error) {
	if !t.valid() {
		return nil, fmt.Errorf("%w: terminator %d", ErrConfig, uint8(t))
	}
	return []byte(t.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseTerminator,
// so config files can say `terminator: crlf`.
func (t *Terminator) UnmarshalText(b []byte) error {
	v, err := ParseTerminator(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

func (t Terminator) valid() bool {
	return t >= TerminatorCR && t <= TerminatorCRLF
}

// FramerConfig configures a Framer.
type FramerConfig struct {
	// Terminator ends each frame. Zero means DefaultTerminator.
	Terminator Terminator
	// MaxFrame is the longest frame kept, in bytes, not counting the
	// terminator. Longer input is reported once with ErrFrameTooLong and
	// dropped up to the next terminator. Zero means DefaultMaxFrame.
	MaxFrame int
	// InterByteTimeout ends a partial frame whose last byte is older than
	// this when the next byte or Tick comes. Zero disables it.
	InterByteTimeout time.Duration
	// FlushPartial makes a timed-out partial frame a frame; otherwise it is
	// dropped and reported with ErrPartialFrame.
	FlushPartial bool
	// StripAIM removes an AIM symbology identifier (']', a letter, then a
	// digit or capital letter, as in "]Q1") from the start of each frame
	// and reports it in Frame.Symbology.
	StripAIM bool
}

func (c FramerConfig) withDefaults() FramerConfig {
	if c.Terminator == 0 {
		c.Terminator = DefaultTerminator
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	return c
}

// Validate reports the first invalid field, naming it and the fix.
func (c FramerConfig) Validate() error {
	if c.Terminator != 0 && !c.Terminator.valid() {
		return fmt.Errorf("%w: Terminator %d: use TerminatorCR, TerminatorLF or TerminatorCRLF", ErrConfig, uint8(c.Terminator))
	}
	if c.MaxFrame < 0 || c.MaxFrame > MaxFrameLimit {
		return fmt.Errorf("%w: MaxFrame %d: use 1 to %d bytes, or 0 for %d", ErrConfig, c.MaxFrame, MaxFrameLimit, DefaultMaxFrame)
	}
	if c.InterByteTimeout < 0 {
		return fmt.Errorf("%w: InterByteTimeout %v: use a positive duration, or 0 to disable", ErrConfig, c.InterByteTimeout)
	}
	return nil
}

// Frame is one unit of framer output: a complete frame, or a report of
// dropped input.
type Frame struct {
	// Data is the frame without terminator and AIM prefix, never empty and
	// never longer than MaxFrame. If Err is set it holds the first bytes of
	// the dropped input, for logs. Data is not shared with the Framer.
	Data []byte
	// Symbology is the stripped AIM identifier without ']', or "".
	Symbology string
	// At is the arrival time of the frame's last byte.
	At time.Time
	// Err is nil for a frame, or ErrFrameTooLong or ErrPartialFrame.
	Err error
	// Flushed marks a frame ended by InterByteTimeout with FlushPartial
	// set, or by Flush, rather than by its terminator.
	Flushed bool
}

// Framer splits a byte stream into frames. It is pure: it does no IO and
// reads no clock, time comes with the bytes. Memory is bounded by MaxFrame.
// A Framer is not safe for concurrent use.
type Framer struct {
	cfg FramerConfig
	buf []byte
	// last is the arrival time of the newest byte of the partial frame.
	last time.Time
	// pendingCR: in CRLF mode, a CR came and the next byte decides whether
	// it ends the frame.
	pendingCR bool
	// skipLF: in CR mode, a CR just ended a frame and one LF is skipped.
	skipLF bool
	// discarding: the frame went over MaxFrame and is dropped up to the
	// next terminator.
	discarding bool
}

// NewFramer returns a Framer, or an error wrapping ErrConfig.
func NewFramer(cfg FramerConfig) (*Framer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Framer{cfg: cfg, buf: make([]byte, 0, min(cfg.MaxFrame, readChunk))}, nil
}

// Feed takes bytes that arrived at time at and returns the frames they
// complete, in order, or nil. A partial frame that timed out before at is
// ended first. p is not retained.
func (f *Framer) Feed(p []byte, at time.Time) []Frame {
	out := f.expire(nil, at)
	if len(p) == 0 {
		return out
	}
	f.last = at
	for _, b := range p {
		out = f.push(out, b, at)
	}
	return out
}

// Tick tells the Framer that now has come without new bytes, and returns
// the partial frame if it timed out (as a frame or an ErrPartialFrame
// report), or nil.
func (f *Framer) Tick(now time.Time) []Frame {
	return f.expire(nil, now)
}

// Flush ends the partial frame as if its terminator had come, for the end
// of an input, and returns it, or nil if there was none.
func (f *Framer) Flush() []Frame {
	if f.discarding {
		f.reset()
		return nil
	}
	out := f.emit(nil, f.buf, f.last, true)
	f.reset()
	return out
}

// Resume tells the Framer that its caller stopped reading until at (it
// was waiting to hand frames on): the next bytes may have waited in the
// kernel's buffer all that time, so silence before at does not count
// towards InterByteTimeout. Only silence while the caller reads does: a
// scanner that stalled midway still has its partial frame ended
// InterByteTimeout after at.
func (f *Framer) Resume(at time.Time) {
	if at.After(f.last) {
		f.last = at
	}
}

// Pending reports whether a partial frame is buffered.
func (f *Framer) Pending() bool {
	return len(f.buf) > 0 || f.pendingCR || f.discarding
}

func (f *Framer) reset() {
	f.buf = f.buf[:0]
	f.pendingCR = false
	f.discarding = false
}

func (f *Framer) expire(out []Frame, now time.Time) []Frame {
	if f.cfg.InterByteTimeout <= 0 || now.Sub(f.last) < f.cfg.InterByteTimeout {
		return out
	}
	f.skipLF = false
	if !f.Pending() {
		return out
	}
	switch {
	case f.discarding:
		// Already reported; silence is as good as a terminator to resync.
	case len(f.buf) == 0:
		// Only a pending CR: nothing to report.
	case f.cfg.FlushPartial:
		out = f.emit(out, f.buf, f.last, true)
	default:
		out = append(out, Frame{Data: preview(f.buf), At: f.last, Err: ErrPartialFrame})
	}
	f.reset()
	return out
}

func (f *Framer) push(out []Frame, b byte, at time.Time) []Frame {
	if f.skipLF {
		f.skipLF = false
		if b == '\n' {
			return out
		}
	}
	switch f.cfg.Terminator {
	case TerminatorCR:
		if b == '\r' {
			f.skipLF = true
			return f.end(out, at)
		}
	case TerminatorLF:
		if b == '\n' {
			return f.end(out, at)
		}
	case TerminatorCRLF:
		if f.pendingCR {
			f.pendingCR = false
			if b == '\n' {
				return f.end(out, at)
			}
			out = f.add(out, '\r', at)
		}
		if b == '\r' {
			f.pendingCR = true
			return out
		}
	}
	return f.add(out, b, at)
}

func (f *Framer) add(out []Frame, b byte, at time.Time) []Frame {
	if f.discarding {
		return out
	}
	if len(f.buf) >= f.cfg.MaxFrame {
		out = append(out, Frame{Data: preview(f.buf), At: at, Err: ErrFrameTooLong})
		f.buf = f.buf[:0]
		f.discarding = true
		return out
	}
	f.buf = append(f.buf, b)
	return out
}

func (f *Framer) end(out []Frame, at time.Time) []Frame {
	if !f.discarding {
		out = f.emit(out, f.buf, at, false)
	}
	f.reset()
	return out
}

func (f *Framer) emit(out []Frame, data []byte, at time.Time, flushed bool) []Frame {
	var sym string
	if f.cfg.StripAIM {
		sym, data = splitAIM(data)
	}
	if len(data) == 0 {
		return out
	}
	return append(out, Frame{Data: bytes.Clone(data), Symbology: sym, At: at, Flushed: flushed})
}

// splitAIM splits an AIM symbology identifier off the start of a frame.
// The identifier is ']', a code character (a letter) and a modifier
// character (a digit or capital letter).
func splitAIM(b []byte) (string, []byte) {
	if len(b) < 3 || b[0] != ']' {
		return "", b
	}
	code, mod := b[1], b[2]
	isLetter := code >= 'A' && code <= 'Z' || code >= 'a' && code <= 'z'
	isMod := mod >= '0' && mod <= '9' || mod >= 'A' && mod <= 'Z'
	if !isLetter || !isMod {
		return "", b
	}
	return string(b[1:3]), b[3:]
}

func preview(b []byte) []byte {
	return bytes.Clone(b[:min(len(b), previewLen)])
}
