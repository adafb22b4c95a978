package verifier

import (
	"fmt"
	"time"

	"wicket/decoder"
)

// wicketProfileName names the native profile: WK1 vouchers, the format of
// docs/voucher-format.md.
const wicketProfileName = "wicket"

type wicketProfile struct{}

func (wicketProfile) Name() string   { return wicketProfileName }
func (wicketProfile) Prefix() string { return decoder.Prefix }

func (wicketProfile) Envelope(text []byte) (*decoder.Sign1, error) {
	env, err := decoder.Parse(text)
	if err != nil {
		return nil, err
	}
	return &env.Sign1, nil
}

func (wicketProfile) Claims(payload []byte) (*Input, error) {
	c, err := decoder.ParseClaims(payload)
	if err != nil {
		return nil, err
	}
	vc := &c.Voucher
	in := &Input{
		Profile: wicketProfileName, Issuer: c.Issuer, ID: c.ID, Subject: vc.Subject,
		Kind: vc.Kind, Class: vc.Class, Colour: vc.Colour, Name: vc.Name,
		IssuedAt: c.IssuedTime(), Expiry: c.ExpiryTime(), Test: vc.Test,
	}
	if c.NotBefore != 0 {
		in.NotBefore = time.Unix(c.NotBefore, 0)
	}
	if vc.Vaccination != nil {
		in.Doses = int(vc.Vaccination.Doses)
	}
	return in, nil
}

// wicketRules are the policy's rules for Wicket vouchers: kinds, holder
// classes, tests and doses, with per-issuer test ages.
type wicketRules struct {
	p         Policy
	testKinds [3]bool // by decoder.TestKind
	exempt    [4]bool // by decoder.Class
	classes   [4]Action
	kinds     [4]KindPolicy
}

// Rules: Wicket vouchers take the top-level rules of the policy, which
// Policy.Validate has checked.
func (wicketProfile) Rules(p *Policy) (ProfileRules, error) {
	r := &wicketRules{p: *p}
	for _, s := range p.Test.Kinds {
		k, _ := decoder.ParseTestKind(s)
		r.testKinds[k] = true
	}
	for _, s := range p.Test.ExemptClasses {
		k, _ := decoder.ParseClass(s)
		r.exempt[k] = true
	}
	r.classes = [4]Action{ActionDeny, p.Classes.Adult, p.Classes.Child, p.Classes.Elderly}
	r.kinds = [4]KindPolicy{{}, p.Kinds.Dynamic, p.Kinds.Printed, p.Kinds.Watch}
	return r, nil
}

func (r *wicketRules) Admit(in *Input, key *IssuerKey, now time.Time, skew time.Duration) (Reason, string) {
	if !key.AllowsKind(in.Kind) {
		return ReasonKeyKindNotAllowed, fmt.Sprintf("key %x may not sign %v vouchers", key.Kid, in.Kind)
	}
	kp := r.kinds[in.Kind]
	start := in.Start()
	switch {
	case !kp.Accept:
		return ReasonKindNotAccepted, fmt.Sprintf("%v vouchers are not accepted", in.Kind)
	case kp.MaxValidity > 0 && in.Expiry.Sub(start) > kp.MaxValidity:
		return ReasonValidityTooLong, fmt.Sprintf("valid for %v from %v, over %v", in.Expiry.Sub(start), start.UTC(), kp.MaxValidity)
	case kp.MaxAge > 0 && now.Sub(start) > kp.MaxAge+skew:
		return ReasonVoucherTooOld, fmt.Sprintf("valid since %v ago, over %v", now.Sub(start).Round(time.Minute), kp.MaxAge)
	}
	return ReasonOK, ""
}

func (r *wicketRules) Content(in *Input, now time.Time) (Reason, string) {
	action := r.classes[in.Class]
	if action == ActionDeny {
		return ReasonClassDenied, fmt.Sprintf("%v vouchers are denied here", in.Class)
	}
	if reason, detail := r.checkTest(in, now); reason != ReasonOK {
		return reason, detail
	}
	if r.p.MinDoses > 0 && in.Doses < r.p.MinDoses {
		return ReasonDosesInsufficient, fmt.Sprintf("%d doses, policy needs %d", in.Doses, r.p.MinDoses)
	}
	if action == ActionAttendant {
		return ReasonAttendantRequired, fmt.Sprintf("%v voucher: compare the photo", in.Class)
	}
	return ReasonOK, ""
}

// checkTest applies the test rules, with the issuer's own test age if the
// policy gives one.
func (r *wicketRules) checkTest(in *Input, now time.Time) (Reason, string) {
	t := in.Test
	if t != nil && t.Result == decoder.ResultPositive {
		age := now.Sub(time.Unix(t.Sampled, 0))
		if r.p.Test.DenyPositiveWithin > 0 && age <= r.p.Test.DenyPositiveWithin {
			return ReasonTestPositive, fmt.Sprintf("positive %v test sampled %v ago", t.Kind, age.Round(time.Minute))
		}
	}
	maxAge := r.p.Test.MaxAge
	if rule, ok := r.p.Issuers[in.Issuer]; ok && rule.TestMaxAge > 0 {
		maxAge = rule.TestMaxAge
	}
	if maxAge == 0 || r.exempt[in.Class] {
		return ReasonOK, ""
	}
	switch {
	case t == nil:
		return ReasonTestMissing, "policy requires a test"
	case !r.testKinds[t.Kind]:
		return ReasonTestKindNotAccepted, fmt.Sprintf("%v tests are not accepted", t.Kind)
	case t.Result == decoder.ResultPositive:
		return ReasonTestPositive, "latest test is positive"
	}
	if age := now.Sub(time.Unix(t.Sampled, 0)); age > maxAge {
		return ReasonTestTooOld, fmt.Sprintf("sampled %v ago, over %v", age.Round(time.Minute), maxAge)
	}
	return ReasonOK, ""
}
