package gate_test

import (
	"context"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"wicket/device/gate"
)

// readPin is a gpiotest input that tells the test each time its level is
// read, so the test knows the passage watch has seen a level.
type readPin struct {
	*gpiotest.Pin
	reads chan struct{}
}

func (p *readPin) Read() gpio.Level {
	l := p.Pin.Read()
	select {
	case p.reads <- struct{}{}:
	default:
	}
	return l
}

// seen waits until the level has been read twice more: once may have
// started before the test's change.
func (p *readPin) seen(t *testing.T) {
	t.Helper()
	for range 2 {
		select {
		case <-p.reads:
		case <-time.After(5 * time.Second):
			t.Fatal("the passage watch stopped reading the sensor")
		}
	}
}

// TestForcedPassage: the passage sensor turning active with the gate
// locked is reported once per passage; a granted passage (through Open)
// is not, even though the sensor is still active when Open returns.
func TestForcedPassage(t *testing.T) {
	sensor := &readPin{Pin: &gpiotest.Pin{N: "PASSAGE", EdgesChan: make(chan gpio.Level)}, reads: make(chan struct{}, 1)}
	forced := make(chan struct{}, 4)
	ts, err := gate.NewTurnstile(gate.TurnstileConfig{PulseWidth: 10 * time.Millisecond, PassageTimeout: 5 * time.Second},
		gate.TurnstilePins{Relay: &gpiotest.Pin{N: "RELAY"}, Passage: sensor},
		gate.Options{OnForcedPassage: func() { forced <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- ts.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		ts.Close()
	})
	noForced := func(when string) {
		t.Helper()
		select {
		case <-forced:
			t.Errorf("%s: forced passage reported", when)
		default:
		}
	}

	sensor.seen(t)
	noForced("idle")
	_ = sensor.Out(gpio.High)
	select {
	case <-forced:
	case <-time.After(5 * time.Second):
		t.Fatal("sensor active with the gate locked: no forced passage reported")
	}
	sensor.seen(t)
	noForced("sensor still active")
	_ = sensor.Out(gpio.Low)
	sensor.seen(t)

	res := make(chan gate.Passage)
	go func() {
		p, _ := ts.Open(context.Background())
		res <- p
	}()
	// Open's arming of the sensor drops edges sent before it: keep
	// sending until Open has one.
	var p gate.Passage
	for passed := false; !passed; {
		select {
		case sensor.EdgesChan <- gpio.High:
		case p = <-res:
			passed = true
		}
	}
	if p != gate.Passed {
		t.Fatalf("Open = %v; want Passed", p)
	}
	sensor.seen(t)
	noForced("after a granted passage")
	_ = sensor.Out(gpio.Low)
	sensor.seen(t)
	noForced("sensor idle again")
}
