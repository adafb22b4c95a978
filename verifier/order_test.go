package verifier_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

func testOrder(kind verifier.OrderKind, targets ...verifier.Target) verifier.Order {
	o := verifier.Order{Kind: kind, Serial: 42, IssuedAt: verifiertest.Epoch, Expires: verifiertest.Epoch.Add(time.Hour), Targets: targets}
	if kind == verifier.OrderClockReset {
		o.Floor = verifiertest.Epoch.Add(-time.Minute)
	}
	return o
}

// TestOrderRoundTrip: an order signed by the root parses back the same,
// as its own kind only.
func TestOrderRoundTrip(t *testing.T) {
	f := verifiertest.New(t)
	for _, kind := range []verifier.OrderKind{verifier.OrderClockReset, verifier.OrderEmergencyAck} {
		want := testOrder(kind, verifier.Target{Gate: "g1"}, verifier.Target{Venue: "metro", Station: "central"})
		raw, err := want.Sign(f.Root)
		if err != nil {
			t.Fatalf("sign %v: %v", kind, err)
		}
		got, err := f.Roots().ParseOrder(raw, kind)
		if err != nil {
			t.Fatalf("parse %v: %v", kind, err)
		}
		if got.Serial != want.Serial || !got.IssuedAt.Equal(want.IssuedAt) || !got.Expires.Equal(want.Expires) ||
			!got.Floor.Equal(want.Floor) || len(got.Targets) != 2 || got.Targets[1] != want.Targets[1] {
			t.Errorf("%v parsed back as %+v; want %+v", kind, got, want)
		}
		other := verifier.OrderEmergencyAck
		if kind == other {
			other = verifier.OrderClockReset
		}
		if _, err := f.Roots().ParseOrder(raw, other); !errors.Is(err, verifier.ErrTrustFormat) {
			t.Errorf("a %v parsed as a %v: err %v; want ErrTrustFormat", kind, other, err)
		}
	}
	if _, err := f.Roots().ParseOrder(f.KeySetDoc, verifier.OrderClockReset); !errors.Is(err, verifier.ErrTrustFormat) {
		t.Errorf("a key set parsed as a clock reset: err %v; want ErrTrustFormat", err)
	}
}

// TestOrderForged: an order signed by any key but a pinned root is
// refused.
func TestOrderForged(t *testing.T) {
	f := verifiertest.New(t)
	raw, err := testOrder(verifier.OrderClockReset, verifier.Target{Gate: "g1"}).Sign(f.Ed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Roots().ParseOrder(raw, verifier.OrderClockReset); !errors.Is(err, verifier.ErrTrustSignature) {
		t.Errorf("order signed by an issuer key: err %v; want ErrTrustSignature", err)
	}
	good, _ := testOrder(verifier.OrderClockReset, verifier.Target{Gate: "g1"}).Sign(f.Root)
	tampered := []byte(strings.Replace(string(good), "g1", "g2", 1))
	if _, err := f.Roots().ParseOrder(tampered, verifier.OrderClockReset); !errors.Is(err, verifier.ErrTrustSignature) {
		t.Errorf("order with its target changed after signing: err %v; want ErrTrustSignature", err)
	}
}

// TestOrderFields: orders the authority must not sign are refused at
// signing, with the field named.
func TestOrderFields(t *testing.T) {
	f := verifiertest.New(t)
	for _, c := range []struct {
		name string
		edit func(*verifier.Order)
		want string
	}{
		{"no serial", func(o *verifier.Order) { o.Serial = 0 }, "serial"},
		{"no targets", func(o *verifier.Order) { o.Targets = nil }, "targets"},
		{"empty target", func(o *verifier.Order) { o.Targets = []verifier.Target{{}} }, "empty target"},
		{"target with a slash", func(o *verifier.Order) { o.Targets = []verifier.Target{{Gate: "a/b"}} }, "gate"},
		{"expires before issued", func(o *verifier.Order) { o.Expires = o.IssuedAt.Add(-time.Second) }, "expires"},
		{"valid too long", func(o *verifier.Order) { o.Expires = o.IssuedAt.Add(verifier.MaxClockResetLife + time.Hour) }, "valid for"},
		{"floor in the future", func(o *verifier.Order) { o.Floor = o.IssuedAt.Add(time.Minute) }, "floor is after"},
		{"no floor", func(o *verifier.Order) { o.Floor = time.Time{} }, "floor"},
	} {
		o := testOrder(verifier.OrderClockReset, verifier.Target{Gate: "g1"})
		c.edit(&o)
		if _, err := o.Sign(f.Root); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Sign err %v; want one naming %q", c.name, err, c.want)
		}
	}
	ack := testOrder(verifier.OrderEmergencyAck, verifier.Target{Gate: "g1"})
	ack.Floor = verifiertest.Epoch
	if _, err := ack.Sign(f.Root); err == nil {
		t.Error("an emergency acknowledge with a floor was signed")
	}
	ack.Floor, ack.Expires = time.Time{}, ack.IssuedAt.Add(verifier.MaxEmergencyAckLife+time.Second)
	if _, err := ack.Sign(f.Root); err == nil {
		t.Error("an emergency acknowledge valid for over a day was signed")
	}
}

// TestOrderCheck: the target and expiry checks, as a gate applies them.
func TestOrderCheck(t *testing.T) {
	o := testOrder(verifier.OrderEmergencyAck, verifier.Target{Gate: "g1"}, verifier.Target{Venue: "metro", Station: "central"})
	now := verifiertest.Epoch.Add(time.Minute)
	for _, c := range []struct {
		p    verifier.Place
		at   time.Time
		want error
	}{
		{verifier.Place{Gate: "g1"}, now, nil},
		{verifier.Place{Gate: "g9", Venue: "metro", Station: "central"}, now, nil},
		{verifier.Place{Gate: "g9", Venue: "metro", Station: "north"}, now, verifier.ErrOrderElsewhere},
		{verifier.Place{Gate: "g9", Venue: "tram", Station: "central"}, now, verifier.ErrOrderElsewhere},
		{verifier.Place{Gate: "g1"}, o.Expires, verifier.ErrOrderExpired},
	} {
		if err := o.Check(c.p, c.at); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("Check(%+v, %v) = %v; want %v", c.p, c.at, err, c.want)
		}
	}
}

// TestTrustedClockReset: Reset moves the floor down as well as up, and
// the clock is trusted again once the wall clock is at the new floor.
func TestTrustedClockReset(t *testing.T) {
	c := &verifiertest.Clock{}
	c.Set(verifiertest.Epoch)
	tc := verifier.NewTrustedClock(c, verifiertest.Epoch.Add(24*time.Hour))
	if _, ok := tc.Now(time.Minute); ok {
		t.Fatal("clock trusted below its floor")
	}
	tc.Reset(verifiertest.Epoch.Add(-time.Hour))
	if got := tc.Floor(); !got.Equal(verifiertest.Epoch.Add(-time.Hour)) {
		t.Errorf("floor after Reset = %v; want %v", got, verifiertest.Epoch.Add(-time.Hour))
	}
	if now, ok := tc.Now(time.Minute); !ok || !now.Equal(verifiertest.Epoch) {
		t.Errorf("Now after Reset = %v, %v; want the wall clock, trusted", now, ok)
	}
	if !tc.Wall().Equal(verifiertest.Epoch) {
		t.Errorf("Wall = %v; want %v", tc.Wall(), verifiertest.Epoch)
	}
}

// FuzzOrder feeds bytes to the order parser: no input may panic, and what
// parses is a complete order.
func FuzzOrder(f *testing.F) {
	fx := verifiertest.New(f)
	for _, kind := range []verifier.OrderKind{verifier.OrderClockReset, verifier.OrderEmergencyAck} {
		raw, err := testOrder(kind, verifier.Target{Gate: "g1"}, verifier.Target{Venue: "v", Station: "s"}).Sign(fx.Root)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, int(kind))
	}
	f.Add(fx.KeySetDoc, int(verifier.OrderClockReset))
	f.Fuzz(func(t *testing.T, b []byte, kind int) {
		o, err := fx.Roots().ParseOrder(b, verifier.OrderKind(kind))
		if err != nil {
			return
		}
		if o.Serial == 0 || len(o.Targets) == 0 || !o.Expires.After(o.IssuedAt) || (o.Kind == verifier.OrderClockReset) == o.Floor.IsZero() {
			t.Fatalf("accepted an incomplete order %+v", o)
		}
	})
}
