package gate_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"wicket/device/gate"
	"wicket/device/gate/gatetest"
)

// TestTurnstileRelayDeadThenBack: the relay pin stops taking writes for a
// while (a loose GPIO header, a driver fault) and then works again. A pin
// that dies before Open never unlocks the gate; one that dies during the
// pulse is reported as an ErrGPIO from Open, the turnstile does not claim
// to be unlocked, and the first Open after the pin is back drives it and
// leaves it locked.
// pulseTurnstile is a turnstile with a 100 ms pulse on a relay pin whose
// writes can be made to fail, on a fake clock.
func pulseTurnstile(t *testing.T) (fakeClock, *gatetest.Out, *gate.Turnstile) {
	t.Helper()
	clk := newFakeClock()
	relay := gatetest.NewOut("RELAY", clk)
	ts, err := gate.NewTurnstile(gate.TurnstileConfig{PulseWidth: 100 * time.Millisecond},
		gate.TurnstilePins{Relay: relay}, gate.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return clk, relay, ts
}

func TestTurnstileRelayDeadThenBack(t *testing.T) {
	t.Run("dead before open", func(t *testing.T) {
		clk, relay, ts := pulseTurnstile(t)
		relay.SetDead(true)
		for range 3 {
			if r := receive(t, open(ts)); r.p != gate.PassageError || !errors.Is(r.err, gate.ErrGPIO) {
				t.Errorf("Open() on a dead pin = %v, %v; want error, ErrGPIO", r.p, r.err)
			}
			wantLevel(t, relay, "dead pin", gpio.Low)
			if ts.Unlocked() {
				t.Error("Unlocked() = true on a dead pin")
			}
		}
		relay.SetDead(false)
		res := open(ts)
		clk.step(t, 100*time.Millisecond)
		if r := receive(t, res); r.p != gate.PassageUnknown || r.err != nil {
			t.Errorf("Open() with the pin back = %v, %v; want unknown, nil", r.p, r.err)
		}
		wantLevel(t, relay, "pin back", gpio.Low)
	})

	t.Run("dies during the pulse", func(t *testing.T) {
		clk, relay, ts := pulseTurnstile(t)
		res := open(ts)
		clk.waitBlocked(t)
		wantLevel(t, relay, "pulse", gpio.High)
		relay.SetDead(true)
		clk.step(t, 100*time.Millisecond)
		if r := receive(t, res); r.p != gate.PassageError || !errors.Is(r.err, gate.ErrGPIO) {
			t.Errorf("Open() with the lock write failing = %v, %v; want error, ErrGPIO", r.p, r.err)
		}
		if ts.Unlocked() {
			t.Error("Unlocked() = true after a failed lock")
		}
		// Run retries the safe state: once the pin works again the relay is
		// locked without waiting for the next Open.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { ts.Run(ctx); close(done) }()
		relay.SetDead(false)
		clk.waitBlocked(t) // Run waits to retry
		clk.Advance(time.Second)
		clk.waitBlocked(t) // and has retried
		wantLevel(t, relay, "after the pin came back, no Open", gpio.Low)
		cancel()
		<-done

		res = open(ts)
		clk.step(t, 100*time.Millisecond)
		if r := receive(t, res); r.p != gate.PassageUnknown || r.err != nil {
			t.Errorf("Open() with the pin back = %v, %v; want unknown, nil", r.p, r.err)
		}
		wantLevel(t, relay, "after an Open with the pin back", gpio.Low)
		if err := ts.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
		wantLevel(t, relay, "closed", gpio.Low)
	})
}
