package loop

import (
	"context"
	"time"

	"wicket/decoder"
	"wicket/sync/store"
	"wicket/verifier"
)

// rules are the gate's own rules, applied after the verifier's and in one
// place: temperature screening (policy.temperature), anti-passback
// (policy.anti_passback, per kind policy.kinds.<kind>.anti_passback, on
// the store's memory and the station's) and which decisions wait for an
// attendant. Each denies with the verifier's Decision.Deny, as the
// verifier itself does. The store only records what they decide.
type rules struct {
	v       *verifier.Verifier
	st      *store.Store
	thermo  Thermometer // nil: no thermometer
	station Station     // nil: anti-passback on this gate's memory only
	now     func() time.Time
}

// Details of anti-passback denials: passed here, or at another gate of
// the station (its grant came over the broker).
const (
	passbackDetail        = "voucher passed at this venue within the anti-passback window"
	stationPassbackDetail = "voucher passed at another gate of this station within the anti-passback window"
)

// apply turns the verifier's decision d on a scan completed at scanAt into
// the gate's final decision under the policy pol, with the temperature
// taken. The error is the store's, when the anti-passback memory could
// not be read: the caller must deny for a gate fault.
func (ru rules) apply(ctx context.Context, pol verifier.Policy, scanAt time.Time, venue string, d verifier.Decision) (verifier.Decision, temperature, error) {
	var temp temperature
	if ru.thermo != nil && pol.Temperature.Required && (d.Allow || d.Attendant) {
		d, temp = ru.checkTemperature(ctx, pol.Temperature, scanAt, d)
	}
	window := PassbackWindow(pol, d)
	if !d.Allow || window <= 0 {
		return d, temp, nil
	}
	voucher := ru.st.HashID(d.Voucher.ID)
	last, ok, err := ru.st.LastAllowed(venue, voucher)
	if err != nil {
		return d, temp, err
	}
	if ok && passedWithin(last, d.At, window) {
		return d.Deny(verifier.ReasonAntiPassback, passbackDetail), temp, nil
	}
	if ru.station != nil {
		if last, ok := ru.station.LastAllowed(voucher); ok && passedWithin(last, d.At, window) {
			d = d.Deny(verifier.ReasonAntiPassback, stationPassbackDetail)
		}
	}
	return d, temp, nil
}

// PassbackWindow is the anti-passback window for the voucher of d under
// pol: policy.kinds.<kind>.anti_passback when set, else
// policy.anti_passback; 0 (no rule) for a decision without a voucher.
func PassbackWindow(pol verifier.Policy, d verifier.Decision) time.Duration {
	if d.Voucher == nil {
		return 0
	}
	var k verifier.KindPolicy
	switch d.Voucher.Kind {
	case decoder.KindDynamic:
		k = pol.Kinds.Dynamic
	case decoder.KindPrinted:
		k = pol.Kinds.Printed
	case decoder.KindWatch:
		k = pol.Kinds.Watch
	}
	if k.AntiPassback > 0 {
		return k.AntiPassback
	}
	return pol.AntiPassback
}

// LongestPassback is the longest anti-passback window of pol, over every
// kind: what the store's and the station's memories must keep.
func LongestPassback(pol verifier.Policy) time.Duration {
	return max(pol.AntiPassback, pol.Kinds.Dynamic.AntiPassback, pol.Kinds.Printed.AntiPassback, pol.Kinds.Watch.AntiPassback)
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
