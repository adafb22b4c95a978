// Package clock is Wicket's one time source for code that tests drive:
// a clockwork.Clock, one cancellable Sleep and one jittered Backoff.
//
// Logic that waits or reads the time takes a Clock; production code passes
// Real(), tests pass clockwork.NewFakeClock() and advance it. Nothing in
// this package reads the wall clock except Real.
package clock

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/jonboulle/clockwork"
)

// Clock is the time source: Now, timers and tickers.
type Clock = clockwork.Clock

// Real returns the system clock.
func Real() Clock { return clockwork.NewRealClock() }

// OrReal returns c, or the system clock if c is nil, so a zero-valued
// options struct means real time.
func OrReal(c Clock) Clock {
	if c == nil {
		return Real()
	}
	return c
}

// Sleep waits d on c or until ctx is done, and reports whether d passed.
// A d of zero or less returns at once, reporting whether ctx is still live.
func Sleep(ctx context.Context, c Clock, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := OrReal(c).NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.Chan():
		return true
	}
}

// Backoff is exponential backoff with jitter: after n failures the wait
// is drawn from [d/2, d] with d = min(Max, Min·2ⁿ), so gates that lost the
// same broker or device do not come back in lockstep.
type Backoff struct {
	Min, Max time.Duration
	// Rand returns a value in [0, n); nil means math/rand/v2.
	Rand func(n int64) int64
	n    int
}

// Next returns the next wait and counts a failure.
func (b *Backoff) Next() time.Duration {
	d := b.Min << min(b.n, 30)
	if d <= 0 || d > b.Max {
		d = b.Max
	}
	b.n++
	r := rand.Int64N
	if b.Rand != nil {
		r = b.Rand
	}
	half := d / 2
	return half + time.Duration(r(int64(d-half)+1))
}

// Reset starts over after a success.
func (b *Backoff) Reset() { b.n = 0 }
