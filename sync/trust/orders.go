package trust

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"wicket/sync/store"
	"wicket/verifier"
)

// ErrReplayed: an order whose serial is not above the last one of its
// kind the gate acted on: a replay, or an older order overtaken by a
// newer one. It changes nothing.
var ErrReplayed = errors.New("order already acted on or older than the last one (replayed?)")

// orderDoc is the store's name of the last order of a kind acted on.
func orderDoc(kind verifier.OrderKind) string {
	if kind == verifier.OrderClockReset {
		return store.TrustClockReset
	}
	return store.TrustEmergencyAck
}

// place is where this gate stands for an order's targets: its id and
// venue from Place, the venue and station from the installed roster where
// it enrols this gate (the authority's word wins over the config).
func (a *Applier) place() verifier.Place {
	p := a.Place
	raw, _, err := a.st.TrustDoc(store.TrustRoster)
	if err != nil || raw == nil {
		return p
	}
	r, err := a.roots.ParseRoster(raw)
	if err != nil {
		return p
	}
	if m := r.Member(p.Gate); m != nil && m.Role == verifier.RoleGate {
		if m.Venue != "" {
			p.Venue = m.Venue
		}
		p.Station = m.Station
	}
	return p
}

// order verifies a signed order of the kind and checks it for this gate,
// in this order: root signature and type; addressed to it (one for other
// gates, and every gate of the fleet sees every order, is Elsewhere with
// an error wrapping ErrOrderElsewhere, not counted); the very order acted
// on last, delivered again (a retained message after a reconnect, expired
// or not), is Stale; an older serial is refused as replayed; then the
// expiry at now. Anything refused is counted and logged, and nothing
// changes.
func (a *Applier) order(raw []byte, kind verifier.OrderKind, now time.Time, source string) (*verifier.Order, Result, error) {
	o, err := a.roots.ParseOrder(raw, kind)
	if err != nil {
		res, err := a.refuseOrder(kind, source, err)
		return nil, res, err
	}
	p := a.place()
	if !o.Applies(p) {
		a.log.Debug("order for other gates", "what", kind.String(), "serial", o.Serial, "source", source)
		return nil, Elsewhere, o.Check(p, now)
	}
	last, serial, err := a.st.TrustDoc(orderDoc(kind))
	switch {
	case err != nil:
		return nil, Refused, err
	case o.Serial == serial && bytes.Equal(last, raw):
		res, _ := a.stale(kind.String(), source, o.Serial, serial)
		return nil, res, nil
	case o.Serial <= serial:
		err = fmt.Errorf("%w: serial %d, the last acted on is %d", ErrReplayed, o.Serial, serial)
	default:
		err = o.Check(p, now)
	}
	if err != nil {
		res, err := a.refuseOrder(kind, source, err)
		return nil, res, err
	}
	return o, Applied, nil
}

// refuseOrder is refuse for an order: a replay caught by the store's own
// check (two deliveries at once) reads as one.
func (a *Applier) refuseOrder(kind verifier.OrderKind, source string, err error) (Result, error) {
	if errors.Is(err, store.ErrStaleVersion) {
		err = fmt.Errorf("%w: %w", ErrReplayed, err)
	}
	return a.refuse(kind.String(), source, err)
}

// ClockReset verifies a signed clock-floor reset and, if it is addressed
// to this gate, not expired by the wall clock (the floor it corrects is
// wrong, so it cannot judge) and newer than the last one acted on, sets
// the clock floor to the reset's floor, down as well as up: in the store
// (with the reset's serial, in one transaction) and in force. The floor
// never goes below the issue time of the installed key set or
// revocation/override batch: those are signed times that have passed.
// From then on the gate decides again once its wall clock reads at or
// above the floor.
//
// It returns the order when Applied. The reset acted on last, given
// again, is Stale; one for other gates is Elsewhere
// (ErrOrderElsewhere). Any refusal (ErrTrustSignature, ErrTrustFormat,
// ErrOrderExpired, ErrReplayed) is Refused with the error. None of these
// changes anything.
func (a *Applier) ClockReset(raw []byte, source string) (*verifier.Order, Result, error) {
	clock := a.v.Clock()
	o, res, err := a.order(raw, verifier.OrderClockReset, clock.Wall(), source)
	if o == nil {
		return nil, res, err
	}
	floor := o.Floor
	if info := a.st.Info(); info.IssuedAt.After(floor) {
		floor = info.IssuedAt
	}
	if ks := a.v.KeySet(); ks != nil && ks.IssuedAt.After(floor) {
		floor = ks.IssuedAt
	}
	old := clock.Floor()
	if err := a.st.ResetFloor(floor, store.TrustClockReset, o.Serial, raw); err != nil {
		res, err := a.refuseOrder(o.Kind, source, err)
		return nil, res, err
	}
	clock.Reset(floor)
	a.log.Warn("clock floor reset by a signed order", "serial", o.Serial, "from", old.UTC(), "to", floor.UTC(), "source", source)
	a.count(Applied)
	if a.OnClockReset != nil {
		a.OnClockReset(o, old, floor)
	}
	a.changed()
	return o, Applied, nil
}

// EmergencyAck verifies a signed emergency acknowledge and, if it is
// addressed to this gate, not expired by the trusted clock and newer than
// the last one acted on, uses it up (its serial is stored first, so a
// replay does nothing) and calls OnEmergencyAck with who sent it; its
// error is returned with Applied. While the emergency input is still
// active the acknowledge path refuses (gate.ErrEmergencyActive) and the
// order is used up all the same: the authority sends a new one once the
// alarm has cleared, as a technician acknowledges again. Stale, Elsewhere
// and Refused are as for ClockReset; OnEmergencyAck is not called.
func (a *Applier) EmergencyAck(raw []byte, source string) (Result, error) {
	now, _ := a.v.Clock().Now(a.v.Policy().ClockSkew)
	o, res, err := a.order(raw, verifier.OrderEmergencyAck, now, source)
	if o == nil {
		return res, err
	}
	if err := a.st.PutTrustDoc(store.TrustEmergencyAck, o.Serial, raw); err != nil {
		return a.refuseOrder(o.Kind, source, err)
	}
	a.count(Applied)
	by := fmt.Sprintf("signed order %d from %s", o.Serial, source)
	if a.OnEmergencyAck == nil {
		a.log.Warn("emergency acknowledge for a gate without a turnstile: nothing to end", "by", by)
		return Applied, nil
	}
	_, err = a.OnEmergencyAck(by)
	return Applied, err
}
