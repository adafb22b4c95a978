package gate_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"wicket/device/gate"
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

// write is one Out call seen by a pin.
type write struct {
	at time.Duration // since t0
	l  gpio.Level
}

var errWrite = errors.New("gpiotest: write refused")

// outPin is a gpiotest pin that logs its writes with the clock's time and
// fails the writes numbered in fail (counting from 0).
type outPin struct {
	*gpiotest.Pin
	clock clockwork.Clock

	mu      sync.Mutex
	writes  []write
	fail    map[int]bool
	failAll bool
}

func newOutPin(name string, clock clockwork.Clock) *outPin {
	return &outPin{Pin: &gpiotest.Pin{N: name, Clock: clock}, clock: clock, fail: map[int]bool{}}
}

func (p *outPin) Out(l gpio.Level) error {
	p.mu.Lock()
	n := len(p.writes)
	p.writes = append(p.writes, write{p.clock.Now().Sub(t0), l})
	fail := p.fail[n] || p.failAll
	p.mu.Unlock()
	if fail {
		return errWrite
	}
	return p.Pin.Out(l)
}

// level is the level the pin was last driven to, as the hardware holds it.
func (p *outPin) level() gpio.Level {
	p.Pin.Lock()
	defer p.Pin.Unlock()
	return p.Pin.L
}

func (p *outPin) log() []write {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]write(nil), p.writes...)
}

func (p *outPin) wantLevel(t *testing.T, what string, want gpio.Level) {
	t.Helper()
	if got := p.level(); got != want {
		t.Errorf("%s: %s level = %v; want %v", what, p.N, got, want)
	}
}

// inPin is a gpiotest input whose edges the test sends on EdgesChan.
func newInPin(name string, clock clockwork.Clock) *gpiotest.Pin {
	return &gpiotest.Pin{N: name, Clock: clock, EdgesChan: make(chan gpio.Level)}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
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
