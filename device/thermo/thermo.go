// Package thermo reads body temperature at the gate: an MLX90614 infrared
// thermometer over I²C (SMBus with PEC), a serial thermometer that prints
// readings as text lines, or a simulated one for the demo. A Monitor keeps
// the newest reading so a decision can ask for one taken close to its scan.
//
// A reading is a measurement of a person or nothing: values out of the
// sensor's physical range, failed transfers and checksum errors are sensor
// faults, never temperatures.
package thermo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"wicket/internal/clock"
)

// Errors a sensor reports instead of a temperature.
var (
	// ErrFault: the sensor answered with an error flag, a bad checksum or
	// a value outside its physical range.
	ErrFault = errors.New("thermometer fault")
	// ErrStale: no good reading for longer than the monitor's stale limit.
	ErrStale = errors.New("thermometer silent")
	// ErrNoReading: no reading was taken within the window of a scan.
	ErrNoReading = errors.New("no temperature reading")
)

// Person range: a reading below PersonMin is not a person in front of the
// sensor (an empty field of view, a sleeve, the far wall) and is not
// reported; above PersonMax it cannot be skin and is a fault.
const (
	PersonMin = 30.0
	PersonMax = 45.0
)

// Reading is one measurement of a person.
type Reading struct {
	At      time.Time
	Celsius float64
}

// Sensor is one thermometer. Read blocks until the sensor has a reading
// or fails; ok false with a nil error means "nobody in front of it".
type Sensor interface {
	Read(ctx context.Context) (celsius float64, ok bool, err error)
	Close() error
}

// Correction turns what the sensor measures into a body temperature:
// the reading plus Offset (°C), after an emissivity correction for a
// sensor calibrated at emissivity 1 when Emissivity is in (0, 1).
type Correction struct {
	Emissivity float64
	Offset     float64
}

// Monitor polls a sensor and keeps the newest reading of a person.
type Monitor struct {
	s          Sensor
	every      time.Duration
	staleAfter time.Duration
	clock      clock.Clock

	mu      sync.Mutex
	latest  Reading
	lastOK  time.Time // last poll without an error
	lastErr error
	faults  uint64
	changed chan struct{} // closed and replaced at each new reading
}

// NewMonitor polls s every interval (at least 20 ms) once Run is called;
// the sensor counts as stale after staleAfter without a good poll.
func NewMonitor(s Sensor, every, staleAfter time.Duration) *Monitor {
	return &Monitor{s: s, every: max(every, 20*time.Millisecond), staleAfter: staleAfter,
		clock: clock.Real(), changed: make(chan struct{})}
}

// Run polls until ctx ends. A fault is kept as the monitor's state and
// counted; polling goes on, so a sensor that recovers is used again.
func (m *Monitor) Run(ctx context.Context) {
	m.mu.Lock()
	m.lastOK = m.clock.Now()
	m.mu.Unlock()
	for {
		c, ok, err := m.s.Read(ctx)
		if ctx.Err() != nil {
			return
		}
		m.record(c, ok, err)
		if !clock.Sleep(ctx, m.clock, m.every) {
			return
		}
	}
}

func (m *Monitor) record(c float64, ok bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	if err != nil {
		m.lastErr = err
		m.faults++
		return
	}
	m.lastOK, m.lastErr = now, nil
	if !ok {
		return
	}
	m.latest = Reading{At: now, Celsius: c}
	close(m.changed)
	m.changed = make(chan struct{})
}

// Trigger asks a sensor that measures on demand (Triggered) for a
// measurement and reports true; for others it does nothing and reports
// false. After a trigger, only a reading taken from then on is this
// person's.
func (m *Monitor) Trigger() bool {
	t, ok := m.s.(Triggered)
	if ok {
		t.Trigger()
	}
	return ok
}

// Health reports the sensor's state: nil when it answers, its last error
// when the last poll failed, ErrStale when nothing good came for longer
// than the stale limit. Faults counts failed polls since start.
func (m *Monitor) Health() (faults uint64, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lastErr != nil {
		return m.faults, m.lastErr
	}
	if silent := m.clock.Since(m.lastOK); m.staleAfter > 0 && silent > m.staleAfter {
		return m.faults, fmt.Errorf("%w for %v", ErrStale, silent.Round(time.Second))
	}
	return m.faults, nil
}

// Wait returns the newest reading taken at or after since, waiting up to
// timeout for one. It returns ErrNoReading (wrapping the sensor's fault,
// if any) when none comes.
func (m *Monitor) Wait(ctx context.Context, since time.Time, timeout time.Duration) (Reading, error) {
	deadline := m.clock.NewTimer(timeout)
	defer deadline.Stop()
	for {
		m.mu.Lock()
		r, ch := m.latest, m.changed
		m.mu.Unlock()
		if !r.At.IsZero() && !r.At.Before(since) {
			return r, nil
		}
		select {
		case <-ch:
		case <-deadline.Chan():
			m.mu.Lock()
			fault := m.lastErr
			m.mu.Unlock()
			if fault != nil {
				return Reading{}, fmt.Errorf("%w: %w", ErrNoReading, fault)
			}
			return Reading{}, ErrNoReading
		case <-ctx.Done():
			return Reading{}, ctx.Err()
		}
	}
}

// check turns a corrected value into a reading or a fault.
func check(c float64) (float64, bool, error) {
	switch {
	case c < PersonMin:
		return 0, false, nil
	case c > PersonMax:
		return 0, false, fmt.Errorf("%w: %.2f °C is not a body temperature", ErrFault, c)
	}
	return c, true, nil
}
