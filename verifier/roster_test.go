package verifier_test

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"wicket/decoder"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

func TestRosterRoundTrip(t *testing.T) {
	f := verifiertest.New(t)
	gate := verifiertest.EdKey(20).Public().(ed25519.PublicKey)
	coll := verifiertest.EdKey(21).Public().(ed25519.PublicKey)
	spec := verifier.RosterSpec{Version: 3, IssuedAt: verifiertest.Epoch, Members: []verifier.Member{
		{ID: "L2-S14-G03", Venue: "V-1", Station: "S14", Role: verifier.RoleGate, Key: gate},
		{ID: "collector-a", Role: verifier.RoleCollector, Key: coll},
	}}
	doc, err := spec.Sign(f.Root)
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.Roots().ParseRoster(doc)
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != 3 || !r.IssuedAt.Equal(verifiertest.Epoch) {
		t.Errorf("version %d issued %v", r.Version, r.IssuedAt)
	}
	if !gate.Equal(r.Key("L2-S14-G03", verifier.RoleGate)) || !coll.Equal(r.Key("collector-a", verifier.RoleCollector)) {
		t.Error("keys not found by id and role")
	}
	if r.Key("L2-S14-G03", verifier.RoleCollector) != nil || r.Key("collector-a", verifier.RoleGate) != nil || r.Key("nobody", verifier.RoleGate) != nil {
		t.Error("a key found under the wrong role or id")
	}
	if m := r.Member("L2-S14-G03"); m == nil || m.Venue != "V-1" || m.Station != "S14" {
		t.Errorf("Member = %+v", m)
	}
	// A roster is no key set or batch, and neither is one a roster.
	if _, err := f.Roots().ParseKeySet(doc); !errors.Is(err, verifier.ErrTrustFormat) {
		t.Errorf("roster parsed as key set: %v", err)
	}
	if _, err := f.Roots().ParseRoster(f.KeySetDoc); !errors.Is(err, verifier.ErrTrustFormat) {
		t.Errorf("key set parsed as roster: %v", err)
	}
	stranger, _ := decoder.NewSigner(verifiertest.EdKey(9), nil)
	forged, _ := spec.Sign(stranger)
	if _, err := f.Roots().ParseRoster(forged); !errors.Is(err, verifier.ErrTrustSignature) {
		t.Errorf("roster signed by a stranger: %v", err)
	}
}

func TestRosterRefusesBadMembers(t *testing.T) {
	f := verifiertest.New(t)
	key := verifiertest.EdKey(20).Public().(ed25519.PublicKey)
	for _, tc := range []struct {
		name string
		m    []verifier.Member
		want string
	}{
		{"twice", []verifier.Member{{ID: "G1", Role: verifier.RoleGate, Key: key}, {ID: "G1", Role: verifier.RoleCollector, Key: key}}, "twice"},
		{"short key", []verifier.Member{{ID: "G1", Role: verifier.RoleGate, Key: key[:16]}}, "key of 16 bytes"},
		{"no role", []verifier.Member{{ID: "G1", Key: key}}, "not gate or collector"},
		{"wildcard", []verifier.Member{{ID: "G+", Role: verifier.RoleGate, Key: key}}, "without"},
		{"empty id", []verifier.Member{{Role: verifier.RoleGate, Key: key}}, "empty id"},
	} {
		_, err := verifier.RosterSpec{Version: 1, IssuedAt: verifiertest.Epoch, Members: tc.m}.Sign(f.Root)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Sign = %v; want an error with %q", tc.name, err, tc.want)
		}
	}
}

func TestMemberKeyText(t *testing.T) {
	key := verifiertest.EdKey(20).Public().(ed25519.PublicKey)
	s := verifier.FormatMemberKey(key)
	got, err := verifier.ParseMemberKey(s)
	if err != nil || !key.Equal(got) {
		t.Fatalf("ParseMemberKey(%q) = %x, %v", s, got, err)
	}
	for _, bad := range []string{"", "ed25519:", "ed25519:AAAA", strings.TrimPrefix(s, "ed25519:"), s + "AA"} {
		if _, err := verifier.ParseMemberKey(bad); err == nil {
			t.Errorf("ParseMemberKey(%q) accepted", bad)
		}
	}
}

// FuzzRoster feeds bytes to the roster parser: no panic, and what parses
// has a version and only well-formed members.
func FuzzRoster(f *testing.F) {
	fx := verifiertest.New(f)
	doc, _ := verifier.RosterSpec{Version: 1, IssuedAt: verifiertest.Epoch, Members: []verifier.Member{
		{ID: "G1", Role: verifier.RoleGate, Key: verifiertest.EdKey(20).Public().(ed25519.PublicKey)}}}.Sign(fx.Root)
	f.Add(doc)
	f.Add(fx.KeySetDoc)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := fx.Roots().ParseRoster(b)
		if err != nil {
			return
		}
		if r.Version == 0 {
			t.Fatal("accepted a roster without a version")
		}
		for _, m := range r.Members {
			if len(m.Key) != ed25519.PublicKeySize || m.ID == "" {
				t.Fatalf("accepted member %+v", m)
			}
		}
	})
}
