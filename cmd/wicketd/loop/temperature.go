package loop

import (
	"context"
	"fmt"
	"time"

	"wicket/device/thermo"
	"wicket/verifier"
)

// Thermometer gives the loop a body-temperature reading close to a scan
// (thermo.Monitor).
type Thermometer interface {
	// Trigger asks an on-demand sensor to measure (the demo's) and
	// reports whether it is one.
	Trigger() bool
	// Wait returns a reading taken at or after since, waiting up to
	// timeout.
	Wait(ctx context.Context, since time.Time, timeout time.Duration) (thermo.Reading, error)
	// Health is nil while the sensor works.
	Health() (faults uint64, err error)
}

// Temperature states in access records: only these, never the number,
// unless policy.temperature.record_value asks for it.
const (
	TempNormal = "normal"
	TempFever  = "fever"
	TempNone   = "none"  // no reading in time
	TempFault  = "fault" // no reading, and the sensor is failing
)

// temperature is what the check found.
type temperature struct {
	state   string
	celsius float64 // 0 unless the policy keeps the value
}

// checkTemperature applies policy.temperature to a decision that would
// let the holder through (or call an attendant): it waits for a reading
// taken within the window of the scan, denies a fever with an alert, and
// denies or warns when no reading comes.
func (l *Loop) checkTemperature(ctx context.Context, scanAt time.Time, d verifier.Decision) (verifier.Decision, temperature) {
	p := l.v.Policy().Temperature
	since, asked := scanAt.Add(-p.Window), l.now()
	if l.Thermo.Trigger() {
		since = asked
	}
	r, err := l.Thermo.Wait(ctx, since, p.Timeout)
	if err != nil {
		reason, state := verifier.ReasonNoTemperature, TempNone
		if _, herr := l.Thermo.Health(); herr != nil {
			reason, state = verifier.ReasonThermometerFault, TempFault
		}
		if p.OnNoReading == verifier.FallbackWarn {
			d.Warnings = append(d.Warnings, reason)
			return d, temperature{state: state}
		}
		d = denyFor(d, reason, err.Error())
		d.Attendant = p.AttendantOverride
		return d, temperature{state: state}
	}
	t := temperature{state: TempNormal}
	if p.RecordValue {
		t.celsius = r.Celsius
	}
	if r.Celsius >= p.Threshold {
		t.state = TempFever
		detail := fmt.Sprintf("reading at or above %.1f °C", p.Threshold)
		if p.RecordValue {
			detail = fmt.Sprintf("%.1f °C, threshold %.1f °C", r.Celsius, p.Threshold)
		}
		d = denyFor(d, verifier.ReasonFever, detail)
		d.Alert = true
		d.Attendant = p.AttendantOverride
	}
	return d, t
}

// denyFor turns a decision into a denial with reason r.
func denyFor(d verifier.Decision, r verifier.Reason, detail string) verifier.Decision {
	d.Allow = false
	d.Reason = r
	d.Message = r.Message()
	d.Detail = detail
	return d
}
