package verifier

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"wicket/decoder"
)

// Orders are root-signed instructions from the authority to named gates:
// a clock-floor reset (document type 4) and an emergency acknowledge
// (type 5). Each carries a serial that the gate keeps for each kind, so
// it acts on an order once and never on one older than the last it
// acted on; a target list that names the gates it is for; and an expiry.

// OrderKind is what an order tells a gate to do.
type OrderKind int

const (
	// OrderClockReset sets the gate's clock floor to Order.Floor, down
	// as well as up.
	OrderClockReset OrderKind = docClockReset
	// OrderEmergencyAck ends a latched emergency release, as the admin
	// page and wicketd ack-emergency do.
	OrderEmergencyAck OrderKind = docEmergencyAck
)

func (k OrderKind) String() string {
	switch k {
	case OrderClockReset:
		return "clock reset"
	case OrderEmergencyAck:
		return "emergency acknowledge"
	}
	return fmt.Sprintf("order(%d)", int(k))
}

// Order limits.
const (
	// MaxOrderTargets bounds one order's target list: every gate of a
	// large fleet named one by one still fits, far below MaxTrustDocLen.
	MaxOrderTargets = MaxRosterMembers
	// MaxClockResetLife bounds how long a clock reset stays valid: long
	// enough for a technician to carry it to a remote gate, short enough
	// that a lost USB stick soon holds nothing a gate acts on.
	MaxClockResetLife = 30 * 24 * time.Hour
	// MaxEmergencyAckLife bounds how long an emergency acknowledge stays
	// valid: it answers an alarm that just cleared, not one of tomorrow.
	MaxEmergencyAckLife = 24 * time.Hour
)

// Errors of orders, besides those of every trust document.
var (
	// ErrOrderElsewhere: the order names other gates.
	ErrOrderElsewhere = errors.New("order is not addressed to this gate")
	// ErrOrderExpired: the order's expiry has passed.
	ErrOrderExpired = errors.New("order expired")
)

// orderDoc is the signed payload of an order.
type orderDoc struct {
	Type     int           `cbor:"1,keyasint"`
	Serial   uint64        `cbor:"2,keyasint"`
	IssuedAt int64         `cbor:"3,keyasint"`
	Expires  int64         `cbor:"4,keyasint"`
	Targets  []orderTarget `cbor:"5,keyasint"`
	Floor    int64         `cbor:"6,keyasint,omitempty"`
}

type orderTarget struct {
	Gate    string `cbor:"1,keyasint,omitempty"`
	Venue   string `cbor:"2,keyasint,omitempty"`
	Station string `cbor:"3,keyasint,omitempty"`
}

// Target names gates: a gate matches when every field given equals its
// own (its id; its venue and station as the roster or its config says).
// {Gate: "g7"} is one gate, {Venue: "metro", Station: "central"} every
// gate of that station, {Venue: "metro"} every gate of the venue.
type Target struct {
	Gate, Venue, Station string
}

// Place is where a gate stands, as an order's targets see it.
type Place struct {
	Gate, Venue, Station string
}

// Matches reports whether the target names the gate at p.
func (t Target) Matches(p Place) bool {
	return (t.Gate == "" || t.Gate == p.Gate) &&
		(t.Venue == "" || t.Venue == p.Venue) &&
		(t.Station == "" || t.Station == p.Station)
}

func (t Target) String() string {
	var parts []string
	for _, f := range []struct{ k, v string }{{"gate", t.Gate}, {"venue", t.Venue}, {"station", t.Station}} {
		if f.v != "" {
			parts = append(parts, f.k+"="+f.v)
		}
	}
	return strings.Join(parts, ",")
}

func (t Target) check() error {
	if t == (Target{}) {
		return errors.New("empty target: name a gate, venue or station")
	}
	for _, f := range []struct{ name, v string }{{"gate", t.Gate}, {"venue", t.Venue}, {"station", t.Station}} {
		if len(f.v) > maxMemberName || strings.ContainsAny(f.v, "/+#$ \x00") {
			return fmt.Errorf("%s %q: at most %d bytes, without / + # $ or spaces", f.name, f.v, maxMemberName)
		}
	}
	return nil
}

// Order is a verified order. Floor is set for a clock reset only.
type Order struct {
	Kind     OrderKind
	Serial   uint64
	IssuedAt time.Time
	Expires  time.Time
	Targets  []Target
	Floor    time.Time
}

// Applies reports whether one of the order's targets names the gate at p.
func (o *Order) Applies(p Place) bool {
	for _, t := range o.Targets {
		if t.Matches(p) {
			return true
		}
	}
	return false
}

// Check checks an order for the gate at p at time now: addressed to it
// (ErrOrderElsewhere) and not expired (ErrOrderExpired). It does not
// check the serial: the gate's store keeps the last one.
func (o *Order) Check(p Place, now time.Time) error {
	if !o.Applies(p) {
		return fmt.Errorf("%w: %s %d names %s, this is gate %s (venue %q, station %q)",
			ErrOrderElsewhere, o.Kind, o.Serial, o.targetList(), p.Gate, p.Venue, p.Station)
	}
	if !now.Before(o.Expires) {
		return fmt.Errorf("%w: %s %d expired %s, the gate's clock reads %s",
			ErrOrderExpired, o.Kind, o.Serial, o.Expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

func (o *Order) targetList() string {
	s := make([]string, len(o.Targets))
	for i, t := range o.Targets {
		s[i] = t.String()
	}
	return strings.Join(s, " ")
}

// check checks an order's fields; errors name the field.
func (o *Order) check() error {
	life := MaxEmergencyAckLife
	if o.Kind == OrderClockReset {
		life = MaxClockResetLife
	}
	switch {
	case o.Kind != OrderClockReset && o.Kind != OrderEmergencyAck:
		return fmt.Errorf("unknown order kind %d", int(o.Kind))
	case o.Serial == 0:
		return errors.New("serial is required")
	case o.IssuedAt.Unix() <= 0:
		return errors.New("issued-at is required")
	case !o.Expires.After(o.IssuedAt):
		return errors.New("expires is not after issued-at")
	case o.Expires.Sub(o.IssuedAt) > life:
		return fmt.Errorf("valid for %v, over the %v a %s may be", o.Expires.Sub(o.IssuedAt), life, o.Kind)
	case len(o.Targets) == 0 || len(o.Targets) > MaxOrderTargets:
		return fmt.Errorf("%d targets: want 1 to %d", len(o.Targets), MaxOrderTargets)
	case o.Kind == OrderClockReset && o.Floor.Unix() <= 0:
		return errors.New("a clock reset needs its floor")
	case o.Kind == OrderClockReset && o.Floor.After(o.IssuedAt):
		return errors.New("floor is after issued-at: the authority can only vouch for a time that has passed")
	case o.Kind != OrderClockReset && !o.Floor.IsZero():
		return fmt.Errorf("a floor only goes with a clock reset, not an %s", o.Kind)
	}
	for i, t := range o.Targets {
		if err := t.check(); err != nil {
			return fmt.Errorf("target %d: %w", i, err)
		}
	}
	return nil
}

// ParseOrder verifies and parses a signed order of the kind wanted. It
// does not check the target, expiry or serial (see Order.Check).
func (roots RootKeys) ParseOrder(data []byte, kind OrderKind) (*Order, error) {
	msg, err := roots.openDoc(data)
	if err != nil {
		return nil, err
	}
	var doc orderDoc
	if err := decoder.StrictUnmarshalTrust(msg.Payload, &doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTrustFormat, err)
	}
	if doc.Type != int(kind) {
		return nil, fmt.Errorf("%w: type %d is not a %s", ErrTrustFormat, doc.Type, kind)
	}
	o := &Order{Kind: kind, Serial: doc.Serial, IssuedAt: time.Unix(doc.IssuedAt, 0), Expires: time.Unix(doc.Expires, 0),
		Targets: make([]Target, len(doc.Targets))}
	if doc.Floor != 0 {
		o.Floor = time.Unix(doc.Floor, 0)
	}
	for i, t := range doc.Targets {
		o.Targets[i] = Target(t)
	}
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTrustFormat, err)
	}
	return o, nil
}

// Sign checks and signs an order with a root signer.
func (o Order) Sign(root *decoder.Signer) ([]byte, error) {
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", o.Kind, err)
	}
	doc := orderDoc{Type: int(o.Kind), Serial: o.Serial, IssuedAt: o.IssuedAt.Unix(), Expires: o.Expires.Unix(),
		Targets: make([]orderTarget, len(o.Targets))}
	if !o.Floor.IsZero() {
		doc.Floor = o.Floor.Unix()
	}
	for i, t := range o.Targets {
		doc.Targets[i] = orderTarget(t)
	}
	payload, err := decoder.CanonicalMarshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", o.Kind, err)
	}
	return root.EncodeSign1(payload)
}

// Reset sets the floor to at, down as well as up: only for a verified
// clock reset, which names the time the authority vouches has passed.
func (t *TrustedClock) Reset(at time.Time) { t.floor.Store(at.Unix()) }

// Wall returns the wall clock without the floor: what a clock reset's
// expiry is judged by, since the floor it corrects is wrong.
func (t *TrustedClock) Wall() time.Time { return t.clock.Now() }
