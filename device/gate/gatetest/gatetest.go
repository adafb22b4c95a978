// Package gatetest provides fake GPIO pins for tests of code that drives a
// gate: Out, an output (relay, LED, buzzer) that records its writes and
// refuses them on demand, and In, an input (passage sensor, emergency
// input, tamper switch) whose level and edges the test sets.
//
// Both are periph's gpiotest.Pin underneath, with the clock the test
// gives them (nil means the real clock): In's WaitForEdge times out on
// it and Out stamps its writes with it.
package gatetest

import (
	"errors"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// ErrRefused is the error of a write that an Out refuses.
var ErrRefused = errors.New("gatetest: write refused")

// Write is one call of Out.Out.
type Write struct {
	At time.Time // on the pin's clock
	L  gpio.Level
}

// Out is a fake output pin. It records every write, refused or not, and
// holds the level of the last write it took. A write is refused while the
// pin is dead (SetDead, or DieAfter's count ran out), if FailWrite named
// its number, or while FailNext's count lasts. Its methods are safe for
// concurrent use.
type Out struct {
	*gpiotest.Pin

	mu       sync.Mutex
	writes   []Write
	failAt   map[int]bool
	failNext int
	dieAfter int // -1: off
	dead     bool
}

var _ gpio.PinIO = (*Out)(nil)

// NewOut returns an output pin named name, at Low, on clk.
func NewOut(name string, clk clockwork.Clock) *Out {
	if clk == nil {
		clk = clockwork.NewRealClock()
	}
	return &Out{Pin: &gpiotest.Pin{N: name, Clock: clk}, failAt: map[int]bool{}, dieAfter: -1}
}

// Out records the write and, unless it is refused with ErrRefused, drives
// the pin to l.
func (p *Out) Out(l gpio.Level) error {
	p.mu.Lock()
	n := len(p.writes)
	p.writes = append(p.writes, Write{At: p.Pin.Clock.Now(), L: l})
	if p.dieAfter == 0 {
		p.dead, p.dieAfter = true, -1
	} else if p.dieAfter > 0 {
		p.dieAfter--
	}
	refuse := p.dead || p.failAt[n] || p.failNext > 0
	if p.failNext > 0 {
		p.failNext--
	}
	p.mu.Unlock()
	if refuse {
		return ErrRefused
	}
	return p.Pin.Out(l)
}

// Level returns the level of the last write the pin took, as the
// hardware holds it.
func (p *Out) Level() gpio.Level { return p.Pin.Read() }

// Writes returns every write so far, in order.
func (p *Out) Writes() []Write {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Write(nil), p.writes...)
}

// FailWrite makes the write numbered n fail, counting every write since
// NewOut from 0.
func (p *Out) FailWrite(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failAt[n] = true
}

// FailNext makes the next n writes fail: a flaky pin that comes back.
func (p *Out) FailNext(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failNext = n
}

// DieAfter lets n more writes through and then makes the pin dead, as if
// it failed in the middle of what the code under test does.
func (p *Out) DieAfter(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dieAfter = n
}

// SetDead makes every write fail while dead is set: a pin that is gone
// (a loose header, a driver fault) until the test brings it back.
func (p *Out) SetDead(dead bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dead = dead
}

// In is a fake input pin. The test sets its level with Set (no edge), or
// sends an edge on EdgesChan, which a WaitForEdge in progress takes and
// which sets the level. Each Read is signalled, so a test can wait until
// code that polls the pin has seen a level.
type In struct {
	*gpiotest.Pin
	reads chan struct{}
}

var _ gpio.PinIO = (*In)(nil)

// NewIn returns an input pin named name, at Low, with edge detection, on
// clk.
func NewIn(name string, clk clockwork.Clock) *In {
	p := NewPolledIn(name, clk)
	p.EdgesChan = make(chan gpio.Level)
	return p
}

// NewPolledIn returns an input pin named name, at Low, on clk, without
// edge detection: In with an edge fails, as on a chip that has none, so
// the code under test must poll it.
func NewPolledIn(name string, clk clockwork.Clock) *In {
	if clk == nil {
		clk = clockwork.NewRealClock()
	}
	return &In{Pin: &gpiotest.Pin{N: name, Clock: clk}, reads: make(chan struct{}, 1)}
}

// Set changes the level without an edge.
func (p *In) Set(l gpio.Level) {
	p.Lock()
	defer p.Unlock()
	p.L = l
}

// Read returns the level and signals the read.
func (p *In) Read() gpio.Level {
	l := p.Pin.Read()
	select {
	case p.reads <- struct{}{}:
	default:
	}
	return l
}

// WaitRead waits up to timeout for a Read and reports whether one came. A
// read that happened before the call, since the last WaitRead, counts.
func (p *In) WaitRead(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.reads:
		return true
	case <-t.C:
		return false
	}
}
