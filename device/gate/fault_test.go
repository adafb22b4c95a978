package gate_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"wicket/device/gate"
)

func (p *outPin) setDead(dead bool) {
	p.mu.Lock()
	p.failAll = dead
	p.mu.Unlock()
}

// TestTurnstileRelayDeadThenBack: the relay pin stops taking writes for a
// while (a loose GPIO header, a driver fault) and then works again. A pin
// that dies before Open never unlocks the gate; one that dies during the
// pulse is reported as an ErrGPIO from Open, the turnstile does not claim
// to be unlocked, and the first Open after the pin is back drives it and
// leaves it locked.
// pulseTurnstile is a turnstile with a 100 ms pulse on a relay pin whose
// writes can be made to fail, on a fake clock.
func pulseTurnstile(t *testing.T) (fakeClock, *outPin, *gate.Turnstile) {
	t.Helper()
	clk := newFakeClock()
	relay := newOutPin("RELAY", clk.FakeClock)
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
		relay.setDead(true)
		for range 3 {
			if r := receive(t, open(ts)); r.p != gate.PassageError || !errors.Is(r.err, gate.ErrGPIO) {
				t.Errorf("Open() on a dead pin = %v, %v; want error, ErrGPIO", r.p, r.err)
			}
			relay.wantLevel(t, "dead pin", gpio.Low)
			if ts.Unlocked() {
				t.Error("Unlocked() = true on a dead pin")
			}
		}
		relay.setDead(false)
		res := open(ts)
		clk.step(t, 100*time.Millisecond)
		if r := receive(t, res); r.p != gate.PassageUnknown || r.err != nil {
			t.Errorf("Open() with the pin back = %v, %v; want unknown, nil", r.p, r.err)
		}
		relay.wantLevel(t, "pin back", gpio.Low)
	})

	t.Run("dies during the pulse", func(t *testing.T) {
		clk, relay, ts := pulseTurnstile(t)
		res := open(ts)
		clk.waitBlocked(t)
		relay.wantLevel(t, "pulse", gpio.High)
		relay.setDead(true)
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
		relay.setDead(false)
		deadline := time.Now().Add(5 * time.Second)
		for relay.level() != gpio.Low && time.Now().Before(deadline) {
			clk.Advance(time.Second)
			time.Sleep(5 * time.Millisecond)
		}
		relay.wantLevel(t, "after the pin came back, no Open", gpio.Low)
		cancel()
		<-done

		res = open(ts)
		clk.step(t, 100*time.Millisecond)
		if r := receive(t, res); r.p != gate.PassageUnknown || r.err != nil {
			t.Errorf("Open() with the pin back = %v, %v; want unknown, nil", r.p, r.err)
		}
		relay.wantLevel(t, "after an Open with the pin back", gpio.Low)
		if err := ts.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
		relay.wantLevel(t, "closed", gpio.Low)
	})
}
