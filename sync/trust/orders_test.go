package trust

import (
	"crypto/ed25519"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"wicket/sync/store"
	"wicket/sync/store/storetest"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// order signs an order of the kind for targets with the fixture's root,
// issued at Epoch and valid for an hour.
func (r *rig) order(t *testing.T, kind verifier.OrderKind, serial uint64, floor time.Time, targets ...verifier.Target) []byte {
	t.Helper()
	o := verifier.Order{Kind: kind, Serial: serial, IssuedAt: verifiertest.Epoch, Expires: verifiertest.Epoch.Add(time.Hour), Targets: targets, Floor: floor}
	raw, err := o.Sign(r.f.Root)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// floorsAre fails unless the trusted clock's floor and the store's are
// both want.
func (r *rig) floorsAre(t *testing.T, when string, want time.Time) {
	t.Helper()
	if got := r.f.TClock.Floor(); !got.Equal(want) {
		t.Errorf("%s: clock floor %v; want %v", when, got.UTC(), want.UTC())
	}
	if got := r.st.Floor(); !got.Equal(want) {
		t.Errorf("%s: stored floor %v; want %v", when, got.UTC(), want.UTC())
	}
}

// ranAhead raises the floor to a day past the wall clock, as a forward
// clock step does, so that the clock is no longer trusted.
func (r *rig) ranAhead(t *testing.T) time.Time {
	t.Helper()
	ahead := verifiertest.Epoch.Add(24 * time.Hour)
	if err := r.st.RaiseFloor(ahead); err != nil {
		t.Fatal(err)
	}
	r.f.TClock.Raise(ahead)
	if _, ok := r.f.TClock.Now(r.f.Policy.ClockSkew); ok {
		t.Fatal("clock trusted with its floor a day ahead")
	}
	return ahead
}

// TestClockReset: a root-signed reset for this gate brings a floor that
// ran ahead back, in the store and in force, once; forged, expired,
// replayed and other gates' resets change nothing.
func TestClockReset(t *testing.T) {
	r := newRig(t)
	r.a.Place = verifier.Place{Gate: "g1", Venue: "metro"}
	ahead := r.ranAhead(t)
	back := verifiertest.Epoch.Add(-time.Minute)
	g1 := verifier.Target{Gate: "g1"}

	forged, err := verifier.Order{Kind: verifier.OrderClockReset, Serial: 5, IssuedAt: verifiertest.Epoch, Expires: verifiertest.Epoch.Add(time.Hour),
		Targets: []verifier.Target{g1}, Floor: back}.Sign(r.f.Ed)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := verifier.Order{Kind: verifier.OrderClockReset, Serial: 6, IssuedAt: verifiertest.Epoch.Add(-2 * time.Hour), Expires: verifiertest.Epoch.Add(-time.Hour),
		Targets: []verifier.Target{g1}, Floor: back.Add(-2 * time.Hour)}.Sign(r.f.Root)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		raw  []byte
		res  Result
		err  error
	}{
		{"forged", forged, Refused, verifier.ErrTrustSignature},
		{"expired", expired, Refused, verifier.ErrOrderExpired},
		{"for another gate", r.order(t, verifier.OrderClockReset, 7, back, verifier.Target{Gate: "g2"}), Elsewhere, verifier.ErrOrderElsewhere},
		{"for another station", r.order(t, verifier.OrderClockReset, 8, back, verifier.Target{Venue: "metro", Station: "north"}), Elsewhere, verifier.ErrOrderElsewhere},
		{"an emergency acknowledge", r.order(t, verifier.OrderEmergencyAck, 9, time.Time{}, g1), Refused, verifier.ErrTrustFormat},
	} {
		o, res, err := r.a.ClockReset(c.raw, "test")
		if o != nil || res != c.res || !errors.Is(err, c.err) {
			t.Errorf("%s: ClockReset = %v, %v, %v; want nil, %v, %v", c.name, o, res, err, c.res, c.err)
		}
		r.floorsAre(t, c.name, ahead)
	}
	if got := r.a.Stats().Refused; got != 3 {
		t.Errorf("refusals counted: %d; want 3 (forged, expired, wrong type; other gates' orders are not refusals)", got)
	}

	good := r.order(t, verifier.OrderClockReset, 10, back, g1)
	if o, res, err := r.a.ClockReset(good, "test"); err != nil || res != Applied || o.Serial != 10 {
		t.Fatalf("ClockReset = %v, %v, %v; want serial 10 applied", o, res, err)
	}
	r.floorsAre(t, "after the reset", back)
	if now, ok := r.f.TClock.Now(r.f.Policy.ClockSkew); !ok || !now.Equal(verifiertest.Epoch) {
		t.Errorf("after the reset the clock reads %v trusted %v; want the wall clock, trusted", now, ok)
	}

	// The same order again (a retained message after a reconnect) is
	// stale; an older one, after the clock ran ahead again, is refused.
	if _, res, err := r.a.ClockReset(good, "test"); res != Stale || err != nil {
		t.Errorf("the same reset again = %v, %v; want stale", res, err)
	}
	r.f.Clock.Set(verifiertest.Epoch.Add(2 * time.Hour))
	if _, res, err := r.a.ClockReset(good, "test"); res != Stale || err != nil {
		t.Errorf("the same reset again after it expired = %v, %v; want stale, not a refusal", res, err)
	}
	r.f.Clock.Set(verifiertest.Epoch)
	ahead = r.ranAhead(t)
	older := r.order(t, verifier.OrderClockReset, 9, back.Add(-time.Second), g1)
	if _, res, err := r.a.ClockReset(older, "test"); res != Refused || !errors.Is(err, ErrReplayed) {
		t.Errorf("an older reset = %v, %v; want refused, ErrReplayed", res, err)
	}
	if _, res, err := r.a.ClockReset(good, "test"); res != Stale || err != nil {
		t.Errorf("the applied reset replayed after the clock ran ahead again = %v, %v; want stale, nothing changed", res, err)
	}
	r.floorsAre(t, "after replays", ahead)
	if !strings.Contains(r.a.Stats().LastRefusal, "serial 9") {
		t.Errorf("last refusal %q does not name the replayed serial", r.a.Stats().LastRefusal)
	}

	// A station-wide reset reaches the gate the roster places there, and
	// never lowers the floor below the installed batch's issue time.
	roster, err := verifier.RosterSpec{Version: 1, IssuedAt: verifiertest.Epoch, Members: []verifier.Member{
		{ID: "g1", Venue: "metro", Station: "central", Role: verifier.RoleGate, Key: verifiertest.EdKey(9).Public().(ed25519.PublicKey)},
	}}.Sign(r.f.Root)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.st.PutTrustDoc(store.TrustRoster, 1, roster); err != nil {
		t.Fatal(err)
	}
	if res, err := r.a.Batch(r.batch(t, 1, 0), "test"); res != Applied {
		t.Fatalf("batch: %v %v", res, err)
	}
	issued := verifiertest.Epoch.Add(-time.Hour)
	station := r.order(t, verifier.OrderClockReset, 11, issued.Add(-time.Hour), verifier.Target{Venue: "metro", Station: "central"})
	if _, res, err := r.a.ClockReset(station, "test"); res != Applied {
		t.Fatalf("station reset = %v, %v; want applied", res, err)
	}
	r.floorsAre(t, "after a reset below the batch's issue time", issued)

	// The floor and the serial survive a restart.
	path := r.st.Path()
	r.st.Close()
	st := storetest.Open(t, store.Options{Path: path, Logger: slog.New(slog.DiscardHandler)})
	if !st.Floor().Equal(issued) {
		t.Errorf("floor after reopening %v; want %v", st.Floor().UTC(), issued.UTC())
	}
	if _, serial, err := st.TrustDoc(store.TrustClockReset); err != nil || serial != 11 {
		t.Errorf("stored reset serial %d, %v; want 11", serial, err)
	}
}

// TestEmergencyAckOrder: a root-signed acknowledge for this gate calls
// the acknowledge path once, saying which order; replayed, forged,
// expired and other gates' acknowledges never call it.
func TestEmergencyAckOrder(t *testing.T) {
	r := newRig(t)
	r.a.Place = verifier.Place{Gate: "g1", Venue: "metro"}
	var calls []string
	active := true
	r.a.OnEmergencyAck = func(by string) (bool, error) {
		calls = append(calls, by)
		if active {
			return false, errActive
		}
		return true, nil
	}
	g1 := verifier.Target{Gate: "g1"}
	forged, err := verifier.Order{Kind: verifier.OrderEmergencyAck, Serial: 3, IssuedAt: verifiertest.Epoch, Expires: verifiertest.Epoch.Add(time.Hour),
		Targets: []verifier.Target{g1}}.Sign(r.f.ES)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := verifier.Order{Kind: verifier.OrderEmergencyAck, Serial: 4, IssuedAt: verifiertest.Epoch.Add(-time.Hour), Expires: verifiertest.Epoch.Add(-time.Minute),
		Targets: []verifier.Target{g1}}.Sign(r.f.Root)
	if err != nil {
		t.Fatal(err)
	}
	first := r.order(t, verifier.OrderEmergencyAck, 10, time.Time{}, g1)
	for _, c := range []struct {
		name  string
		raw   []byte
		res   Result
		err   error
		calls int
	}{
		{"forged", forged, Refused, verifier.ErrTrustSignature, 0},
		{"expired", expired, Refused, verifier.ErrOrderExpired, 0},
		{"a clock reset", r.order(t, verifier.OrderClockReset, 5, verifiertest.Epoch, g1), Refused, verifier.ErrTrustFormat, 0},
		{"for another gate", r.order(t, verifier.OrderEmergencyAck, 6, time.Time{}, verifier.Target{Gate: "g2"}), Elsewhere, verifier.ErrOrderElsewhere, 0},
		{"while the alarm is on", first, Applied, errActive, 1},
		{"the same again", first, Stale, nil, 1},
		{"an older one", r.order(t, verifier.OrderEmergencyAck, 9, time.Time{}, g1), Refused, ErrReplayed, 1},
		{"an older one for another gate", r.order(t, verifier.OrderEmergencyAck, 2, time.Time{}, verifier.Target{Gate: "g2"}), Elsewhere, verifier.ErrOrderElsewhere, 1},
	} {
		res, err := r.a.EmergencyAck(c.raw, "test")
		if res != c.res || !errors.Is(err, c.err) || (c.err == nil && err != nil) || len(calls) != c.calls {
			t.Errorf("%s: EmergencyAck = %v, %v with %d calls; want %v, %v with %d", c.name, res, err, len(calls), c.res, c.err, c.calls)
		}
	}
	active = false
	if res, err := r.a.EmergencyAck(r.order(t, verifier.OrderEmergencyAck, 11, time.Time{}, verifier.Target{Venue: "metro"}), "broker"); res != Applied || err != nil {
		t.Errorf("a venue-wide acknowledge after the alarm cleared = %v, %v; want applied", res, err)
	}
	if len(calls) != 2 || calls[1] != "signed order 11 from broker" {
		t.Errorf("acknowledge calls %q; want two, the last saying signed order 11 from broker", calls)
	}
}

var errActive = errors.New("emergency input still active")
