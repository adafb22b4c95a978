package gate

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"

	"wicket/internal/clock"
)

// Signal is what the feedback tells the person at the gate.
type Signal uint8

const (
	SignalAllow   Signal = iota // voucher accepted
	SignalDeny                  // voucher refused
	SignalError                 // the gate failed to decide
	SignalOffline               // the gate is out of service
)

// String returns "allow", "deny", "error" or "offline".
func (s Signal) String() string {
	switch s {
	case SignalAllow:
		return "allow"
	case SignalDeny:
		return "deny"
	case SignalError:
		return "error"
	case SignalOffline:
		return "offline"
	}
	return fmt.Sprintf("Signal(%d)", uint8(s))
}

// FeedbackPins are the pins of Feedback; each may be nil.
type FeedbackPins struct {
	Green, Red, Buzzer gpio.PinOut
}

// Feedback plays light and sound patterns on the gate's LEDs and buzzer.
// Show returns at once; the pattern plays in the background and a new one
// cancels the one playing. Feedback never reads an output pin back. Its
// methods are safe for concurrent use.
type Feedback struct {
	patterns [4]Pattern
	outs     [3]*output // green, red, buzzer; nil if absent
	log      *slog.Logger
	clock    clock.Clock
	trace    io.Writer

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{} // closed when the latest pattern has stopped
	closed bool
}

const (
	green = iota
	red
	buzzer
)

// NewFeedback returns a Feedback on pins, all outputs off.
func NewFeedback(cfg FeedbackConfig, pins FeedbackPins, opts Options) (*Feedback, error) {
	return newFeedback(cfg, pins, opts, nil)
}

func newFeedback(cfg FeedbackConfig, pins FeedbackPins, opts Options, trace io.Writer) (*Feedback, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	opts = opts.withDefaults()
	f := &Feedback{
		patterns: [4]Pattern{cfg.Allow, cfg.Deny, cfg.Error, cfg.Offline},
		outs: [3]*output{
			newOutput("green led", pins.Green, cfg.GreenActiveLow),
			newOutput("red led", pins.Red, cfg.RedActiveLow),
			newOutput("buzzer", pins.Buzzer, cfg.BuzzerActiveLow),
		},
		log:   opts.Logger.With("component", "feedback"),
		clock: opts.Clock,
		trace: trace,
	}
	if err := f.allOff(); err != nil {
		return nil, fmt.Errorf("set feedback at start: %w", err)
	}
	return f, nil
}

// SetPatterns replaces the patterns (the pins stay as they are), for a
// config reload; the pattern playing finishes as it was. An invalid
// config changes nothing.
func (f *Feedback) SetPatterns(cfg FeedbackConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	f.mu.Lock()
	f.patterns = [4]Pattern{cfg.Allow, cfg.Deny, cfg.Error, cfg.Offline}
	f.mu.Unlock()
	return nil
}

// Show starts the pattern for s, cancelling the one playing, and returns
// a channel closed when it has finished or been cancelled, with every
// output off. After Close it does nothing and returns a closed channel.
func (f *Feedback) Show(s Signal) <-chan struct{} {
	done := make(chan struct{})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || int(s) >= len(f.patterns) {
		close(done)
		return done
	}
	if f.cancel != nil {
		f.cancel()
	}
	prev := f.done
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, done
	p := f.patterns[s]
	go func() {
		defer close(done)
		defer cancel()
		if prev != nil {
			<-prev
		}
		f.play(ctx, s, p)
	}()
	return done
}

// Close stops the pattern playing, switches every output off and makes
// Show do nothing. It is idempotent.
func (f *Feedback) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	if f.cancel != nil {
		f.cancel()
	}
	done := f.done
	f.mu.Unlock()
	if done != nil {
		<-done
	}
	return f.allOff()
}

// change is one switch of one output at an offset from the pattern start.
type change struct {
	at  time.Duration
	out int
	on  bool
	dur time.Duration // how long it stays on, for the narration
}

// timeline merges the three step lists of p into one list of changes in
// time order, and returns it with the length of the pattern.
func timeline(p Pattern) ([]change, time.Duration) {
	var cs []change
	var length time.Duration
	for out, steps := range [][]Step{p.Green, p.Red, p.Buzzer} {
		var at time.Duration
		for _, s := range steps {
			if s.On > 0 {
				cs = append(cs, change{at: at, out: out, on: true, dur: s.On}, change{at: at + s.On, out: out})
			}
			at += s.On + s.Off
		}
		length = max(length, at)
	}
	slices.SortStableFunc(cs, func(a, b change) int { return cmp.Compare(a.at, b.at) })
	return cs, length
}

// play runs one pattern to its end or until ctx is done. Only one play
// runs at a time: Show chains them.
func (f *Feedback) play(ctx context.Context, s Signal, p Pattern) {
	defer func() {
		if err := f.allOff(); err != nil {
			f.log.Warn("feedback output failed", "err", err)
		}
	}()
	changes, length := timeline(p)
	var elapsed time.Duration
	for _, c := range changes {
		if c.at > elapsed {
			if !clock.Sleep(ctx, f.clock, c.at-elapsed) {
				return
			}
			elapsed = c.at
		}
		if ctx.Err() != nil {
			return
		}
		o := f.outs[c.out]
		if o == nil && f.trace == nil {
			continue
		}
		if c.on {
			f.narrate(c)
		}
		if err := o.set(c.on); err != nil {
			f.log.Warn("feedback output failed", "signal", s.String(), "err", err)
		}
	}
	// A trailing Off is part of the pattern: Show's channel closes after
	// it.
	clock.Sleep(ctx, f.clock, length-elapsed)
}

func (f *Feedback) narrate(c change) {
	if f.trace == nil {
		return
	}
	switch c.out {
	case green:
		fmt.Fprintf(f.trace, "led green: on %v\n", c.dur)
	case red:
		fmt.Fprintf(f.trace, "led red: on %v\n", c.dur)
	case buzzer:
		fmt.Fprintf(f.trace, "buzzer: beep %v\n", c.dur)
	}
}

func (f *Feedback) allOff() error {
	var first error
	for _, o := range f.outs {
		if err := o.set(false); err != nil && first == nil {
			first = err
		}
	}
	return first
}
