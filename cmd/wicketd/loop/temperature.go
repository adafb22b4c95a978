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

// checkTemperature applies policy.temperature p to a decision that would
// let the holder through (or call an attendant): it waits for a reading
// taken within the window of the scan, denies a fever with an alert, and
// denies or warns when no reading comes.
func (ru rules) checkTemperature(ctx context.Context, p verifier.TemperaturePolicy, scanAt time.Time, d verifier.Decision) (verifier.Decision, temperature) {
	since, asked := scanAt.Add(-p.Window), ru.now()
	if ru.thermo.Trigger() {
		since = asked
	}
	r, err := ru.thermo.Wait(ctx, since, p.Timeout)
	if err != nil {
		reason, state := verifier.ReasonNoTemperature, TempNone
		if _, herr := ru.thermo.Health(); herr != nil {
			reason, state = verifier.ReasonThermometerFault, TempFault
		}
		if p.OnNoReading == verifier.FallbackWarn {
			d.Warnings = append(d.Warnings, reason)
			return d, temperature{state: state}
		}
		d = d.Deny(reason, err.Error())
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
		d = d.Deny(verifier.ReasonFever, detail)
		d.Alert = true
		d.Attendant = p.AttendantOverride
	}
	return d, t
}
