package verifier

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"wicket/decoder"
)

// Policy is a venue's rules, read from the policy section of wicketd.yaml.
// DefaultPolicy fills every field; a YAML document overrides what it names.
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
	// AntiPassback: the same voucher can't pass again at this venue within
	// this window; 0 turns it off. Enforced by the daemon's store.
	AntiPassback time.Duration `yaml:"anti_passback"`
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
	// MaxValidity bounds exp - iat (for dynamic and watch codes: a screen
	// code valid for a day is a screenshot waiting to be shared); 0: no rule.
	MaxValidity time.Duration `yaml:"max_validity"`
	// MaxAge bounds now - iat (for printed vouchers); 0: no rule.
	MaxAge time.Duration `yaml:"max_age"`
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
		AntiPassback:     0,
	}
}

// ParsePolicy reads a policy YAML document over the defaults. Unknown keys
// are errors naming their line.
func ParsePolicy(data []byte) (*Policy, error) {
	p := DefaultPolicy()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
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
	return nil
}

// compiled is a Policy in the form Verify reads without allocating.
type compiled struct {
	Policy
	allow, alert [4]bool // by decoder.Colour
	testKinds    [3]bool // by decoder.TestKind
	exempt       [4]bool // by decoder.Class
	classes      [4]Action
	kinds        [4]KindPolicy
}

func compile(p *Policy) *compiled {
	c := &compiled{Policy: *p}
	for _, s := range p.Colours.Allow {
		col, _ := decoder.ParseColour(s)
		c.allow[col] = true
	}
	for _, s := range p.Colours.Alert {
		col, _ := decoder.ParseColour(s)
		c.alert[col] = true
	}
	for _, s := range p.Test.Kinds {
		k, _ := decoder.ParseTestKind(s)
		c.testKinds[k] = true
	}
	for _, s := range p.Test.ExemptClasses {
		k, _ := decoder.ParseClass(s)
		c.exempt[k] = true
	}
	c.classes = [4]Action{ActionDeny, p.Classes.Adult, p.Classes.Child, p.Classes.Elderly}
	c.kinds = [4]KindPolicy{{}, p.Kinds.Dynamic, p.Kinds.Printed, p.Kinds.Watch}
	return c
}

// String renders the effective policy as YAML (for check-config).
func (p *Policy) String() string {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	enc.Encode(p)
	return b.String()
}
