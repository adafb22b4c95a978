package gate_test

import (
	"context"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"wicket/device/gate"
	"wicket/device/gate/gatetest"
)

// TestTamper: opening the enclosure is reported once its switch has read
// open twice in a row, closing it likewise; a bounce shorter than that is
// no change; an enclosure open at the start is reported at once.
func TestTamper(t *testing.T) {
	clock := newFakeClock()
	pin := gatetest.NewIn("TAMPER", clock)
	changes := make(chan bool, 8)
	tp, err := gate.NewTamper(pin, false, func(open bool) { changes <- open }, gate.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- tp.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v; want nil when its context ends", err)
		}
	}()
	// settled waits until Run is back on the clock, so whatever it was to
	// report is reported, and returns what it reported.
	settled := func() []bool {
		t.Helper()
		wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer wcancel()
		if err := clock.BlockUntilContext(wctx, 1); err != nil {
			t.Fatalf("Run stopped waiting on the clock: %v", err)
		}
		var got []bool
		for {
			select {
			case c := <-changes:
				got = append(got, c)
			default:
				return got
			}
		}
	}
	const poll = 100 * time.Millisecond
	expect := func(what string, want ...bool) {
		t.Helper()
		if got := settled(); len(got) != len(want) || (len(want) > 0 && got[0] != want[0]) {
			t.Errorf("%s: reported %v; want %v", what, got, want)
		}
	}

	expect("closed at the start")
	pin.Set(gpio.High)
	clock.step(t, poll)
	expect("open for one read")
	clock.step(t, poll)
	expect("open for two reads", true)
	if !tp.Open() {
		t.Error("Open() = false with the switch open")
	}
	pin.Set(gpio.Low)
	clock.step(t, poll)
	pin.Set(gpio.High)
	clock.step(t, 2*poll)
	expect("a bounce while open")
	pin.Set(gpio.Low)
	clock.step(t, 2*poll)
	expect("closed again", false)

	pin.Set(gpio.High)
	pin2 := gatetest.NewIn("TAMPER2", clock)
	pin2.Set(gpio.Low)
	at := make(chan bool, 1)
	tp2, err := gate.NewTamper(pin2, true, func(open bool) { at <- open }, gate.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go tp2.Run(ctx2)
	select {
	case open := <-at:
		if !open {
			t.Error("active-low switch low at the start: reported closed; want open")
		}
	case <-time.After(10 * time.Second):
		t.Error("active-low switch low at the start: nothing reported; want open at once")
	}
	if _, err := gate.NewTamper(nil, false, func(bool) {}, gate.Options{}); err == nil {
		t.Error("NewTamper(nil pin) = nil error")
	}
}
