package loop

import (
	"context"
	"time"

	"wicket/sync/store"
	"wicket/verifier"
)

// rules are the gate's own rules, applied after the verifier's and in one
// place: temperature screening (policy.temperature), anti-passback
// (policy.anti_passback) and which decisions wait for an attendant. Each
// denies with the verifier's Decision.Deny, as the verifier itself does.
// The store only records what they decide.
type rules struct {
	v      *verifier.Verifier
	st     *store.Store
	thermo Thermometer // nil: no thermometer
	now    func() time.Time
}

// passbackDetail is the detail of an anti-passback denial.
const passbackDetail = "voucher passed at this venue within the anti-passback window"

// apply turns the verifier's decision d on a scan completed at scanAt into
// the gate's final decision under the policy pol, with the temperature
// taken. The error is the store's, when the anti-passback memory could
// not be read: the caller must deny for a gate fault.
func (ru rules) apply(ctx context.Context, pol verifier.Policy, scanAt time.Time, venue string, d verifier.Decision) (verifier.Decision, temperature, error) {
	var temp temperature
	if ru.thermo != nil && pol.Temperature.Required && (d.Allow || d.Attendant) {
		d, temp = ru.checkTemperature(ctx, pol.Temperature, scanAt, d)
	}
	if !d.Allow || pol.AntiPassback <= 0 || d.Voucher == nil {
		return d, temp, nil
	}
	last, ok, err := ru.st.LastAllowed(venue, ru.st.HashID(d.Voucher.ID))
	if err != nil {
		return d, temp, err
	}
	if ok && passedWithin(last, d.At, pol.AntiPassback) {
		d = d.Deny(verifier.ReasonAntiPassback, passbackDetail)
	}
	return d, temp, nil
}

// passedWithin is the anti-passback rule: a voucher last allowed at last
// may not pass again at at while at is within window of it, the edge
// included. A clock that stepped back (at before last) still denies.
func passedWithin(last, at time.Time, window time.Duration) bool {
	return !last.Before(at.Add(-window))
}

// awaitsAttendant reports whether a result waits for an attendant's
// answer: a recorded decision that asks for one (a photo check, or a
// temperature taken by hand).
func awaitsAttendant(r Result) bool {
	return !r.Skipped && r.Seq != 0 && r.Decision.Attendant
}

// failSecure turns any decision into a denial for a gate fault.
func failSecure(d verifier.Decision, detail string) verifier.Decision {
	return d.Deny(verifier.ReasonInternal, detail)
}
