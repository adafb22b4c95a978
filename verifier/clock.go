package verifier

import (
	"sync/atomic"
	"time"
)

// Clock is the wall clock seam; tests inject a fixed or stepping one.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real wall clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

// FixedClock always returns the same instant (wicketd verify --at).
type FixedClock time.Time

func (c FixedClock) Now() time.Time { return time.Time(c) }

// TrustedClock is a wall clock with a floor: the latest instant the gate
// knows has passed (its build time, the issue time of the newest signed
// update, the last time it saw before shutdown). A Raspberry Pi without an
// RTC boots in 1970; a wall clock below the floor is not trusted. The floor
// only rises. Safe for concurrent use.
type TrustedClock struct {
	clock Clock
	floor atomic.Int64 // unix seconds
}

// NewTrustedClock returns a TrustedClock with an initial floor.
func NewTrustedClock(c Clock, floor time.Time) *TrustedClock {
	t := &TrustedClock{clock: c}
	t.Raise(floor)
	return t
}

// Raise lifts the floor to at if it is higher.
func (t *TrustedClock) Raise(at time.Time) {
	s := at.Unix()
	for {
		cur := t.floor.Load()
		if s <= cur || t.floor.CompareAndSwap(cur, s) {
			return
		}
	}
}

// Floor returns the current floor.
func (t *TrustedClock) Floor() time.Time { return time.Unix(t.floor.Load(), 0) }

// Now returns the wall clock and whether it is trusted: at or above the
// floor, less the allowed skew. When untrusted the floor is returned instead:
// the real time is at least that.
func (t *TrustedClock) Now(skew time.Duration) (time.Time, bool) {
	now := t.clock.Now()
	floor := t.Floor()
	if now.Add(skew).Before(floor) {
		return floor, false
	}
	return now, true
}
