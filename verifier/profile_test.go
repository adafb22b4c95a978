package verifier_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// namedProfile is a profile with only a name and a prefix, for the
// checks of NewProfileSet; it reads no code.
type namedProfile struct{ name, prefix string }

func (p namedProfile) Name() string   { return p.name }
func (p namedProfile) Prefix() string { return p.prefix }
func (namedProfile) Envelope([]byte) (*decoder.Sign1, error) {
	return nil, decoder.ErrPrefix
}
func (namedProfile) Claims([]byte) (*verifier.Input, error) { return nil, decoder.ErrClaims }
func (namedProfile) Rules(*verifier.Policy) (verifier.ProfileRules, error) {
	return nil, nil
}

func TestBuiltinProfiles(t *testing.T) {
	b := verifier.BuiltinProfiles()
	var names []string
	for _, p := range b.List() {
		names = append(names, p.Name())
	}
	if want := []string{"dcc", "wicket"}; !slices.Equal(names, want) {
		t.Fatalf("BuiltinProfiles = %v; want %v", names, want)
	}
	if _, err := verifier.NewProfileSet(b.List()...); err != nil {
		t.Fatalf("NewProfileSet(builtin) = %v", err)
	}
	for _, c := range []struct{ text, want string }{
		{"WK1:ABC", "wicket"}, {"HC1:ABC", "dcc"}, {"wk1:ABC", ""}, {"", ""}, {"HC2:", ""},
	} {
		got := ""
		if p := b.ForText([]byte(c.text)); p != nil {
			got = p.Name()
		}
		if got != c.want {
			t.Errorf("ForText(%q) = %q; want %q", c.text, got, c.want)
		}
	}
	for name, want := range map[string]string{"": "wicket", "wicket": "wicket", "dcc": "dcc"} {
		if p := b.ByName(name); p == nil || p.Name() != want {
			t.Errorf("ByName(%q) = %v; want %s", name, p, want)
		}
	}
	if p := b.ByName("nosuch"); p != nil {
		t.Errorf("ByName(nosuch) = %v; want nil", p.Name())
	}
}

func TestNewProfileSet(t *testing.T) {
	for _, c := range []struct {
		ps   []verifier.Profile
		fail string
	}{
		{[]verifier.Profile{namedProfile{"a", "A1:"}, namedProfile{"b", "B1:"}}, ""},
		{[]verifier.Profile{namedProfile{"a", "A1:"}, namedProfile{"a", "B1:"}}, "given twice"},
		{[]verifier.Profile{namedProfile{"a", "A1:"}, namedProfile{"b", "A1:X"}}, "overlap"},
		{[]verifier.Profile{namedProfile{"a", "A1:X"}, namedProfile{"b", "A1:"}}, "overlap"},
		{append(verifier.BuiltinProfiles().List(), namedProfile{"watch", "WK1"}), "overlap"},
	} {
		s, err := verifier.NewProfileSet(c.ps...)
		switch {
		case c.fail == "" && err != nil:
			t.Errorf("NewProfileSet(%v) = %v; want a set", c.ps, err)
		case c.fail != "" && (err == nil || !strings.Contains(err.Error(), c.fail)):
			t.Errorf("NewProfileSet(%v) = %v; want an error saying %q", c.ps, err, c.fail)
		case c.fail == "" && s.ForText([]byte("B1:x")).Name() != "b":
			t.Errorf("NewProfileSet(%v): B1:x is not read as b", c.ps)
		}
	}
}

// TestDCCPolicySection: a dcc section read from YAML starts from
// DefaultDCCPolicy, keeps the decoder's strictness, and is validated by
// Policy.Validate.
func TestDCCPolicySection(t *testing.T) {
	p, err := verifiertest.ParsePolicy([]byte("profiles:\n  dcc: {accept: [test]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := verifier.DefaultDCCPolicy()
	want.Accept = []string{"test"}
	d := p.Profiles.DCC
	if d == nil || !slices.Equal(d.Accept, want.Accept) || d.Vaccination != want.Vaccination ||
		d.Test.MaxAge != want.Test.MaxAge || !slices.Equal(d.Test.Types, want.Test.Types) {
		t.Fatalf("dcc section = %+v; want %+v", d, want)
	}
	p, err = verifiertest.ParsePolicy([]byte("profiles:\n  dcc: {accept: [vaccination], vaccination: {complete: false}, test: {max_age: 24h}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Profiles.DCC; d.Vaccination.Complete || d.Test.MaxAge != 24*time.Hour || len(d.Test.Types) != 2 {
		t.Errorf("dcc section = %+v; want complete false, test.max_age 24h, the default test types", d)
	}
	if p, err := verifiertest.ParsePolicy(nil); err != nil || p.Profiles.DCC != nil {
		t.Errorf("no dcc section: %v, %+v; want none, DCCs not accepted", err, p.Profiles.DCC)
	}
	for _, c := range []struct{ yaml, want string }{
		{"profiles:\n  dcc: {accept: [test], tset: {}}\n", "tset"},
		{"profiles:\n  wicket: {}\n", "wicket"},
		{"profiles:\n  dcc: {accept: [test], test: {max_age: 0s}}\n", "policy.profiles.dcc.durations"},
		{"profiles:\n  dcc: {accept: [vaccine]}\n", "policy.profiles.dcc.accept"},
	} {
		if _, err := verifiertest.ParsePolicy([]byte(c.yaml)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParsePolicy(%q) = %v; want an error naming %s", c.yaml, err, c.want)
		}
	}
	// A policy built in Go is checked the same way.
	p2 := verifier.DefaultPolicy()
	p2.Profiles.DCC = &verifier.DCCPolicy{Accept: []string{"test"}}
	if err := p2.Validate(); err == nil || !strings.Contains(err.Error(), "test.max_age") {
		t.Errorf("Validate(dcc without defaults) = %v; want test.max_age must be set", err)
	}
}
