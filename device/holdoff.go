package device

import (
	"hash/maphash"
	"sync"
	"time"
)

// HoldOff suppresses a code that is seen again too soon. A payload seen
// within the window of the last time it was seen is held off, and each
// sighting restarts its window, so a code held in front of a reader for ten
// seconds yields one decision. A different payload passes at once.
//
// HoldOff remembers only the last few payloads, by a keyed 64-bit hash, so
// its memory is fixed. It is safe for concurrent use and works the same for
// any Source.
type HoldOff struct {
	window time.Duration
	seed   maphash.Seed

	mu   sync.Mutex
	seen []sighting
	size int
}

type sighting struct {
	sum  uint64
	last time.Time
}

// NewHoldOff returns a HoldOff with the given window (DefaultHoldOffWindow
// if zero; a negative window lets everything pass) remembering size
// payloads (DefaultHoldOffSize if not positive).
func NewHoldOff(window time.Duration, size int) *HoldOff {
	if window == 0 {
		window = DefaultHoldOffWindow
	}
	if size <= 0 {
		size = DefaultHoldOffSize
	}
	return &HoldOff{window: window, seed: maphash.MakeSeed(), size: size, seen: make([]sighting, 0, size)}
}

// Allow records that payload was seen at time at and reports whether it is
// a new scan. The time is the caller's clock, normally Scan.At; times that
// go backwards count as within the window.
func (h *HoldOff) Allow(payload []byte, at time.Time) bool {
	if h.window < 0 {
		return true
	}
	sum := maphash.Bytes(h.seed, payload)
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.seen {
		s := &h.seen[i]
		if s.sum != sum {
			continue
		}
		held := at.Sub(s.last) < h.window
		if at.After(s.last) {
			s.last = at
		}
		return !held
	}
	if len(h.seen) < h.size {
		h.seen = append(h.seen, sighting{sum: sum, last: at})
		return true
	}
	oldest := 0
	for i := range h.seen {
		if h.seen[i].last.Before(h.seen[oldest].last) {
			oldest = i
		}
	}
	h.seen[oldest] = sighting{sum: sum, last: at}
	return true
}

// Reset forgets every payload.
func (h *HoldOff) Reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen = h.seen[:0]
}
