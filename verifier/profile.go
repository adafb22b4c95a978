package verifier

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"wicket/decoder"
)

// A Profile is one kind of signed code a gate can read: a text prefix, an
// envelope down to a COSE_Sign1, and a mapping of the signed claims into
// the common decision Input, with the profile's own rules. Wicket vouchers
// (profile_wicket.go) and EU Digital COVID Certificates (profile_dcc.go)
// are the two built in (BuiltinProfiles); a third is one more file, one
// more entry in BuiltinProfiles and, if it has rules of its own, one more
// field of ProfilePolicies.
type Profile interface {
	// Name is the profile's name in key sets, policy and records
	// ("wicket", "dcc").
	Name() string
	// Prefix is the text every code of the profile starts with.
	Prefix() string
	// Envelope strips the text layers and parses the COSE_Sign1; it
	// narrows the algorithms to those of the profile.
	Envelope(text []byte) (*decoder.Sign1, error)
	// Claims maps a payload whose signature verified into the decision
	// input. Errors wrap decoder.ErrClaims or decoder.ErrCBOR.
	Claims(payload []byte) (*Input, error)
	// Rules compiles the profile's rules from the policy, its own section
	// of p.Profiles included. Nil rules and a nil error: the policy does
	// not take this profile's codes (it has no section for it). An error
	// names the policy field at fault.
	Rules(p *Policy) (ProfileRules, error)
}

// ProfileRules are a profile's checks, compiled from the policy.
type ProfileRules interface {
	// Admit checks the signer's restrictions and whether the gate takes
	// this code at all; it runs before revocations are looked up.
	Admit(in *Input, key *IssuerKey, now time.Time, skew time.Duration) (Reason, string)
	// Content checks the holder's data (tests, vaccination, class); it
	// runs after the colour. ReasonAttendantRequired asks for a person.
	Content(in *Input, now time.Time) (Reason, string)
}

// Input is what a profile gives the decision: the common facts of a
// verified code, whatever its format.
type Input struct {
	Profile string
	Issuer  string
	// ID identifies the code for revocation; Subject is the holder's
	// pseudonym for overrides. Neither is a name or an ID number.
	ID, Subject []byte
	Kind        decoder.Kind
	Class       decoder.Class
	Colour      decoder.Colour
	// Name is the masked display name.
	Name      string
	IssuedAt  time.Time
	NotBefore time.Time // zero: valid from IssuedAt
	Expiry    time.Time
	Test      *decoder.Test
	Doses     int
	// DCC is the certificate content of an EU DCC, nil for other profiles.
	DCC *DCC
	// dcc is what only the verifier may see of a DCC (dcc_revocation.go).
	dcc *dccKeys
}

// ValidFrom is NotBefore if set, else IssuedAt.
func (in *Input) ValidFrom() time.Time {
	if !in.NotBefore.IsZero() {
		return in.NotBefore
	}
	return in.IssuedAt
}

// Start is the start of validity the gate honours: the earlier of iat and
// nbf. Every limit on a voucher's life (max_validity, max_age) and every
// statement about its subject (void-before, colour) is measured from it,
// so an early nbf cannot stretch a voucher's life past the policy, and a
// late iat cannot hide it from an override.
func (in *Input) Start() time.Time {
	if !in.NotBefore.IsZero() && in.NotBefore.Before(in.IssuedAt) {
		return in.NotBefore
	}
	return in.IssuedAt
}

// ProfileSet is a fixed list of profiles, looked up by the prefix of a
// code and by name. It is immutable once made.
type ProfileSet struct {
	list []Profile // sorted by name
}

// NewProfileSet makes a set of the given profiles. Two profiles may not
// share a name, nor may one's prefix start the other's: a code would not
// know its profile.
func NewProfileSet(ps ...Profile) (*ProfileSet, error) {
	list := slices.Clone(ps)
	slices.SortFunc(list, func(a, b Profile) int { return strings.Compare(a.Name(), b.Name()) })
	for i, p := range list {
		for _, q := range list[:i] {
			if q.Name() == p.Name() {
				return nil, fmt.Errorf("profile %s given twice", p.Name())
			}
			if strings.HasPrefix(p.Prefix(), q.Prefix()) || strings.HasPrefix(q.Prefix(), p.Prefix()) {
				return nil, fmt.Errorf("profiles %s and %s: prefixes %q and %q overlap", q.Name(), p.Name(), q.Prefix(), p.Prefix())
			}
		}
	}
	return &ProfileSet{list: list}, nil
}

// BuiltinProfiles is the set every Verifier reads: EU DCCs and Wicket
// vouchers (TestBuiltinProfiles checks it as NewProfileSet would).
func BuiltinProfiles() *ProfileSet {
	return &ProfileSet{list: []Profile{dccProfile{}, wicketProfile{}}}
}

// List returns the profiles by name.
func (s *ProfileSet) List() []Profile { return slices.Clone(s.list) }

// ForText returns the profile whose prefix the text starts with, or nil.
func (s *ProfileSet) ForText(text []byte) Profile {
	for _, p := range s.list {
		if bytes.HasPrefix(text, []byte(p.Prefix())) {
			return p
		}
	}
	return nil
}

// ByName returns the named profile, or nil. "" is the Wicket profile (key
// sets leave the name out for Wicket keys).
func (s *ProfileSet) ByName(name string) Profile {
	if name == "" {
		name = wicketProfileName
	}
	for _, p := range s.list {
		if p.Name() == name {
			return p
		}
	}
	return nil
}

// keyProfile is the profile name of a key, with "" read as Wicket.
func keyProfile(k *IssuerKey) string {
	if k.Profile == "" {
		return wicketProfileName
	}
	return k.Profile
}
