package gate_test

import (
	"errors"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"wicket/device/gate"
	"wicket/device/gate/gatetest"
)

type leds struct {
	green, red, buzzer *gatetest.Out
	f                  *gate.Feedback
}

func newLeds(t *testing.T, clk fakeClock, cfg gate.FeedbackConfig) *leds {
	t.Helper()
	l := &leds{
		green:  gatetest.NewOut("GREEN", clk),
		red:    gatetest.NewOut("RED", clk),
		buzzer: gatetest.NewOut("BUZZER", clk),
	}
	f, err := gate.NewFeedback(cfg, gate.FeedbackPins{Green: l.green, Red: l.red, Buzzer: l.buzzer}, gate.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	l.f = f
	t.Cleanup(func() { _ = f.Close() })
	return l
}

// want checks the levels of green, red and buzzer.
func (l *leds) want(t *testing.T, what string, g, r, b gpio.Level) {
	t.Helper()
	wantLevel(t, l.green, what, g)
	wantLevel(t, l.red, what, r)
	wantLevel(t, l.buzzer, what, b)
}

const on, off = gpio.High, gpio.Low

func TestFeedbackAllow(t *testing.T) {
	clk := newFakeClock()
	l := newLeds(t, clk, gate.FeedbackConfig{})
	l.want(t, "at start", off, off, off)
	done := l.f.Show(gate.SignalAllow)
	clk.waitBlocked(t)
	l.want(t, "allow at 0", on, off, on)
	clk.step(t, 100*time.Millisecond)
	clk.waitBlocked(t)
	l.want(t, "allow at 100ms", on, off, off)
	clk.step(t, 900*time.Millisecond)
	receive(t, done)
	l.want(t, "allow done", off, off, off)
	want := []write{{0, off}, {0, on}, {time.Second, off}}
	if got := writes(l.green); !equalWrites(got, want) {
		t.Errorf("green writes = %v; want %v", got, want)
	}
}

func TestFeedbackPatternSteps(t *testing.T) {
	clk := newFakeClock()
	cfg := gate.FeedbackConfig{
		RedActiveLow: true,
		Deny: gate.Pattern{Red: []gate.Step{
			{On: 100 * time.Millisecond, Off: 50 * time.Millisecond},
			{Off: 50 * time.Millisecond},
			{On: 200 * time.Millisecond},
		}},
	}
	l := newLeds(t, clk, cfg)
	wantLevel(t, l.red, "active-low red at start", gpio.High)
	done := l.f.Show(gate.SignalDeny)
	clk.step(t, 400*time.Millisecond)
	receive(t, done)
	want := []write{{0, gpio.High}, {0, gpio.Low}, {100 * time.Millisecond, gpio.High}, {200 * time.Millisecond, gpio.Low}, {400 * time.Millisecond, gpio.High}}
	if got := writes(l.red); !equalWrites(got, want) {
		t.Errorf("red writes = %v; want %v", got, want)
	}
}

func TestFeedbackCancel(t *testing.T) {
	clk := newFakeClock()
	l := newLeds(t, clk, gate.FeedbackConfig{})
	first := l.f.Show(gate.SignalAllow)
	clk.waitBlocked(t)
	l.want(t, "allow", on, off, on)
	second := l.f.Show(gate.SignalDeny)
	receive(t, first)
	clk.waitBlocked(t)
	l.want(t, "deny replaced allow", off, on, on)
	clk.step(t, 1500*time.Millisecond)
	receive(t, second)
	l.want(t, "deny done", off, off, off)
}

func TestFeedbackClose(t *testing.T) {
	clk := newFakeClock()
	l := newLeds(t, clk, gate.FeedbackConfig{})
	done := l.f.Show(gate.SignalOffline)
	clk.step(t, 300*time.Millisecond)
	if err := l.f.Close(); err != nil {
		t.Fatal(err)
	}
	receive(t, done)
	l.want(t, "closed", off, off, off)
	receive(t, l.f.Show(gate.SignalAllow))
	l.want(t, "Show after Close", off, off, off)
}

func TestFeedbackMissingOutputs(t *testing.T) {
	clk := newFakeClock()
	f, err := gate.NewFeedback(gate.FeedbackConfig{}, gate.FeedbackPins{}, gate.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	done := f.Show(gate.SignalError)
	clk.step(t, 900*time.Millisecond)
	receive(t, done)
}

func TestFeedbackFailingOutput(t *testing.T) {
	clk := newFakeClock()
	bad := gatetest.NewOut("GREEN", clk)
	bad.FailWrite(1)
	f, err := gate.NewFeedback(gate.FeedbackConfig{}, gate.FeedbackPins{Green: bad}, gate.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	done := f.Show(gate.SignalAllow)
	clk.step(t, time.Second)
	receive(t, done)
	wantLevel(t, bad, "after a failed write", off)
}

func TestFeedbackConfig(t *testing.T) {
	long := make([]gate.Step, gate.MaxPatternSteps+1)
	for i := range long {
		long[i] = gate.Step{On: time.Millisecond}
	}
	bad := []gate.FeedbackConfig{
		{Allow: gate.Pattern{Green: []gate.Step{{On: -time.Second}}}},
		{Deny: gate.Pattern{Buzzer: long}},
		{Error: gate.Pattern{Red: []gate.Step{{On: time.Minute}}}},
	}
	for _, c := range bad {
		if _, err := gate.NewFeedback(c, gate.FeedbackPins{}, gate.Options{}); !errors.Is(err, gate.ErrConfig) {
			t.Errorf("NewFeedback(%+v) = %v; want ErrConfig", c, err)
		}
	}
}

func equalWrites(a, b []write) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFeedbackSetPatterns(t *testing.T) {
	clk := newFakeClock()
	l := newLeds(t, clk, gate.FeedbackConfig{})
	bad := gate.FeedbackConfig{Allow: gate.Pattern{Green: []gate.Step{{On: -time.Second}}}}
	if err := l.f.SetPatterns(bad); err == nil {
		t.Fatal("SetPatterns accepted a negative step")
	}
	if err := l.f.SetPatterns(gate.FeedbackConfig{Allow: gate.Pattern{Red: []gate.Step{{On: 200 * time.Millisecond}}}}); err != nil {
		t.Fatal(err)
	}
	done := l.f.Show(gate.SignalAllow)
	clk.waitBlocked(t)
	l.want(t, "new allow pattern at 0", off, on, off)
	clk.step(t, 200*time.Millisecond)
	receive(t, done)
	l.want(t, "new allow pattern done", off, off, off)
}
