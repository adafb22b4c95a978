package gate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"wicket/device/gate"
	"wicket/internal/testkit"
)

func TestSim(t *testing.T) {
	clk := newFakeClock()
	var out testkit.Buffer
	states := make(chan gate.EmergencyState, 8)
	sim, err := gate.NewSim(&out, gate.Config{}, gate.SimConfig{PassAfter: 300 * time.Millisecond},
		gate.Options{Clock: clk, OnEmergency: func(s gate.EmergencyState) { states <- s }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := make(chan error, 1)
	go func() { run <- sim.Turnstile.Run(ctx) }()

	res := open(sim.Turnstile)
	clk.step(t, 500*time.Millisecond)
	if r := receive(t, res); r.p != gate.Passed || r.err != nil {
		t.Errorf("Open() = %v, %v; want passed, nil", r.p, r.err)
	}
	done := sim.Feedback.Show(gate.SignalAllow)
	clk.step(t, time.Second)
	receive(t, done)

	sim.Emergency.Set(true)
	if s := receive(t, states); s != gate.EmergencyActive {
		t.Errorf("state = %v; want active", s)
	}
	sim.Emergency.Set(false)
	if s := receive(t, states); s != gate.EmergencyLatched {
		t.Errorf("state = %v; want latched", s)
	}
	if err := sim.Turnstile.Acknowledge(); err != nil {
		t.Fatal(err)
	}
	receive(t, states)
	cancel()
	if err := receive(t, run); err != nil {
		t.Errorf("Run() = %v", err)
	}
	if err := sim.Turnstile.Close(); err != nil {
		t.Fatal(err)
	}

	want := strings.Join([]string{
		"turnstile: start: relay OFF (lock)",
		"turnstile: relay ON (unlock) for 500ms",
		"turnstile: passage detected",
		"turnstile: relay OFF (lock)",
		"led green: on 1s",
		"buzzer: beep 100ms",
		"turnstile: emergency input active: relay ON (unlock) until cleared and acknowledged",
		"turnstile: emergency input cleared: gate stays free until acknowledged",
		"turnstile: emergency acknowledged: relay OFF (lock)",
		"turnstile: closed: relay OFF (lock)",
	}, "\n") + "\n"
	if got := out.String(); got != want {
		t.Errorf("narration:\n%s\nwant:\n%s", got, want)
	}
}

func TestSimNobodyPasses(t *testing.T) {
	clk := newFakeClock()
	var out testkit.Buffer
	sim, err := gate.NewSim(&out, gate.Config{Turnstile: gate.TurnstileConfig{Mode: gate.RelayLevel, PassageTimeout: 2 * time.Second}},
		gate.SimConfig{}, gate.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	res := open(sim.Turnstile)
	clk.step(t, 2*time.Second)
	if r := receive(t, res); r.p != gate.NotPassed || r.err != nil {
		t.Errorf("Open() = %v, %v; want not passed, nil", r.p, r.err)
	}
	want := "turnstile: start: relay OFF (lock)\n" +
		"turnstile: relay ON (unlock) until passage, at most 2s\n" +
		"turnstile: relay OFF (lock)\n" +
		"turnstile: no passage within 2s\n"
	if got := out.String(); got != want {
		t.Errorf("narration:\n%s\nwant:\n%s", got, want)
	}
}
