package verifier

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"wicket/decoder"
)

// Decision is the outcome of one scan.
type Decision struct {
	// Allow: open the turnstile.
	Allow bool `json:"allow"`
	// Reason says why; ReasonOK when allowed.
	Reason Reason `json:"reason"`
	// Colour is the effective colour (after overrides), ColourNone when
	// the code could not be read or verified.
	Colour decoder.Colour `json:"colour"`
	// Overridden: Colour comes from an override newer than the voucher.
	Overridden bool `json:"overridden,omitempty"`
	// Alert: the checkpoint must report this scan at once (red code).
	Alert bool `json:"alert,omitempty"`
	// Attendant: a person must compare the photo before the holder passes.
	Attendant bool `json:"attendant,omitempty"`
	// Warnings lists conditions that were allowed by policy (untrusted
	// clock, stale data) but must be logged.
	Warnings []Reason `json:"warnings,omitempty"`
	// Message is the text for the gate's display.
	Message Message `json:"message"`
	// Detail is technical detail for the log and the technician; never
	// shown to the passenger.
	Detail string `json:"detail,omitempty"`
	// At is the time the decision was made at (the floor, when the clock
	// was untrusted).
	At time.Time `json:"at"`
	// Voucher facts, present once the signature verified.
	Voucher *VoucherInfo `json:"voucher,omitempty"`
}

// VoucherInfo is what a decision keeps of a verified voucher. ID and
// Subject are the raw identifiers: the store hashes them before writing.
type VoucherInfo struct {
	Profile  string         `json:"profile"`
	Issuer   string         `json:"issuer"`
	Kid      HexBytes       `json:"kid"`
	ID       HexBytes       `json:"voucher_id"`
	Subject  []byte         `json:"-"`
	Kind     decoder.Kind   `json:"kind"`
	Class    decoder.Class  `json:"class"`
	Colour   decoder.Colour `json:"voucher_colour"`
	Name     string         `json:"masked_name,omitempty"`
	IssuedAt time.Time      `json:"issued_at"`
	Expires  time.Time      `json:"expires"`
	Test     *decoder.Test  `json:"test,omitempty"`
	Doses    int            `json:"doses"`
	// DCC is the mapped content of an EU DCC.
	DCC *DCC `json:"dcc,omitempty"`
}

// Verifier decides on scanned codes. Create it with New.
type Verifier struct {
	clock    *TrustedClock
	status   Status
	profiles *ProfileSet
	policy   atomic.Pointer[compiled]
	keys     atomic.Pointer[KeySet]
	dccKey   atomic.Pointer[[]byte]
}

// New returns a Verifier of the BuiltinProfiles with no key set
// installed (every code is denied with no_trust_data until
// InstallKeySet). status may be nil: no revocations or overrides are
// known, and the status age check is skipped only if MaxStatusAge is 0.
func New(clock *TrustedClock, status Status, p *Policy) (*Verifier, error) {
	v := &Verifier{clock: clock, status: status, profiles: BuiltinProfiles()}
	if err := v.SetPolicy(p); err != nil {
		return nil, err
	}
	return v, nil
}

// SetPolicy swaps the policy; decisions in flight finish with the old one.
func (v *Verifier) SetPolicy(p *Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	c, err := compile(p, v.profiles)
	if err != nil {
		return err
	}
	v.policy.Store(c)
	return nil
}

// Policy returns the policy in force.
func (v *Verifier) Policy() Policy { return v.policy.Load().Policy }

// Clock returns the trusted clock.
func (v *Verifier) Clock() *TrustedClock { return v.clock }

// KeySet returns the installed key set, or nil.
func (v *Verifier) KeySet() *KeySet { return v.keys.Load() }

// InstallKeySet swaps in a verified key set if its version is newer than
// the installed one, and raises the clock floor to its issue time.
func (v *Verifier) InstallKeySet(ks *KeySet) error {
	for {
		cur := v.keys.Load()
		if cur != nil && ks.Version <= cur.Version {
			return fmt.Errorf("%w: key set %d, installed %d", ErrTrustVersion, ks.Version, cur.Version)
		}
		if v.keys.CompareAndSwap(cur, ks) {
			v.clock.Raise(ks.IssuedAt)
			return nil
		}
	}
}

// formatReasons maps decoder errors to reasons, most specific first.
var formatReasons = []struct {
	err    error
	reason Reason
}{
	{decoder.ErrEmpty, ReasonEmpty},
	{decoder.ErrTooLong, ReasonTooLong},
	{decoder.ErrPrefix, ReasonBadPrefix},
	{decoder.ErrBase45, ReasonBadBase45},
	{decoder.ErrTooLarge, ReasonTooLarge},
	{decoder.ErrCompression, ReasonBadZlib},
	{decoder.ErrAlgNotProtected, ReasonAlgNotProtected},
	{decoder.ErrUnsupportedAlg, ReasonUnsupportedAlg},
	{decoder.ErrClaims, ReasonBadClaims},
	{decoder.ErrCOSE, ReasonBadCOSE},
	{decoder.ErrCBOR, ReasonBadCBOR},
}

// ReasonForError maps a decoder error to its reason code.
func ReasonForError(err error) Reason {
	for _, f := range formatReasons {
		if errors.Is(err, f.err) {
			return f.reason
		}
	}
	return ReasonInternal
}

func deny(d *Decision, r Reason, detail string) Decision {
	d.Allow = false
	d.Reason = r
	d.Message = r.Message()
	d.Detail = detail
	return *d
}

// Verify decides on the text of one scanned code. It never returns an error
// and never panics on any input: every failure is a denying Decision with
// its reason. Safe for concurrent use.
func (v *Verifier) Verify(text []byte) Decision {
	p := v.policy.Load()
	var d Decision
	now, trusted := v.clock.Now(p.ClockSkew)
	d.At = now

	switch {
	case len(text) == 0:
		return deny(&d, ReasonEmpty, decoder.ErrEmpty.Error())
	case len(text) > decoder.MaxTextLen:
		return deny(&d, ReasonTooLong, fmt.Sprintf("%d characters, over %d", len(text), decoder.MaxTextLen))
	}
	prof := v.profiles.ForText(text)
	if prof == nil {
		return deny(&d, ReasonBadPrefix, "no voucher profile has this prefix")
	}
	env, err := prof.Envelope(text)
	if err != nil {
		return deny(&d, ReasonForError(err), err.Error())
	}
	ks := v.keys.Load()
	if ks == nil {
		return deny(&d, ReasonNoTrustData, "no key set installed")
	}
	if !trusted {
		if p.OnUntrustedClock == FallbackDeny {
			return deny(&d, ReasonClockUntrusted, "wall clock is below the trusted floor "+now.UTC().Format(time.RFC3339))
		}
		d.Warnings = append(d.Warnings, ReasonClockUntrusted)
	}
	if stale := v.staleness(p, ks, now); stale != "" {
		if p.OnStaleTrustData == FallbackDeny {
			return deny(&d, ReasonTrustDataStale, stale)
		}
		d.Warnings = append(d.Warnings, ReasonTrustDataStale)
	}

	// Every key with the kid is tried, but only keys of this profile: a
	// Wicket key never vouches for a DCC or the other way round.
	var key *IssuerKey
	tried := 0
	tbs := env.ToBeSigned()
	for _, k := range ks.ByKid(env.Kid) {
		if keyProfile(k) != prof.Name() {
			continue
		}
		tried++
		if k.Verify(env.Alg, tbs, env.Signature) {
			key = k
			break
		}
	}
	if tried == 0 {
		return deny(&d, ReasonUnknownKid, fmt.Sprintf("no trusted %s key with kid %x", prof.Name(), env.Kid))
	}
	if key == nil {
		return deny(&d, ReasonBadSignature, fmt.Sprintf("no key with kid %x and alg %v verifies the signature", env.Kid, env.Alg))
	}

	in, err := prof.Claims(env.Payload)
	if err != nil {
		return deny(&d, ReasonForError(err), err.Error())
	}
	if in.dcc != nil {
		if r, detail := v.dccFinish(env, key, in); r != ReasonOK {
			return deny(&d, r, detail)
		}
	}
	d.Voucher = &VoucherInfo{
		Profile: in.Profile, Issuer: in.Issuer, Kid: key.Kid, ID: in.ID, Subject: in.Subject, Kind: in.Kind,
		Class: in.Class, Colour: in.Colour, Name: in.Name, IssuedAt: in.IssuedAt, Expires: in.Expiry,
		Test: in.Test, Doses: in.Doses, DCC: in.DCC,
	}
	d.Colour = in.Colour
	return v.decide(&d, p, key, in, now)
}

// Readiness is the gate-level state Verify checks before any voucher.
type Readiness struct {
	// KeySet: a key set is installed.
	KeySet bool
	// ClockTrusted: the wall clock is not below the trusted floor.
	ClockTrusted bool
	// Stale says why the trust data is stale; "" when it is fresh.
	Stale string
	// NotReady says why the policy denies every code now (no key set,
	// or an untrusted clock or stale data where the fallback is deny);
	// "" when codes can be allowed.
	NotReady string
}

// Readiness reports the state Verify would find now.
func (v *Verifier) Readiness() Readiness {
	p := v.policy.Load()
	now, trusted := v.clock.Now(p.ClockSkew)
	r := Readiness{ClockTrusted: trusted}
	ks := v.keys.Load()
	if ks == nil {
		r.NotReady = "no key set installed"
		return r
	}
	r.KeySet = true
	r.Stale = v.staleness(p, ks, now)
	switch {
	case !trusted && p.OnUntrustedClock == FallbackDeny:
		r.NotReady = "clock below its trusted floor"
	case r.Stale != "" && p.OnStaleTrustData == FallbackDeny:
		r.NotReady = "trust data stale: " + r.Stale
	}
	return r
}

// staleness explains why the trust data is stale, or returns "".
func (v *Verifier) staleness(p *compiled, ks *KeySet, now time.Time) string {
	if age := now.Sub(ks.IssuedAt); age > p.MaxKeySetAge {
		return fmt.Sprintf("key set %d is %v old, over %v", ks.Version, age.Round(time.Minute), p.MaxKeySetAge)
	}
	if p.MaxStatusAge > 0 {
		var info StatusInfo
		if v.status != nil {
			info = v.status.Info()
		}
		if info.Version == 0 {
			return "no revocation/override data installed"
		}
		if age := now.Sub(info.IssuedAt); age > p.MaxStatusAge {
			return fmt.Sprintf("revocation data %d is %v old, over %v", info.Version, age.Round(time.Minute), p.MaxStatusAge)
		}
	}
	return ""
}

// decide applies key rules, time, revocations and policy to verified claims.
func (v *Verifier) decide(d *Decision, p *compiled, key *IssuerKey, in *Input, now time.Time) Decision {
	iat := in.IssuedAt
	switch {
	case in.Issuer != "" && in.Issuer != key.Issuer:
		return deny(d, ReasonIssuerMismatch, fmt.Sprintf("voucher says issuer %q, key %x belongs to %q", in.Issuer, key.Kid, key.Issuer))
	case iat.Before(key.NotBefore) || iat.After(key.NotAfter):
		return deny(d, ReasonKeyNotValid, fmt.Sprintf("issued %v, outside key %x window %v to %v", iat.UTC(), key.Kid, key.NotBefore.UTC(), key.NotAfter.UTC()))
	case now.After(key.NotAfter.Add(p.ClockSkew)):
		return deny(d, ReasonKeyNotValid, fmt.Sprintf("key %x expired at %v", key.Kid, key.NotAfter.UTC()))
	}
	issuer := in.Issuer
	if issuer == "" {
		issuer = key.Issuer
	}
	if rule, ok := p.Issuers[issuer]; ok && rule.Deny {
		return deny(d, ReasonIssuerNotAccepted, fmt.Sprintf("policy.issuers.%s denies this issuer", issuer))
	}
	switch {
	case now.Add(p.ClockSkew).Before(iat):
		// Whatever nbf says: a voucher issued in the future would
		// otherwise escape every limit measured from its issue time.
		return deny(d, ReasonNotYetValid, fmt.Sprintf("issued %v, after now plus the clock skew", iat.UTC()))
	case now.Add(p.ClockSkew).Before(in.ValidFrom()):
		return deny(d, ReasonNotYetValid, fmt.Sprintf("valid from %v", in.ValidFrom().UTC()))
	case now.Add(-p.ClockSkew).After(in.Expiry):
		return deny(d, ReasonExpired, fmt.Sprintf("expired at %v", in.Expiry.UTC()))
	}

	rules := p.rules[in.Profile]
	if rules == nil {
		return deny(d, ReasonProfileNotAccepted, fmt.Sprintf("no policy.profiles.%s section", in.Profile))
	}
	if r, detail := rules.Admit(in, key, now, p.ClockSkew); r != ReasonOK {
		return deny(d, r, detail)
	}
	if v.status != nil {
		standing, err := v.status.Standing(in.ID, in.Subject)
		if err != nil {
			return deny(d, ReasonInternal, "revocation lookup: "+err.Error())
		}
		if standing.Revoked {
			return deny(d, ReasonRevoked, "voucher id is revoked")
		}
		if r, detail := v.dccRevoked(in); r != ReasonOK {
			return deny(d, r, detail)
		}
		// Statements about the subject are weighed against the start of
		// validity, so a voucher valid from before a statement is
		// touched by it whatever its iat says.
		st, start := standing.Subject, in.Start()
		if start.Before(st.VoidBefore) {
			return deny(d, ReasonSuperseded, fmt.Sprintf("subject's vouchers valid before %v are void", st.VoidBefore.UTC()))
		}
		if st.Colour != decoder.ColourNone && st.ColourAt.After(start) && now.Before(st.ColourUntil) {
			d.Colour = st.Colour
			d.Overridden = st.Colour != in.Colour
		}
	}

	d.Alert = p.alert[d.Colour]
	if !p.allows(issuer, d.Colour) {
		switch d.Colour {
		case decoder.ColourRed:
			return deny(d, ReasonColourRed, "")
		case decoder.ColourYellow:
			return deny(d, ReasonColourYellow, "")
		}
		return deny(d, ReasonColourNotAllowed, fmt.Sprintf("%v is not allowed for issuer %q", d.Colour, issuer))
	}
	if r, detail := rules.Content(in, now); r != ReasonOK {
		d.Attendant = r == ReasonAttendantRequired
		return deny(d, r, detail)
	}
	d.Allow = true
	d.Reason = ReasonOK
	d.Message = ReasonOK.Message()
	return *d
}

// HexBytes prints as lowercase hex in JSON and logs.
type HexBytes []byte

func (h HexBytes) MarshalText() ([]byte, error) {
	return []byte(hex.EncodeToString(h)), nil
}

func (h HexBytes) String() string { return hex.EncodeToString(h) }
