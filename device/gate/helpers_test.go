package gate_test

import (
	"context"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"

	"wicket/device/gate"
	"wicket/device/gate/gatetest"
)

var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

// fakeClock is clockwork's fake clock with the stepping the tests need.
type fakeClock struct{ *clockwork.FakeClock }

func newFakeClock() fakeClock { return fakeClock{clockwork.NewFakeClockAt(t0)} }

// step advances the clock by d in 1 ms steps. Before each step it waits
// until the code under test is blocked on the clock, so every timer fires
// at its exact time and the code reacts before time moves on. It fails the
// test if the code stops waiting before d has passed.
func (c fakeClock) step(t *testing.T, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range d / time.Millisecond {
		if err := c.BlockUntilContext(ctx, 1); err != nil {
			t.Fatalf("at +%v nothing waits on the clock any more: %v", c.Now().Sub(t0), err)
		}
		c.Advance(time.Millisecond)
	}
}

// waitBlocked waits until the code under test is blocked on the clock.
func (c fakeClock) waitBlocked(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("nothing waits on the clock: %v", err)
	}
}

// write is one write to an output pin, at its time since t0.
type write struct {
	at time.Duration
	l  gpio.Level
}

// writes returns p's writes, timed from t0.
func writes(p *gatetest.Out) []write {
	var ws []write
	for _, w := range p.Writes() {
		ws = append(ws, write{w.At.Sub(t0), w.L})
	}
	return ws
}

func wantLevel(t *testing.T, p *gatetest.Out, what string, want gpio.Level) {
	t.Helper()
	if got := p.Level(); got != want {
		t.Errorf("%s: %s level = %v; want %v", what, p.N, got, want)
	}
}

type result struct {
	p   gate.Passage
	err error
}

// open runs Open in the background.
func open(ts *gate.Turnstile) <-chan result {
	ch := make(chan result, 1)
	go func() {
		p, err := ts.Open(context.Background())
		ch <- result{p, err}
	}()
	return ch
}

func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("nothing received in 10s")
	}
	var zero T
	return zero
}
