package station

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"wicket/sync/wire"
	"wicket/verifier"
)

// Kind is the signed-message kind of a grant (wire.Sign): a signature
// over a grant never verifies as a records batch, ack or status.
const Kind = "passback"

// Topic is where the gates of a station announce their grants (QoS 1, not
// retained): wicket/<fleet>/station/<station>/passback.
func Topic(fleet, station string) string {
	return wire.Root + "/" + fleet + "/station/" + station + "/passback"
}

// Grant is the body of a grant message: a voucher was admitted at a gate
// of a station. It carries the voucher's keyed record hash only.
type Grant struct {
	Station string `json:"station"`
	Gate    string `json:"gate"`
	// Voucher is the record hash of the voucher (store.HashID: the first
	// 16 bytes of HMAC-SHA-256 with the fleet's record key, in hex).
	Voucher string `json:"voucher"`
	// At is when the gate decided, in Unix nanoseconds.
	At int64 `json:"at"`
	// Seq is the sender's record sequence number of the decision: it
	// never repeats on a gate, across restarts, so a receiver refuses any
	// seq not above the last it accepted from that gate (a replay).
	Seq uint64 `json:"seq"`
}

// Sign returns g as a message signed by its gate with key.
func (g Grant) Sign(fleet string, key ed25519.PrivateKey) ([]byte, error) {
	return wire.Sign(Kind, fleet, g.Gate, key, g)
}

// Reasons a grant message is refused, as counted in State.Refused.
const (
	RefusedMalformed    = "malformed"     // not a signed grant, or fields out of shape
	RefusedUnknownGate  = "unknown_gate"  // signer not a gate of the roster (or no roster yet)
	RefusedForged       = "forged"        // signature does not verify with the signer's key
	RefusedOtherStation = "other_station" // signer or grant of another station
	RefusedReplayed     = "replayed"      // seq not above the last accepted from that gate
	RefusedTooOld       = "too_old"       // dated before the window
	RefusedFuture       = "future"        // dated beyond the allowed skew ahead
)

// errRefused carries a refusal reason.
type errRefused struct {
	reason string
	err    error
}

func (e *errRefused) Error() string { return e.reason + ": " + e.err.Error() }
func (e *errRefused) Unwrap() error { return e.err }

func refuse(reason string, format string, a ...any) error {
	return &errRefused{reason: reason, err: fmt.Errorf(format, a...)}
}

// ReasonOf returns the refusal reason of an error from check, or "".
func ReasonOf(err error) string {
	var r *errRefused
	if errors.As(err, &r) {
		return r.reason
	}
	return ""
}

// checker holds what a receiver checks a grant against.
type checker struct {
	fleet, station string
	roster         *verifier.Roster
	now            time.Time
	window, skew   time.Duration
	lastSeq        func(gate string) uint64
}

// check verifies a grant message and returns the grant it carries, or an
// error with a refusal reason (ReasonOf). It is pure: no state changes.
func (c checker) check(payload []byte) (Grant, error) {
	var g Grant
	if len(payload) > MaxMessage {
		return g, refuse(RefusedMalformed, "%d bytes, over %d", len(payload), MaxMessage)
	}
	sm, err := wire.Open(payload)
	if err != nil {
		return g, refuse(RefusedMalformed, "%v", err)
	}
	m := c.roster.Member(sm.Signer)
	if m == nil || m.Role != verifier.RoleGate {
		return g, refuse(RefusedUnknownGate, "signer %q is not a gate of the roster", sm.Signer)
	}
	if err := sm.Verify(Kind, c.fleet, m.Key); err != nil {
		return g, refuse(RefusedForged, "%v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(sm.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return g, refuse(RefusedMalformed, "body: %v", err)
	}
	if _, ok := parseKey(g.Voucher); !ok || g.Gate != sm.Signer || g.Seq == 0 || g.At <= 0 {
		return g, refuse(RefusedMalformed, "want the signer's gate id, a 32-hex voucher hash, a time and a seq")
	}
	if m.Station == "" || m.Station != c.station || g.Station != c.station {
		return g, refuse(RefusedOtherStation, "gate %s of station %q, grant for %q; this is %q", g.Gate, m.Station, g.Station, c.station)
	}
	at := time.Unix(0, g.At)
	if at.After(c.now.Add(c.skew)) {
		return g, refuse(RefusedFuture, "dated %v ahead", at.Sub(c.now))
	}
	if at.Before(c.now.Add(-c.window)) {
		return g, refuse(RefusedTooOld, "dated %v ago, over the %v window", c.now.Sub(at), c.window)
	}
	if g.Seq <= c.lastSeq(g.Gate) {
		return g, refuse(RefusedReplayed, "seq %d of gate %s, last accepted %d", g.Seq, g.Gate, c.lastSeq(g.Gate))
	}
	return g, nil
}
