package verifier

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"wicket/decoder"
)

// A Profile is one kind of signed code a gate can read: a text prefix, an
// envelope down to a COSE_Sign1, and a mapping of the signed claims into
// the common decision Input, with the profile's own rules. Wicket vouchers
// (profile_wicket.go) and EU Digital COVID Certificates (profile_dcc.go)
// are the two built in; a third is one more file that calls
// RegisterProfile from its init function.
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
	// Rules compiles the profile's rules from the policy and its section
	// of policy.profiles (nil when the policy has none).
	Rules(p *Policy, section *yaml.Node) (ProfileRules, error)
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

var profiles struct {
	sync.RWMutex
	list []Profile
}

// RegisterProfile adds a profile. It panics on a duplicate name or a
// prefix that overlaps another's, which are programming errors.
func RegisterProfile(p Profile) {
	profiles.Lock()
	defer profiles.Unlock()
	for _, q := range profiles.list {
		if q.Name() == p.Name() {
			panic("verifier: profile " + p.Name() + " registered twice")
		}
		a, b := q.Prefix(), p.Prefix()
		if len(a) > len(b) {
			a, b = b, a
		}
		if b[:len(a)] == a {
			panic(fmt.Sprintf("verifier: prefixes %q and %q overlap", q.Prefix(), p.Prefix()))
		}
	}
	profiles.list = append(profiles.list, p)
	slices.SortFunc(profiles.list, func(a, b Profile) int {
		if a.Name() < b.Name() {
			return -1
		}
		return 1
	})
}

// Profiles returns the registered profiles by name.
func Profiles() []Profile {
	profiles.RLock()
	defer profiles.RUnlock()
	return slices.Clone(profiles.list)
}

// profileFor returns the profile whose prefix the text starts with.
func profileFor(text []byte) Profile {
	profiles.RLock()
	defer profiles.RUnlock()
	for _, p := range profiles.list {
		if bytes.HasPrefix(text, []byte(p.Prefix())) {
			return p
		}
	}
	return nil
}

// profileByName returns the named profile, or nil. "" is the Wicket
// profile (key sets leave the name out for Wicket keys).
func profileByName(name string) Profile {
	if name == "" {
		name = wicketProfileName
	}
	profiles.RLock()
	defer profiles.RUnlock()
	for _, p := range profiles.list {
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
