package loop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"wicket/decoder"
	"wicket/device/gate"
	"wicket/internal/testkit"
)

var errPinDead = errors.New("gpio: write refused")

// flakyPin is a gpio.PinIO whose writes fail while dead is set, or after
// failAfter more successful writes.
type flakyPin struct {
	gpio.PinIO
	dead      atomic.Bool
	failAfter atomic.Int64 // -1: off
}

func newFlakyPin() *flakyPin {
	p := &flakyPin{PinIO: &gpiotest.Pin{N: "RELAY"}}
	p.failAfter.Store(-1)
	return p
}

func (p *flakyPin) Out(l gpio.Level) error {
	if n := p.failAfter.Load(); n == 0 {
		p.dead.Store(true)
		p.failAfter.Store(-1)
	} else if n > 0 {
		p.failAfter.Add(-1)
	}
	if p.dead.Load() {
		return errPinDead
	}
	return p.PinIO.Out(l)
}

func (p *flakyPin) level() gpio.Level { return p.PinIO.Read() }

// TestRelayFaultDuringAllowedCode: the relay's GPIO fails while the loop
// handles an allowed code. The decision is already durable; the turnstile
// fails secure (the relay never energised, or it is reported as not
// unlocked); the fault is logged and recorded as a passage "error" event
// (which goes to the outbox with the rest); and once the pin works again
// the next allowed code opens and relocks the gate normally.
func TestRelayFaultDuringAllowedCode(t *testing.T) {
	r := newRig(t, 10*time.Millisecond, 0)
	pin := newFlakyPin()
	logs := &testkit.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	ts, err := gate.NewTurnstile(gate.TurnstileConfig{RelayPin: "RELAY", Mode: gate.RelayPulse, PulseWidth: 10 * time.Millisecond, PassageTimeout: time.Second},
		gate.TurnstilePins{Relay: pin}, gate.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.Close() })
	l := New(Config{Gate: "G1", Venue: "V1"}, r.f.Verifier, r.st, ts, nil, log)
	n := 0
	code := func() string {
		n++
		c := r.f.Claims(decoder.KindPrinted)
		c.ID = fmt.Appendf(nil, "relay-fault-%d", n)
		return r.f.Issue(t, r.f.Ed, c)
	}
	passage := func(seq uint64) string {
		t.Helper()
		evs, err := r.st.Events(seq, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Type == "passage" && e.Ref == seq {
				return e.Detail
			}
		}
		t.Fatalf("no passage event for seq %d", seq)
		return ""
	}
	ctx := context.Background()

	// Dead before the code: the relay never energises.
	pin.dead.Store(true)
	res := l.Handle(ctx, r.scan(code()))
	if !res.Decision.Allow || res.Seq == 0 || res.Passage != gate.PassageError {
		t.Fatalf("dead relay: allow %v seq %d passage %v; want the committed allow with a passage error", res.Decision.Allow, res.Seq, res.Passage)
	}
	if pin.level() != gpio.Low || ts.Unlocked() {
		t.Errorf("dead relay: level %v, Unlocked %v; want locked", pin.level(), ts.Unlocked())
	}
	if d := passage(res.Seq); d != "error" {
		t.Errorf("dead relay: passage event %q; want error", d)
	}

	// Dies between unlock and lock: the lock write and the safe-state
	// retry fail.
	pin.dead.Store(false)
	pin.failAfter.Store(1)
	res = l.Handle(ctx, r.scan(code()))
	if !res.Decision.Allow || res.Passage != gate.PassageError {
		t.Fatalf("relay died in the pulse: allow %v passage %v; want allowed with a passage error", res.Decision.Allow, res.Passage)
	}
	if ts.Unlocked() {
		t.Error("relay died in the pulse: the turnstile claims to be unlocked")
	}
	if d := passage(res.Seq); d != "error" {
		t.Errorf("relay died in the pulse: passage event %q; want error", d)
	}
	if pin.level() == gpio.High {
		t.Log("known: the relay is still energised after the failed lock; see device/gate TestTurnstileRelayDeadThenBack")
	}

	// Back: the next allowed code drives the relay and relocks it.
	pin.dead.Store(false)
	res = l.Handle(ctx, r.scan(code()))
	if !res.Decision.Allow || res.Passage != gate.PassageUnknown {
		t.Fatalf("relay back: allow %v passage %v; want allowed, passage unknown", res.Decision.Allow, res.Passage)
	}
	if pin.level() != gpio.Low || ts.Unlocked() {
		t.Errorf("relay back: level %v, Unlocked %v; want locked after the pulse", pin.level(), ts.Unlocked())
	}
	if d := passage(res.Seq); d != "unknown" {
		t.Errorf("relay back: passage event %q; want unknown", d)
	}

	out := logs.String()
	for _, want := range []string{"relay stuck: cannot reach the safe state", "turnstile did not open normally"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	ob, err := r.st.Outbox(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	errs, alerts := 0, 0
	for _, o := range ob {
		if o.Type == "passage" && o.Detail == "error" {
			errs++
		}
		if o.Type == "alert" && o.Reason == "relay_fault" && o.Ref != 0 {
			alerts++
		}
	}
	if errs != 2 || alerts != 2 {
		t.Errorf("outbox holds %d passage error records and %d relay alerts; want 2 of each", errs, alerts)
	}
}
