package verifier

import (
	"fmt"
	"slices"
	"time"

	"wicket/decoder"
)

// Policy is a venue's rules, the policy section of wicketd.yaml.
// DefaultPolicy fills every field; the configuration decodes its YAML
// over it (the field tags name the keys) and calls Validate.
type Policy struct {
	// Colours: which code colours pass, and which raise an alert.
	Colours ColourPolicy `yaml:"colours"`
	// Test: requirements on the latest test result.
	Test TestPolicy `yaml:"test"`
	// MinDoses is the minimum number of vaccine doses; 0 means no rule.
	MinDoses int `yaml:"min_doses"`
	// Classes: what to do with each holder class.
	Classes ClassPolicy `yaml:"classes"`
	// Kinds: which voucher kinds are accepted and how long they may live.
	Kinds KindsPolicy `yaml:"kinds"`
	// ClockSkew is how far a voucher's times may be off the gate's clock.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// OnUntrustedClock: deny, or warn (decide using the clock floor).
	OnUntrustedClock Fallback `yaml:"on_untrusted_clock"`
	// OnStaleTrustData: deny, or warn (decide with the old data).
	OnStaleTrustData Fallback `yaml:"on_stale_trust_data"`
	// MaxKeySetAge: the key set is stale this long after its issue time.
	MaxKeySetAge time.Duration `yaml:"max_key_set_age"`
	// MaxStatusAge: revocations and overrides are stale this long after
	// the newest batch's issue time; 0 turns the check off.
	MaxStatusAge time.Duration `yaml:"max_status_age"`
	// AntiPassback: the same voucher can't pass again at this venue, nor
	// at another gate of its station, within this window; 0 turns it off
	// (kinds.<kind>.anti_passback overrides it per kind). Enforced by the
	// daemon's decision loop.
	AntiPassback time.Duration `yaml:"anti_passback"`
	// Temperature: the body-temperature check at gates with a
	// thermometer (applied by the daemon after the code is verified).
	Temperature TemperaturePolicy `yaml:"temperature"`
	// Issuers holds rules for particular issuers, by the iss claim (a
	// province for Wicket vouchers, a country code for DCCs). Issuers not
	// named here follow the rules above.
	Issuers map[string]IssuerRule `yaml:"issuers,omitempty"`
	// Profiles holds the voucher profiles' own rules. Codes of a profile
	// without a section are denied with profile_not_accepted; Wicket
	// vouchers take the rules above.
	Profiles ProfilePolicies `yaml:"profiles,omitempty"`
}

// ProfilePolicies are the sections of policy.profiles, one for each
// profile with rules of its own; nil: the gate does not take its codes.
type ProfilePolicies struct {
	// DCC: EU Digital COVID Certificates (docs/profiles.md).
	DCC *DCCPolicy `yaml:"dcc,omitempty"`
}

// TemperaturePolicy is the temperature check: a code that would pass
// passes only with a normal reading taken close to the scan.
type TemperaturePolicy struct {
	// Required turns the check on (the gate needs a thermometer).
	Required bool `yaml:"required"`
	// Threshold: a reading at or above it is a fever (°C).
	Threshold float64 `yaml:"threshold"`
	// Window: a reading taken this long before the scan still counts.
	Window time.Duration `yaml:"window"`
	// Timeout: with no reading in the window, wait this long after the
	// scan for one.
	Timeout time.Duration `yaml:"timeout"`
	// OnNoReading: deny (no_temperature, or thermometer_fault when the
	// sensor is failing), or warn (pass, with the reason as a warning).
	OnNoReading Fallback `yaml:"on_no_reading"`
	// RecordValue keeps the reading in the access record; by default the
	// record says only normal or fever.
	RecordValue bool `yaml:"record_value"`
	// AttendantOverride lets an attendant at a kiosk confirm a fever or
	// missing reading after measuring by hand.
	AttendantOverride bool `yaml:"attendant_override"`
}

// IssuerRule narrows the rules for one issuer.
type IssuerRule struct {
	// Deny refuses every code of this issuer.
	Deny bool `yaml:"deny,omitempty"`
	// Colours, when set, replaces colours.allow for this issuer.
	Colours []string `yaml:"colours,omitempty"`
	// TestMaxAge, when set, replaces test.max_age for this issuer's
	// Wicket vouchers (a neighbour's codes: test within 48h).
	TestMaxAge time.Duration `yaml:"test_max_age,omitempty"`
}

// ColourPolicy says which colours pass and which raise an alert.
type ColourPolicy struct {
	Allow []string `yaml:"allow"`
	Alert []string `yaml:"alert"`
}

// TestPolicy says what test result is required.
type TestPolicy struct {
	// MaxAge is how old the sample may be; 0 means no test is required.
	MaxAge time.Duration `yaml:"max_age"`
	// Kinds lists the accepted test kinds (naat, antigen).
	Kinds []string `yaml:"kinds"`
	// ExemptClasses lists holder classes that need no test (e.g. child).
	ExemptClasses []string `yaml:"exempt_classes"`
	// DenyPositiveWithin: a positive test sampled this recently denies even
	// where no test is required.
	DenyPositiveWithin time.Duration `yaml:"deny_positive_within"`
}

// ClassPolicy gives the action for each holder class.
type ClassPolicy struct {
	Adult   Action `yaml:"adult"`
	Child   Action `yaml:"child"`
	Elderly Action `yaml:"elderly"`
}

// KindsPolicy gives the rules for each voucher kind.
type KindsPolicy struct {
	Dynamic KindPolicy `yaml:"dynamic"`
	Printed KindPolicy `yaml:"printed"`
	Watch   KindPolicy `yaml:"watch"`
}

// KindPolicy is the rule for one voucher kind.
type KindPolicy struct {
	// Accept: whether this gate takes the kind at all.
	Accept bool `yaml:"accept"`
	// MaxValidity bounds exp - start, the start being the earlier of iat
	// and nbf (for dynamic and watch codes: a screen code valid for a day
	// is a screenshot waiting to be shared); 0: no rule.
	MaxValidity time.Duration `yaml:"max_validity"`
	// MaxAge bounds now - start, as for MaxValidity (for printed
	// vouchers); 0: no rule.
	MaxAge time.Duration `yaml:"max_age"`
	// AntiPassback, when set, replaces anti_passback for this kind (a
	// printed voucher can be photocopied: give it the longest window);
	// 0: anti_passback applies.
	AntiPassback time.Duration `yaml:"anti_passback"`
}

// Action is what happens to a holder class.
type Action string

const (
	ActionAllow     Action = "allow"
	ActionDeny      Action = "deny"
	ActionAttendant Action = "attendant"
)

// Fallback is what to do when the gate itself is unsure.
type Fallback string

const (
	FallbackDeny Fallback = "deny"
	FallbackWarn Fallback = "warn"
)

// DefaultPolicy is the fail-secure default: green only, red alerts,
// children and elderly pass, dynamic codes valid at most 10 minutes,
// printed vouchers at most 30 days old, 2 minutes of clock skew, deny on an
// untrusted clock or stale data.
func DefaultPolicy() Policy {
	return Policy{
		Colours: ColourPolicy{Allow: []string{"green"}, Alert: []string{"red"}},
		Test:    TestPolicy{Kinds: []string{"naat", "antigen"}, DenyPositiveWithin: 14 * 24 * time.Hour},
		Classes: ClassPolicy{Adult: ActionAllow, Child: ActionAllow, Elderly: ActionAllow},
		Kinds: KindsPolicy{
			Dynamic: KindPolicy{Accept: true, MaxValidity: 10 * time.Minute},
			Printed: KindPolicy{Accept: true, MaxAge: 30 * 24 * time.Hour},
			Watch:   KindPolicy{Accept: true, MaxValidity: 10 * time.Minute},
		},
		ClockSkew:        2 * time.Minute,
		OnUntrustedClock: FallbackDeny,
		OnStaleTrustData: FallbackDeny,
		MaxKeySetAge:     30 * 24 * time.Hour,
		MaxStatusAge:     72 * time.Hour,
		Temperature: TemperaturePolicy{Threshold: 37.3, Window: 5 * time.Second, Timeout: 3 * time.Second,
			OnNoReading: FallbackDeny, AttendantOverride: true},
		AntiPassback: 0,
	}
}

// Validate checks every field and names the first bad one with its fix.
func (p *Policy) Validate() error {
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("policy.%s: %s", field, fmt.Sprintf(format, a...))
	}
	for _, c := range append(slices.Clone(p.Colours.Allow), p.Colours.Alert...) {
		if _, err := decoder.ParseColour(c); err != nil {
			return bad("colours", "%v", err)
		}
	}
	for _, c := range p.Colours.Allow {
		if c == "red" {
			return bad("colours.allow", "red codes may never pass; remove red")
		}
	}
	for _, k := range p.Test.Kinds {
		if _, err := decoder.ParseTestKind(k); err != nil {
			return bad("test.kinds", "%v", err)
		}
	}
	if p.Test.MaxAge > 0 && len(p.Test.Kinds) == 0 {
		return bad("test.kinds", "a test is required but no kind is accepted; list naat and/or antigen")
	}
	for _, c := range p.Test.ExemptClasses {
		if _, err := decoder.ParseClass(c); err != nil {
			return bad("test.exempt_classes", "%v", err)
		}
	}
	if p.MinDoses < 0 || p.MinDoses > 10 {
		return bad("min_doses", "%d is out of range; use 0 (no rule) to 10", p.MinDoses)
	}
	for name, a := range map[string]Action{"adult": p.Classes.Adult, "child": p.Classes.Child, "elderly": p.Classes.Elderly} {
		if a != ActionAllow && a != ActionDeny && a != ActionAttendant {
			return bad("classes."+name, "%q is not an action; use allow, deny or attendant", a)
		}
	}
	for name, f := range map[string]Fallback{"on_untrusted_clock": p.OnUntrustedClock, "on_stale_trust_data": p.OnStaleTrustData} {
		if f != FallbackDeny && f != FallbackWarn {
			return bad(name, "%q is not a fallback; use deny or warn", f)
		}
	}
	for name, d := range map[string]time.Duration{
		"clock_skew": p.ClockSkew, "max_key_set_age": p.MaxKeySetAge, "max_status_age": p.MaxStatusAge,
		"anti_passback": p.AntiPassback, "test.max_age": p.Test.MaxAge, "test.deny_positive_within": p.Test.DenyPositiveWithin,
		"kinds.dynamic.max_validity": p.Kinds.Dynamic.MaxValidity, "kinds.watch.max_validity": p.Kinds.Watch.MaxValidity,
		"kinds.printed.max_age": p.Kinds.Printed.MaxAge, "kinds.dynamic.max_age": p.Kinds.Dynamic.MaxAge,
		"kinds.watch.max_age": p.Kinds.Watch.MaxAge, "kinds.printed.max_validity": p.Kinds.Printed.MaxValidity,
		"kinds.dynamic.anti_passback": p.Kinds.Dynamic.AntiPassback, "kinds.printed.anti_passback": p.Kinds.Printed.AntiPassback,
		"kinds.watch.anti_passback": p.Kinds.Watch.AntiPassback,
	} {
		if d < 0 {
			return bad(name, "negative duration %v; use 0 to turn the rule off", d)
		}
	}
	if p.ClockSkew > time.Hour {
		return bad("clock_skew", "%v is too lax; keep it at most 1h and fix the gate's clock instead", p.ClockSkew)
	}
	if p.MaxKeySetAge == 0 {
		return bad("max_key_set_age", "must be set (e.g. 720h): a gate must notice when it stops receiving keys")
	}
	if !p.Kinds.Dynamic.Accept && !p.Kinds.Printed.Accept && !p.Kinds.Watch.Accept {
		return bad("kinds", "no voucher kind is accepted; set accept: true on at least one")
	}
	if t := p.Temperature; t.Threshold < 35 || t.Threshold > 40 {
		return bad("temperature.threshold", "%.1f °C is not a fever threshold; use 35 to 40 (37.3 is usual)", t.Threshold)
	}
	if t := p.Temperature; t.Window < 0 || t.Timeout < 0 || t.Timeout > 30*time.Second {
		return bad("temperature", "window and timeout must not be negative, and timeout at most 30s (people queue behind)")
	}
	if f := p.Temperature.OnNoReading; f != FallbackDeny && f != FallbackWarn {
		return bad("temperature.on_no_reading", "%q is not a fallback; use deny or warn", f)
	}
	for iss, rule := range p.Issuers {
		for _, c := range rule.Colours {
			col, err := decoder.ParseColour(c)
			if err != nil {
				return bad("issuers."+iss+".colours", "%v", err)
			}
			if col == decoder.ColourRed {
				return bad("issuers."+iss+".colours", "red codes may never pass; remove red")
			}
		}
		if rule.TestMaxAge < 0 {
			return bad("issuers."+iss+".test_max_age", "negative duration %v", rule.TestMaxAge)
		}
	}
	if d := p.Profiles.DCC; d != nil {
		if err := d.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// compiled is a Policy in the form Verify reads without allocating.
type compiled struct {
	Policy
	allow, alert [4]bool // by decoder.Colour
	issuerAllow  map[string][4]bool
	rules        map[string]ProfileRules // by profile name
}

// compile builds the compiled form of a validated policy with the rules
// of each profile of set; a profile whose Rules are nil is not accepted.
func compile(p *Policy, set *ProfileSet) (*compiled, error) {
	c := &compiled{Policy: *p, issuerAllow: map[string][4]bool{}, rules: map[string]ProfileRules{}}
	for _, s := range p.Colours.Allow {
		col, _ := decoder.ParseColour(s)
		c.allow[col] = true
	}
	for _, s := range p.Colours.Alert {
		col, _ := decoder.ParseColour(s)
		c.alert[col] = true
	}
	for iss, rule := range p.Issuers {
		if len(rule.Colours) == 0 {
			continue
		}
		var allow [4]bool
		for _, s := range rule.Colours {
			col, _ := decoder.ParseColour(s)
			allow[col] = true
		}
		c.issuerAllow[iss] = allow
	}
	for _, prof := range set.list {
		r, err := prof.Rules(p)
		if err != nil {
			return nil, err
		}
		if r != nil {
			c.rules[prof.Name()] = r
		}
	}
	return c, nil
}

// allows reports whether colour col passes for issuer iss.
func (c *compiled) allows(iss string, col decoder.Colour) bool {
	if a, ok := c.issuerAllow[iss]; ok {
		return a[col]
	}
	return c.allow[col]
}
