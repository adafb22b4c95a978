package device

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"wicket/internal/clock"
)

// ReconnectConfig configures a Reconnector.
type ReconnectConfig struct {
	// RetryMin and RetryMax bound the wait between attempts to open the
	// device: it starts at RetryMin, doubles after each failure up to
	// RetryMax, and is drawn with jitter from the upper half of that.
	RetryMin, RetryMax time.Duration
	// Clock times the waits; nil means the real clock.
	Clock clock.Clock
	// Logger receives one line per change of state, scoped by the caller
	// (component, device); nil discards them.
	Logger *slog.Logger
	// OnState is called from Run on each change of state: (true, nil) once
	// the device is open, (false, err) when it cannot be opened or is lost.
	// It is not called on every failed retry, and must not block.
	OnState func(connected bool, err error)
}

// Reconnector keeps one device open for a Source: it opens the device,
// uses it until it fails, and opens it again with exponential backoff and
// jitter, until its context is done. It logs one line per change of state
// (connected, unavailable or lost, each with the wait before the next
// attempt); failed retries in between are logged at debug level only.
//
// The serial and camera sources run their sessions through one; Connected
// and Disconnects are safe to call while Run runs.
type Reconnector struct {
	cfg ReconnectConfig
	log *slog.Logger
	clk clock.Clock

	connected   atomic.Bool
	disconnects atomic.Uint64
}

// NewReconnector returns a Reconnector for cfg.
func NewReconnector(cfg ReconnectConfig) *Reconnector {
	r := &Reconnector{cfg: cfg, log: cfg.Logger, clk: clock.OrReal(cfg.Clock)}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r
}

// Connected reports whether the device is open now.
func (r *Reconnector) Connected() bool { return r.connected.Load() }

// Disconnects returns how often an open device was lost.
func (r *Reconnector) Disconnects() uint64 { return r.disconnects.Load() }

// Run calls session until ctx is done or session returns nil. A session
// opens the device, calls opened once it is open, uses it, and closes it
// before it returns: nil when ctx is done or the device ended normally
// (a replayed file), an error when it could not open the device (opened
// not called) or lost it. After an error Run waits on the backoff and
// calls session again; it returns nil, and only once ctx is done or a
// session returned nil.
func (r *Reconnector) Run(ctx context.Context, session func(ctx context.Context, opened func()) error) error {
	defer r.connected.Store(false)
	b := clock.Backoff{Min: r.cfg.RetryMin, Max: r.cfg.RetryMax}
	down := false // a failure was reported and nothing opened since
	for ctx.Err() == nil {
		open := false
		err := session(ctx, func() {
			open, down = true, false
			b.Reset()
			r.connected.Store(true)
			r.log.Info("device connected")
			r.notify(true, nil)
		})
		if err == nil || ctx.Err() != nil {
			return nil
		}
		r.connected.Store(false)
		wait := b.Next()
		switch {
		case open:
			r.disconnects.Add(1)
			r.log.Warn("device lost; reconnecting", "err", err, "retry_in", wait)
			r.notify(false, err)
		case !down:
			r.log.Warn("device unavailable; reconnecting", "err", err, "retry_in", wait)
			r.notify(false, err)
		default:
			r.log.Debug("device still unavailable", "err", err, "retry_in", wait)
		}
		down = true
		if !clock.Sleep(ctx, r.clk, wait) {
			return nil
		}
	}
	return nil
}

func (r *Reconnector) notify(connected bool, err error) {
	if r.cfg.OnState != nil {
		r.cfg.OnState(connected, err)
	}
}
