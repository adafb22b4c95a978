package thermo

import (
	"context"
	"sync"
)

// Sim is the demo's thermometer: each Trigger (a person stepping up to the
// gate, which the daemon signals with each scan) makes the next value of
// its list the reading, cycling through the list.
type Sim struct {
	mu     sync.Mutex
	values []float64
	next   int
	armed  chan struct{}
}

// NewSim returns a simulated thermometer reading values in turn.
func NewSim(values []float64) *Sim {
	if len(values) == 0 {
		values = []float64{36.6}
	}
	return &Sim{values: values, armed: make(chan struct{}, 1)}
}

// Trigger asks for one measurement.
func (s *Sim) Trigger() {
	select {
	case s.armed <- struct{}{}:
	default:
	}
}

// Read waits for a trigger and returns the next value.
func (s *Sim) Read(ctx context.Context) (float64, bool, error) {
	select {
	case <-ctx.Done():
		return 0, false, ctx.Err()
	case <-s.armed:
	}
	s.mu.Lock()
	v := s.values[s.next%len(s.values)]
	s.next++
	s.mu.Unlock()
	return check(v)
}

// Close does nothing.
func (s *Sim) Close() error { return nil }

// Triggered is a sensor that measures on demand (Sim); the daemon
// triggers it when a code is scanned.
type Triggered interface {
	Trigger()
}
