package gate_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"wicket/device/gate"
	"wicket/device/gate/gatetest"
)

func TestTurnstilePulse(t *testing.T) {
	for _, activeLow := range []bool{false, true} {
		t.Run(map[bool]string{false: "active high", true: "active low"}[activeLow], func(t *testing.T) {
			clk := newFakeClock()
			relay := gatetest.NewOut("RELAY", clk)
			sensor := gatetest.NewIn("PASSAGE", clk)
			ts, err := gate.NewTurnstile(gate.TurnstileConfig{
				RelayActiveLow: activeLow,
				PulseWidth:     500 * time.Millisecond,
				PassageTimeout: 3 * time.Second,
			}, gate.TurnstilePins{Relay: relay, Passage: sensor}, gate.Options{Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			locked, unlocked := gpio.Level(activeLow), gpio.Level(!activeLow)
			wantLevel(t, relay, "at start", locked)

			res := open(ts)
			clk.waitBlocked(t)
			wantLevel(t, relay, "after Open", unlocked)
			clk.step(t, 499*time.Millisecond)
			wantLevel(t, relay, "at 499ms", unlocked)
			clk.step(t, time.Millisecond)
			clk.waitBlocked(t)
			wantLevel(t, relay, "at 500ms", locked)
			clk.step(t, time.Second)
			clk.waitBlocked(t)
			sensor.EdgesChan <- gpio.High

			if r := receive(t, res); r.p != gate.Passed || r.err != nil {
				t.Errorf("Open() = %v, %v; want passed, nil", r.p, r.err)
			}
			want := []write{{0, locked}, {0, unlocked}, {500 * time.Millisecond, locked}}
			if got := writes(relay); !slices.Equal(got, want) {
				t.Errorf("relay writes = %v; want %v", got, want)
			}
		})
	}
}

func TestTurnstileLevelMode(t *testing.T) {
	clk := newFakeClock()
	relay := gatetest.NewOut("RELAY", clk)
	sensor := gatetest.NewIn("PASSAGE", clk)
	ts, err := gate.NewTurnstile(gate.TurnstileConfig{
		Mode:             gate.RelayLevel,
		PassageTimeout:   5 * time.Second,
		PassageActiveLow: true,
	}, gate.TurnstilePins{Relay: relay, Passage: sensor}, gate.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	res := open(ts)
	clk.step(t, 1200*time.Millisecond)
	wantLevel(t, relay, "held", gpio.High)
	clk.waitBlocked(t)
	sensor.EdgesChan <- gpio.Low
	if r := receive(t, res); r.p != gate.Passed || r.err != nil {
		t.Errorf("Open() = %v, %v; want passed, nil", r.p, r.err)
	}
	want := []write{{0, gpio.Low}, {0, gpio.High}, {1200 * time.Millisecond, gpio.Low}}
	if got := writes(relay); !slices.Equal(got, want) {
		t.Errorf("relay writes = %v; want %v (released on passage)", got, want)
	}
}

func TestTurnstileNotPassed(t *testing.T) {
	for _, mode := range []gate.RelayMode{gate.RelayPulse, gate.RelayLevel} {
		t.Run(mode.String(), func(t *testing.T) {
			clk := newFakeClock()
			relay := gatetest.NewOut("RELAY", clk)
			ts, err := gate.NewTurnstile(gate.TurnstileConfig{
				Mode:           mode,
				PulseWidth:     300 * time.Millisecond,
				PassageTimeout: 2 * time.Second,
			}, gate.TurnstilePins{Relay: relay, Passage: gatetest.NewIn("PASSAGE", clk)}, gate.Options{Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			res := open(ts)
			clk.step(t, 2*time.Second)
			if r := receive(t, res); r.p != gate.NotPassed || r.err != nil {
				t.Errorf("Open() = %v, %v; want not passed, nil", r.p, r.err)
			}
			lockAt := 300 * time.Millisecond
			if mode == gate.RelayLevel {
				lockAt = 2 * time.Second
			}
			want := []write{{0, gpio.Low}, {0, gpio.High}, {lockAt, gpio.Low}}
			if got := writes(relay); !slices.Equal(got, want) {
				t.Errorf("relay writes = %v; want %v", got, want)
			}
		})
	}
}

func TestTurnstileWithoutSensor(t *testing.T) {
	for _, tt := range []struct {
		mode   gate.RelayMode
		lockAt time.Duration
	}{{gate.RelayPulse, 500 * time.Millisecond}, {gate.RelayLevel, 4 * time.Second}} {
		t.Run(tt.mode.String(), func(t *testing.T) {
			clk := newFakeClock()
			relay := gatetest.NewOut("RELAY", clk)
			ts, err := gate.NewTurnstile(gate.TurnstileConfig{Mode: tt.mode, PassageTimeout: 4 * time.Second},
				gate.TurnstilePins{Relay: relay}, gate.Options{Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			res := open(ts)
			clk.step(t, tt.lockAt)
			if r := receive(t, res); r.p != gate.PassageUnknown || r.err != nil {
				t.Errorf("Open() = %v, %v; want unknown, nil", r.p, r.err)
			}
			want := []write{{0, gpio.Low}, {0, gpio.High}, {tt.lockAt, gpio.Low}}
			if got := writes(relay); !slices.Equal(got, want) {
				t.Errorf("relay writes = %v; want %v", got, want)
			}
		})
	}
}

func TestTurnstileCancel(t *testing.T) {
	clk := newFakeClock()
	relay := gatetest.NewOut("RELAY", clk)
	ts, err := gate.NewTurnstile(gate.TurnstileConfig{Mode: gate.RelayLevel},
		gate.TurnstilePins{Relay: relay, Passage: gatetest.NewIn("PASSAGE", clk)}, gate.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan result, 1)
	go func() {
		p, err := ts.Open(ctx)
		res <- result{p, err}
	}()
	clk.waitBlocked(t)
	cancel()
	// gpiotest's Halt does not wake WaitForEdge; its timeout does.
	clk.Advance(time.Second)
	if r := receive(t, res); r.p != gate.PassageError || !errors.Is(r.err, context.Canceled) {
		t.Errorf("Open() = %v, %v; want error, context.Canceled", r.p, r.err)
	}
	wantLevel(t, relay, "after cancel", gpio.Low)
}

func TestTurnstileGPIOError(t *testing.T) {
	for _, tt := range []struct {
		name     string
		failSafe bool
		fail     int // which write fails: 1 unlock, 2 lock
		want     gpio.Level
	}{
		{"unlock fails, fail-secure", false, 1, gpio.Low},
		{"unlock fails, fail-safe", true, 1, gpio.High},
		{"lock fails, fail-secure", false, 2, gpio.Low},
		{"lock fails, fail-safe", true, 2, gpio.High},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			relay := gatetest.NewOut("RELAY", clk)
			relay.FailWrite(tt.fail)
			ts, err := gate.NewTurnstile(gate.TurnstileConfig{FailSafe: tt.failSafe},
				gate.TurnstilePins{Relay: relay}, gate.Options{Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			res := open(ts)
			if tt.fail == 2 {
				clk.step(t, 500*time.Millisecond)
			}
			if r := receive(t, res); r.p != gate.PassageError || !errors.Is(r.err, gate.ErrGPIO) {
				t.Errorf("Open() = %v, %v; want error, ErrGPIO", r.p, r.err)
			}
			wantLevel(t, relay, "after the error", tt.want)
			if got := ts.Unlocked(); got != (tt.want == gpio.High) {
				t.Errorf("Unlocked() = %v; want %v", got, tt.want == gpio.High)
			}

			// The next Open tries again and works.
			res = open(ts)
			clk.step(t, 500*time.Millisecond)
			if r := receive(t, res); r.p != gate.PassageUnknown || r.err != nil {
				t.Errorf("Open() after the error = %v, %v; want unknown, nil", r.p, r.err)
			}
			wantLevel(t, relay, "after a good Open", gpio.Low)
		})
	}
}

func TestTurnstileDeadPin(t *testing.T) {
	clk := newFakeClock()
	relay := gatetest.NewOut("RELAY", clk)
	relay.SetDead(true)
	_, err := gate.NewTurnstile(gate.TurnstileConfig{}, gate.TurnstilePins{Relay: relay}, gate.Options{Clock: clk})
	if !errors.Is(err, gate.ErrGPIO) {
		t.Errorf("NewTurnstile(dead relay pin) = %v; want ErrGPIO", err)
	}
}

func TestTurnstileClose(t *testing.T) {
	for _, failSafe := range []bool{false, true} {
		clk := newFakeClock()
		relay := gatetest.NewOut("RELAY", clk)
		ts, err := gate.NewTurnstile(gate.TurnstileConfig{FailSafe: failSafe, RelayActiveLow: true},
			gate.TurnstilePins{Relay: relay}, gate.Options{Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		wantLevel(t, relay, "in service", gpio.High)
		if err := ts.Close(); err != nil {
			t.Fatal(err)
		}
		if err := ts.Close(); err != nil {
			t.Errorf("second Close() = %v; want nil", err)
		}
		wantLevel(t, relay, "closed, fail-safe "+map[bool]string{false: "off", true: "on"}[failSafe], gpio.Level(!failSafe))
		if _, err := ts.Open(context.Background()); !errors.Is(err, gate.ErrClosed) {
			t.Errorf("Open() after Close = %v; want ErrClosed", err)
		}
	}
}

func TestTurnstileCloseEndsOpen(t *testing.T) {
	clk := newFakeClock()
	relay := gatetest.NewOut("RELAY", clk)
	ts, err := gate.NewTurnstile(gate.TurnstileConfig{Mode: gate.RelayLevel},
		gate.TurnstilePins{Relay: relay, Passage: gatetest.NewIn("PASSAGE", clk)}, gate.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	res := open(ts)
	clk.waitBlocked(t)
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	wantLevel(t, relay, "closed during Open", gpio.Low)
	clk.Advance(time.Second)
	if r := receive(t, res); !errors.Is(r.err, gate.ErrClosed) {
		t.Errorf("Open() = %v, %v; want ErrClosed", r.p, r.err)
	}
	wantLevel(t, relay, "after Open returned", gpio.Low)
}

// emergencyRig is a turnstile with an active-high emergency input
// watched by Run. The input's WaitForEdge times out on the real clock, so
// the fake one only drives Open.
type emergencyRig struct {
	clk    fakeClock
	relay  *gatetest.Out
	alarm  *gatetest.In
	ts     *gate.Turnstile
	states chan gate.EmergencyState
}

func newEmergencyRig(t *testing.T, initial gpio.Level) *emergencyRig {
	t.Helper()
	clk := newFakeClock()
	r := &emergencyRig{
		clk:    clk,
		relay:  gatetest.NewOut("RELAY", clk),
		alarm:  gatetest.NewIn("ALARM", nil),
		states: make(chan gate.EmergencyState, 16),
	}
	r.alarm.Set(initial)
	ts, err := gate.NewTurnstile(gate.TurnstileConfig{},
		gate.TurnstilePins{Relay: r.relay, Emergency: r.alarm},
		gate.Options{Clock: clk, OnEmergency: func(s gate.EmergencyState) { r.states <- s }})
	if err != nil {
		t.Fatal(err)
	}
	r.ts = ts
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := receive(t, done); err != nil {
			t.Errorf("Run() = %v; want nil", err)
		}
	})
	return r
}

func (r *emergencyRig) wantState(t *testing.T, want gate.EmergencyState) {
	t.Helper()
	if got := receive(t, r.states); got != want {
		t.Errorf("OnEmergency(%v); want %v", got, want)
	}
}

func TestEmergency(t *testing.T) {
	r := newEmergencyRig(t, gpio.Low)
	r.alarm.EdgesChan <- gpio.High
	r.wantState(t, gate.EmergencyActive)
	wantLevel(t, r.relay, "emergency active", gpio.High)
	if got := r.ts.EmergencyState(); got != gate.EmergencyActive {
		t.Errorf("EmergencyState() = %v; want active", got)
	}
	if _, err := r.ts.Open(context.Background()); !errors.Is(err, gate.ErrEmergency) {
		t.Errorf("Open() during emergency = %v; want ErrEmergency", err)
	}
	if err := r.ts.Acknowledge(); !errors.Is(err, gate.ErrEmergencyActive) {
		t.Errorf("Acknowledge() while active = %v; want ErrEmergencyActive", err)
	}
	wantLevel(t, r.relay, "acknowledge refused", gpio.High)

	r.alarm.EdgesChan <- gpio.Low
	r.wantState(t, gate.EmergencyLatched)
	wantLevel(t, r.relay, "cleared, not acknowledged", gpio.High)

	r.alarm.EdgesChan <- gpio.High
	r.wantState(t, gate.EmergencyActive)
	r.alarm.EdgesChan <- gpio.Low
	r.wantState(t, gate.EmergencyLatched)

	if err := r.ts.Acknowledge(); err != nil {
		t.Errorf("Acknowledge() = %v; want nil", err)
	}
	r.wantState(t, gate.EmergencyNormal)
	wantLevel(t, r.relay, "acknowledged", gpio.Low)
	if err := r.ts.Acknowledge(); err != nil {
		t.Errorf("second Acknowledge() = %v; want nil", err)
	}

	res := open(r.ts)
	r.clk.step(t, 500*time.Millisecond)
	if got := receive(t, res); got.err != nil {
		t.Errorf("Open() after acknowledge = %v, %v; want no error", got.p, got.err)
	}
}

// TestAcknowledgeReadsTheInput: an alarm that comes back after it cleared
// keeps the gate free even if Acknowledge comes before Run has seen it.
func TestAcknowledgeReadsTheInput(t *testing.T) {
	r := newEmergencyRig(t, gpio.Low)
	r.alarm.EdgesChan <- gpio.High
	r.wantState(t, gate.EmergencyActive)
	r.alarm.EdgesChan <- gpio.Low
	r.wantState(t, gate.EmergencyLatched)
	// The alarm panel trips again; no edge reaches Run yet.
	r.alarm.Set(gpio.High)
	if err := r.ts.Acknowledge(); !errors.Is(err, gate.ErrEmergencyActive) {
		t.Errorf("Acknowledge() with the input active again = %v; want ErrEmergencyActive", err)
	}
	wantLevel(t, r.relay, "acknowledge refused", gpio.High)
	if got := r.ts.EmergencyState(); got == gate.EmergencyNormal {
		t.Errorf("EmergencyState() = %v; want the release kept", got)
	}
}

func TestEmergencyDuringOpen(t *testing.T) {
	r := newEmergencyRig(t, gpio.Low)
	res := open(r.ts)
	r.clk.step(t, 100*time.Millisecond)
	r.alarm.EdgesChan <- gpio.High
	r.wantState(t, gate.EmergencyActive)
	r.clk.step(t, 400*time.Millisecond)
	if got := receive(t, res); got.err != nil {
		t.Errorf("Open() = %v, %v; want no error", got.p, got.err)
	}
	wantLevel(t, r.relay, "pulse over, emergency on", gpio.High)
	if err := r.ts.Close(); err != nil {
		t.Fatal(err)
	}
	wantLevel(t, r.relay, "closed during emergency", gpio.High)
}

func TestEmergencyAtStart(t *testing.T) {
	r := newEmergencyRig(t, gpio.High)
	r.wantState(t, gate.EmergencyActive)
	wantLevel(t, r.relay, "emergency active at start", gpio.High)
	if got := writes(r.relay); len(got) == 0 || got[0].l != gpio.High {
		t.Errorf("relay writes = %v; want the first to unlock", got)
	}
}

func TestEmergencyActiveLowPolled(t *testing.T) {
	clk := newFakeClock()
	relay := gatetest.NewOut("RELAY", clk)
	// No EdgesChan: the pin refuses edge detection, so Run polls it.
	alarm := gatetest.NewPolledIn("ALARM", clk)
	alarm.Set(gpio.High)
	states := make(chan gate.EmergencyState, 8)
	ts, err := gate.NewTurnstile(gate.TurnstileConfig{EmergencyActiveLow: true},
		gate.TurnstilePins{Relay: relay, Emergency: alarm},
		gate.Options{Clock: clk, OnEmergency: func(s gate.EmergencyState) { states <- s }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.Run(ctx) }()
	clk.waitBlocked(t)
	alarm.Set(gpio.Low)
	clk.Advance(250 * time.Millisecond)
	if s := receive(t, states); s != gate.EmergencyActive {
		t.Errorf("state = %v; want active", s)
	}
	wantLevel(t, relay, "polled alarm", gpio.High)
	cancel()
	if err := receive(t, done); err != nil {
		t.Errorf("Run() = %v; want nil", err)
	}
}

func TestTurnstileConfig(t *testing.T) {
	clk := newFakeClock()
	bad := []gate.TurnstileConfig{
		{Mode: 9},
		{PassageTimeout: 2 * time.Minute},
		{PulseWidth: -time.Second},
		{PulseWidth: gate.DefaultPassageTimeout + time.Second}, // longer than the default passage wait
		{EmergencyPull: 7},
	}
	for _, c := range bad {
		if _, err := gate.NewTurnstile(c, gate.TurnstilePins{Relay: gatetest.NewOut("R", clk)}, gate.Options{}); !errors.Is(err, gate.ErrConfig) {
			t.Errorf("NewTurnstile(%+v) = %v; want ErrConfig", c, err)
		}
	}
	if _, err := gate.NewTurnstile(gate.TurnstileConfig{}, gate.TurnstilePins{}, gate.Options{}); !errors.Is(err, gate.ErrConfig) {
		t.Errorf("NewTurnstile(no relay) = %v; want ErrConfig", err)
	}
	var m gate.RelayMode
	if err := m.UnmarshalText([]byte("level")); err != nil || m != gate.RelayLevel {
		t.Errorf("UnmarshalText(level) = %v, %v; want level", m, err)
	}
	var p gate.Pull
	if err := p.UnmarshalText([]byte("sideways")); !errors.Is(err, gate.ErrConfig) {
		t.Errorf("Pull.UnmarshalText(sideways) = %v; want ErrConfig", err)
	}
}
