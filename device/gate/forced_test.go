package gate_test

import (
	"context"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"wicket/device/gate"
	"wicket/device/gate/gatetest"
)

// seen waits until the sensor's level has been read twice more: once
// may have started before the test's change.
func seen(t *testing.T, sensor *gatetest.In) {
	t.Helper()
	for range 2 {
		if !sensor.WaitRead(5 * time.Second) {
			t.Fatal("the passage watch stopped reading the sensor")
		}
	}
}

// TestForcedPassage: the passage sensor turning active with the gate
// locked is reported once per passage; a granted passage (through Open)
// is not, even though the sensor is still active when Open returns.
func TestForcedPassage(t *testing.T) {
	sensor := gatetest.NewIn("PASSAGE", nil)
	forced := make(chan struct{}, 4)
	ts, err := gate.NewTurnstile(gate.TurnstileConfig{PulseWidth: 10 * time.Millisecond, PassageTimeout: 5 * time.Second},
		gate.TurnstilePins{Relay: gatetest.NewOut("RELAY", nil), Passage: sensor},
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

	seen(t, sensor)
	noForced("idle")
	sensor.Set(gpio.High)
	select {
	case <-forced:
	case <-time.After(5 * time.Second):
		t.Fatal("sensor active with the gate locked: no forced passage reported")
	}
	seen(t, sensor)
	noForced("sensor still active")
	sensor.Set(gpio.Low)
	seen(t, sensor)

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
	seen(t, sensor)
	noForced("after a granted passage")
	sensor.Set(gpio.Low)
	seen(t, sensor)
	noForced("sensor idle again")
}
