package loop

import (
	"context"
	"errors"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/device/thermo"
	"wicket/verifier"
)

type deadSensor struct{}

func (deadSensor) Read(context.Context) (float64, bool, error) {
	return 0, false, errors.Join(thermo.ErrFault, errors.New("i2c: no ACK"))
}
func (deadSensor) Close() error { return nil }

// TestTemperature runs the loop with a thermo.Monitor over a simulated or
// failing sensor under each policy.temperature setting.
func TestTemperature(t *testing.T) {
	for _, tc := range []struct {
		name     string
		readings []float64 // nil: a failing sensor
		policy   func(*verifier.TemperaturePolicy)
		colour   decoder.Colour
		allow    bool
		reason   verifier.Reason
		state    string
		celsius  float64
		alert    bool
		warning  verifier.Reason
	}{
		{name: "normal", readings: []float64{36.6}, allow: true, reason: verifier.ReasonOK, state: TempNormal},
		{name: "normal kept as a number", readings: []float64{36.6}, policy: func(p *verifier.TemperaturePolicy) { p.RecordValue = true },
			allow: true, reason: verifier.ReasonOK, state: TempNormal, celsius: 36.6},
		{name: "fever", readings: []float64{38.2}, reason: verifier.ReasonFever, state: TempFever, alert: true},
		{name: "at the threshold", readings: []float64{37.3}, reason: verifier.ReasonFever, state: TempFever, alert: true},
		{name: "nobody in front", readings: []float64{22}, reason: verifier.ReasonNoTemperature, state: TempNone},
		{name: "nobody, warn", readings: []float64{22}, policy: func(p *verifier.TemperaturePolicy) { p.OnNoReading = verifier.FallbackWarn },
			allow: true, reason: verifier.ReasonOK, state: TempNone, warning: verifier.ReasonNoTemperature},
		{name: "sensor failing", reason: verifier.ReasonThermometerFault, state: TempFault},
		{name: "denied code: no measurement", readings: []float64{38.2}, colour: decoder.ColourYellow, reason: verifier.ReasonColourYellow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 20*time.Millisecond, 0)
			p := r.f.Policy
			p.Temperature.Required = true
			p.Temperature.Timeout = 150 * time.Millisecond
			if tc.policy != nil {
				tc.policy(&p.Temperature)
			}
			if err := r.loop.v.SetPolicy(&p); err != nil {
				t.Fatal(err)
			}
			var s thermo.Sensor = deadSensor{}
			if tc.readings != nil {
				s = thermo.NewSim(tc.readings)
			}
			m := thermo.NewMonitor(s, 20*time.Millisecond, 0)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go m.Run(ctx)
			r.rebuild(Options{Thermometer: m})

			c := r.f.Claims(decoder.KindPrinted)
			if tc.colour != 0 {
				c.Voucher.Colour = tc.colour
			}
			writes := len(r.relay.Writes())
			res := r.loop.Handle(ctx, r.scan(r.f.Issue(t, r.f.Ed, c)))
			d := res.Decision
			if d.Allow != tc.allow || d.Reason != tc.reason || d.Alert != tc.alert {
				t.Fatalf("decision %v %s alert %v (%s); want %v %s alert %v", d.Allow, d.Reason, d.Alert, d.Detail, tc.allow, tc.reason, tc.alert)
			}
			if !tc.allow && len(r.relay.Writes()) != writes {
				t.Error("relay moved for a denied code")
			}
			if tc.warning != "" && (len(d.Warnings) != 1 || d.Warnings[0] != tc.warning) {
				t.Errorf("warnings %v; want %s", d.Warnings, tc.warning)
			}
			if (tc.reason == verifier.ReasonFever || tc.reason == verifier.ReasonNoTemperature || tc.reason == verifier.ReasonThermometerFault) != d.Attendant {
				t.Errorf("attendant = %v: fever, missing readings and sensor faults go to an attendant by default", d.Attendant)
			}
			evs, err := r.st.Events(0, 10)
			if err != nil || len(evs) == 0 {
				t.Fatal(err)
			}
			ev := evs[0]
			if ev.Temperature != tc.state || ev.Celsius != tc.celsius || ev.Alert != tc.alert {
				t.Errorf("event temperature %q %v alert %v; want %q %v alert %v", ev.Temperature, ev.Celsius, ev.Alert, tc.state, tc.celsius, tc.alert)
			}
			if tc.reason == verifier.ReasonFever && !tc.allow && (ev.Subject == "" || ev.Gate != "G1" || ev.Venue != "V1") {
				t.Errorf("fever alert record lacks gate, venue or subject hash: %+v", ev)
			}
		})
	}
}

// A reading taken just before the scan, within the window, counts; one
// older than the window does not.
func TestTemperatureWindow(t *testing.T) {
	r := newRig(t, 20*time.Millisecond, 0)
	p := r.f.Policy
	p.Temperature.Required = true
	p.Temperature.Window = 300 * time.Millisecond
	p.Temperature.Timeout = 100 * time.Millisecond
	if err := r.loop.v.SetPolicy(&p); err != nil {
		t.Fatal(err)
	}
	sim := thermo.NewSim([]float64{36.5})
	m := thermo.NewMonitor(sim, 10*time.Millisecond, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)
	r.rebuild(Options{Thermometer: noTrigger{m}})

	// Measure, then scan within the window.
	sim.Trigger()
	if _, err := m.Wait(ctx, time.Now().Add(-time.Second), time.Second); err != nil {
		t.Fatal(err)
	}
	if d := r.loop.Handle(ctx, r.scan(r.f.Issue(t, r.f.Ed, r.f.Claims(decoder.KindPrinted)))).Decision; !d.Allow {
		t.Fatalf("reading within the window: %s %s", d.Reason, d.Detail)
	}
	// The same reading, now older than the window: no reading.
	time.Sleep(400 * time.Millisecond)
	c := r.f.Claims(decoder.KindPrinted)
	c.ID = []byte("another-voucher")
	if d := r.loop.Handle(ctx, r.scan(r.f.Issue(t, r.f.Ed, c))).Decision; d.Reason != verifier.ReasonNoTemperature {
		t.Fatalf("reading older than the window: %s; want no_temperature", d.Reason)
	}
}

// noTrigger hides the monitor's Trigger, so only the test measures.
type noTrigger struct{ *thermo.Monitor }

func (noTrigger) Trigger() bool { return false }
