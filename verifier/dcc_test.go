package verifier_test

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// dccGate is a fixture whose key set adds DCC signers: DE (ES256, all
// types), AT (ES256, vaccination only by its EKU) and FR (PS256, all),
// with the DCC section of the policy from policyYAML.
type dccGate struct {
	de, at, fr *verifiertest.DCCSigner
}

const dccPolicy = `
profiles:
  dcc:
    accept: [vaccination, test, recovery]
    vaccination: {complete: true, min_age: 336h, max_age: 8760h}
    test: {max_age: 72h, types: [naat, antigen]}
`

func newDCCGate(t testing.TB, f *verifiertest.Fixture, policy string, extra ...verifier.IssuerKey) *dccGate {
	t.Helper()
	g := &dccGate{
		de: verifiertest.NewDCCSigner(t, verifiertest.ESKey(10), "DE"),
		at: verifiertest.NewDCCSigner(t, verifiertest.ESKey(11), "AT", verifiertest.OIDDCCVaccination),
		fr: verifiertest.NewDCCSigner(t, verifiertest.RSAKey(), "FR"),
	}
	keys := []verifier.IssuerKey{f.IssuerKey(f.EdPub), f.IssuerKey(f.ESPub)}
	for _, s := range []*verifiertest.DCCSigner{g.de, g.at, g.fr} {
		k, err := verifier.DCCSignerKey(s.Cert, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	keys = append(keys, extra...)
	ks, err := f.Roots().ParseKeySet(f.SignKeySet(t, 2, keys...))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Verifier.InstallKeySet(ks); err != nil {
		t.Fatal(err)
	}
	p, err := verifiertest.ParsePolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	f.SetPolicy(t, *p)
	return g
}

// dccCase issues a certificate of the signer pick chooses, with entry,
// issued a day before Epoch and valid a year.
func dccCase(policy string, pick func(*dccGate) (*verifiertest.DCCSigner, string), entry func() map[string]any) func(t *testing.T, f *verifiertest.Fixture) string {
	return dccCaseWith(policy, pick, entry, nil, nil)
}

// dccCaseWith is dccCase with times (iat, exp: any CBOR number) and
// headers of the test's choosing.
func dccCaseWith(policy string, pick func(*dccGate) (*verifiertest.DCCSigner, string), entry func() map[string]any, times func() (any, any), h func(*dccGate) *verifiertest.DCCHeaders) func(t *testing.T, f *verifiertest.Fixture) string {
	return func(t *testing.T, f *verifiertest.Fixture) string {
		g := newDCCGate(t, f, policy)
		s, country := pick(g)
		iat := verifiertest.Epoch.Add(-24 * time.Hour).Unix()
		var ti, te any = iat, iat + 365*86400
		if times != nil {
			ti, te = times()
		}
		var hd *verifiertest.DCCHeaders
		if h != nil {
			hd = h(g)
		}
		return verifiertest.IssueDCC(t, s, verifiertest.DCCPayload(t, country, ti, te, entry()), hd)
	}
}

func de(g *dccGate) (*verifiertest.DCCSigner, string) { return g.de, "DE" }
func at(g *dccGate) (*verifiertest.DCCSigner, string) { return g.at, "AT" }
func fr(g *dccGate) (*verifiertest.DCCSigner, string) { return g.fr, "FR" }

func vacc(dose, doses int, date string) func() map[string]any {
	return func() map[string]any { return verifiertest.DCCVaccination(dose, doses, date) }
}

func test(tt, result string, ago time.Duration) func() map[string]any {
	return func() map[string]any { return verifiertest.DCCTest(tt, result, verifiertest.Epoch.Add(-ago)) }
}

func recovery(from, until string) func() map[string]any {
	return func() map[string]any { return verifiertest.DCCRecovery(from, until) }
}

const (
	naat        = "LP6464-4"
	antigen     = "LP217198-3"
	negative    = "260415000"
	positive    = "260373001"
	otherPolicy = `
profiles:
  dcc:
    accept: [vaccination]
    countries: [DE, FR]
`
)

// dccReasonCases cover every DCC type and every failure class; Epoch is
// 2026-06-01.
func dccReasonCases() []reasonCase {
	h := time.Hour
	return []reasonCase{
		{name: "dcc vaccination complete", setup: dccCase(dccPolicy, de, vacc(2, 2, "2026-03-01")), want: verifier.ReasonOK,
			check: func(t *testing.T, d verifier.Decision) {
				v := d.Voucher
				if v.Profile != "dcc" || v.Issuer != "DE" || v.DCC == nil || v.DCC.Type != "vaccination" || v.DCC.Dose != 2 || v.Name != "M* E*" {
					t.Errorf("mapped fields: %+v %+v", v, v.DCC)
				}
			}},
		{name: "dcc PS256 signer", setup: dccCase(dccPolicy, fr, vacc(3, 3, "2026-01-10")), want: verifier.ReasonOK},
		{name: "dcc float timestamps", setup: dccCaseWith(dccPolicy, de, vacc(2, 2, "2026-03-01"), func() (any, any) {
			iat := float64(verifiertest.Epoch.Add(-h).Unix()) + 0.5
			return iat, iat + 86400*30
		}, nil), want: verifier.ReasonOK},
		{name: "dcc vaccination incomplete", setup: dccCase(dccPolicy, de, vacc(1, 2, "2026-03-01")), want: verifier.ReasonDCCVaccinationIncomplete},
		{name: "dcc vaccination too recent", setup: dccCase(dccPolicy, de, vacc(2, 2, "2026-05-25")), want: verifier.ReasonDCCVaccinationTooRecent},
		{name: "dcc vaccination too old", setup: dccCase(dccPolicy, de, vacc(2, 2, "2025-04-01")), want: verifier.ReasonDCCVaccinationTooOld},
		{name: "dcc test negative", setup: dccCase(dccPolicy, de, test(naat, negative, 24*h)), want: verifier.ReasonOK},
		{name: "dcc antigen test negative", setup: dccCase(dccPolicy, de, test(antigen, negative, 10*h)), want: verifier.ReasonOK},
		{name: "dcc test positive", setup: dccCase(dccPolicy, de, test(naat, positive, 24*h)), want: verifier.ReasonTestPositive},
		{name: "dcc test result outside the value set", setup: dccCase(dccPolicy, de, test(naat, "NEGATIVO", 2*h)), want: verifier.ReasonDCCTestResult},
		{name: "dcc test too old", setup: dccCase(dccPolicy, de, test(naat, negative, 80*h)), want: verifier.ReasonTestTooOld},
		{name: "dcc test type not accepted", setup: dccCase(dccPolicy, de, test("LP0000-0", negative, 2*h)), want: verifier.ReasonTestKindNotAccepted},
		{name: "dcc recovery", setup: dccCase(dccPolicy, de, recovery("2026-05-01", "2026-10-01")), want: verifier.ReasonOK},
		{name: "dcc recovery not valid yet", setup: dccCase(dccPolicy, de, recovery("2026-06-10", "2026-12-01")), want: verifier.ReasonDCCRecoveryNotYetValid},
		{name: "dcc recovery no longer valid", setup: dccCase(dccPolicy, de, recovery("2025-11-01", "2026-05-01")), want: verifier.ReasonDCCRecoveryExpired},
		{name: "dcc expired", setup: dccCaseWith(dccPolicy, de, vacc(2, 2, "2026-03-01"), func() (any, any) {
			return verifiertest.Epoch.Add(-48 * h).Unix(), verifiertest.Epoch.Add(-h).Unix()
		}, nil), want: verifier.ReasonExpired},
		{name: "dcc signer not allowed for type", setup: dccCase(dccPolicy, at, test(naat, negative, 2*h)), want: verifier.ReasonDCCSignerType},
		{name: "dcc signer allowed for its type", setup: dccCase(dccPolicy, at, vacc(2, 2, "2026-03-01")), want: verifier.ReasonOK},
		{name: "dcc country not accepted", setup: dccCase(otherPolicy, at, vacc(2, 2, "2026-03-01")), want: verifier.ReasonIssuerNotAccepted},
		{name: "dcc type not accepted", setup: dccCase(otherPolicy, de, test(naat, negative, 2*h)), want: verifier.ReasonDCCTypeNotAccepted},
		{name: "dcc profile not in policy", setup: dccCase("min_doses: 0\n", de, vacc(2, 2, "2026-03-01")), want: verifier.ReasonProfileNotAccepted},
		{name: "dcc issuer claim differs from signer country", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			g := newDCCGate(t, f, dccPolicy)
			iat := verifiertest.Epoch.Add(-h).Unix()
			return verifiertest.IssueDCC(t, g.de, verifiertest.DCCPayload(t, "AT", iat, iat+86400, verifiertest.DCCVaccination(2, 2, "2026-03-01")), nil)
		}, want: verifier.ReasonIssuerMismatch},
		// Kid rules: the protected kid wins; an unprotected kid alone is a
		// hint like any other; a wrong one alone finds no key.
		{name: "dcc protected kid wins over a wrong unprotected one", setup: dccCaseWith(dccPolicy, de, vacc(2, 2, "2026-03-01"), nil,
			func(g *dccGate) *verifiertest.DCCHeaders {
				return &verifiertest.DCCHeaders{ProtectedKid: g.de.Kid, UnprotectedKid: g.fr.Kid}
			}), want: verifier.ReasonOK},
		{name: "dcc unprotected kid alone", setup: dccCaseWith(dccPolicy, de, vacc(2, 2, "2026-03-01"), nil,
			func(g *dccGate) *verifiertest.DCCHeaders { return &verifiertest.DCCHeaders{UnprotectedKid: g.de.Kid} }), want: verifier.ReasonOK},
		{name: "dcc wrong unprotected kid alone", setup: dccCaseWith(dccPolicy, de, vacc(2, 2, "2026-03-01"), nil,
			func(g *dccGate) *verifiertest.DCCHeaders {
				return &verifiertest.DCCHeaders{UnprotectedKid: []byte("nosuchk!")}
			}), want: verifier.ReasonUnknownKid},
		{name: "dcc right kid, other signer's key", setup: dccCaseWith(dccPolicy, de, vacc(2, 2, "2026-03-01"), nil,
			func(g *dccGate) *verifiertest.DCCHeaders { return &verifiertest.DCCHeaders{ProtectedKid: g.at.Kid} }), want: verifier.ReasonBadSignature},
		{name: "dcc signed with a Wicket key's kid", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			newDCCGate(t, f, dccPolicy)
			s := &verifiertest.DCCSigner{Key: verifiertest.ESKey(3), Kid: f.ESPub.Kid}
			iat := verifiertest.Epoch.Add(-h).Unix()
			return verifiertest.IssueDCC(t, s, verifiertest.DCCPayload(t, verifiertest.Issuer, iat, iat+86400, verifiertest.DCCVaccination(2, 2, "2026-03-01")), nil)
		}, want: verifier.ReasonUnknownKid},
		{name: "wicket voucher with an EdDSA-less alg", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			g := newDCCGate(t, f, dccPolicy)
			iat := verifiertest.Epoch.Add(-h).Unix()
			hc1 := verifiertest.IssueDCC(t, g.fr, verifiertest.DCCPayload(t, "FR", iat, iat+86400, verifiertest.DCCVaccination(2, 2, "2026-03-01")), nil)
			return decoder.Prefix + hc1[len("HC1:"):]
		}, want: verifier.ReasonUnsupportedAlg},
	}
}

// Several signers may share a kid (real trust lists have collisions):
// every key with the kid is tried.
func TestDCCSharedKid(t *testing.T) {
	f := verifiertest.New(t)
	other := verifiertest.NewDCCSigner(t, verifiertest.ESKey(12), "DE")
	de := verifiertest.NewDCCSigner(t, verifiertest.ESKey(10), "DE")
	// The other signer's key under de's kid, listed first.
	clash, err := verifier.DCCSignerKey(other.Cert, de.Kid, "")
	if err != nil {
		t.Fatal(err)
	}
	own, err := verifier.DCCSignerKey(de.Cert, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	newDCCGate(t, f, dccPolicy, clash, own)
	iat := verifiertest.Epoch.Add(-time.Hour).Unix()
	for _, s := range []*verifiertest.DCCSigner{de, {Key: other.Key, Kid: de.Kid}} {
		text := verifiertest.IssueDCC(t, s, verifiertest.DCCPayload(t, "DE", iat, iat+86400, verifiertest.DCCVaccination(2, 2, "2026-03-01")), nil)
		if d := f.Verifier.Verify([]byte(text)); !d.Allow {
			t.Errorf("kid %x shared by two keys: %v (%s)", de.Kid, d.Reason, d.Detail)
		}
	}
}

// Trust lists: JSON with base64 kids of any length, PEM bundles and DER.
func TestParseDCCSigners(t *testing.T) {
	de := verifiertest.NewDCCSigner(t, verifiertest.ESKey(10), "DE", verifiertest.OIDDCCTest, verifiertest.OIDDCCRecovery)
	fr := verifiertest.NewDCCSigner(t, verifiertest.RSAKey(), "FR")
	long := []byte("a-twelve-kid")
	list := map[string]any{"certificates": []any{
		map[string]any{"kid": base64.StdEncoding.EncodeToString(long), "country": "de", "rawData": base64.StdEncoding.EncodeToString(de.Cert)},
		map[string]any{"kid": base64.StdEncoding.EncodeToString(fr.Kid), "country": "FR", "rawData": base64.StdEncoding.EncodeToString(fr.Cert)},
	}}
	js, _ := json.Marshal(list)
	keys, skipped, err := verifier.ParseDCCSigners(js, verifiertest.Epoch)
	if err != nil || len(skipped) != 0 {
		t.Fatal(err)
	}
	if len(keys) != 2 || string(keys[0].Kid) != string(long) || keys[0].Issuer != "DE" || keys[1].Alg != decoder.AlgPS256 {
		t.Fatalf("trust list keys: %+v", keys)
	}
	if got := keys[0].Types; len(got) != 2 || got[0] != "t" || got[1] != "r" {
		t.Errorf("EKU types = %v; want [t r]", got)
	}
	if len(keys[1].Types) != 0 {
		t.Errorf("no EKU should mean no restriction, got %v", keys[1].Types)
	}
	// A 12-byte kid from a trust list goes through the key set and
	// verifies a certificate carrying it.
	f := verifiertest.New(t)
	newDCCGate(t, f, dccPolicy, keys[0])
	iat := verifiertest.Epoch.Add(-time.Hour).Unix()
	text := verifiertest.IssueDCC(t, &verifiertest.DCCSigner{Key: de.Key, Kid: long},
		verifiertest.DCCPayload(t, "DE", iat, iat+86400, verifiertest.DCCTest(naat, negative, verifiertest.Epoch.Add(-time.Hour))), nil)
	if d := f.Verifier.Verify([]byte(text)); !d.Allow {
		t.Errorf("12-byte kid: %v (%s)", d.Reason, d.Detail)
	}

	pemBundle := []byte("-----BEGIN CERTIFICATE-----\n" + base64.StdEncoding.EncodeToString(de.Cert) + "\n-----END CERTIFICATE-----\n")
	if keys, _, err := verifier.ParseDCCSigners(pemBundle, verifiertest.Epoch); err != nil || len(keys) != 1 || string(keys[0].Kid) != string(de.Kid) {
		t.Errorf("PEM: %v %v", keys, err)
	}
	if keys, _, err := verifier.ParseDCCSigners(fr.Cert, verifiertest.Epoch); err != nil || len(keys) != 1 || string(keys[0].Kid) != string(fr.Kid) {
		t.Errorf("DER: %v %v", keys, err)
	}
	if _, _, err := verifier.ParseDCCSigners([]byte("not a certificate"), verifiertest.Epoch); err == nil {
		t.Error("garbage accepted")
	}
}

// Per-issuer rules for Wicket vouchers: a neighbour's yellow codes pass
// where the policy says so, and a denied issuer is refused.
func TestIssuerRules(t *testing.T) {
	f := verifiertest.New(t)
	p, err := verifiertest.ParsePolicy([]byte("issuers:\n  " + verifiertest.Issuer + ": {colours: [green, yellow]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.SetPolicy(t, *p)
	c := f.Claims(decoder.KindDynamic)
	c.Voucher.Colour = decoder.ColourYellow
	if d := f.Verifier.Verify([]byte(f.Issue(t, f.Ed, c))); !d.Allow {
		t.Errorf("yellow from an issuer whose yellow passes: %v (%s)", d.Reason, d.Detail)
	}
	// A neighbour's codes need a test within 48 hours where the gate's
	// own rule needs none.
	p, err = verifiertest.ParsePolicy([]byte("issuers:\n  " + verifiertest.Issuer + ": {test_max_age: 48h}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.SetPolicy(t, *p)
	c = f.Claims(decoder.KindDynamic)
	c.Voucher.Test = nil
	if d := f.Verifier.Verify([]byte(f.Issue(t, f.Ed, c))); d.Reason != verifier.ReasonTestMissing {
		t.Errorf("neighbour without a test: %v", d.Reason)
	}
	for _, tc := range []struct {
		age  time.Duration
		want verifier.Reason
	}{{24 * time.Hour, verifier.ReasonOK}, {50 * time.Hour, verifier.ReasonTestTooOld}} {
		c = f.Claims(decoder.KindDynamic)
		c.Voucher.Test = &decoder.Test{Kind: decoder.TestNAAT, Result: decoder.ResultNegative, Sampled: verifiertest.Epoch.Add(-tc.age).Unix()}
		if d := f.Verifier.Verify([]byte(f.Issue(t, f.Ed, c))); d.Reason != tc.want {
			t.Errorf("neighbour with a test %v old: %v; want %v", tc.age, d.Reason, tc.want)
		}
	}
	p, err = verifiertest.ParsePolicy([]byte("issuers:\n  " + verifiertest.Issuer + ": {deny: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.SetPolicy(t, *p)
	if d := f.Verifier.Verify([]byte(f.Issue(t, f.Ed, f.Claims(decoder.KindDynamic)))); d.Reason != verifier.ReasonIssuerNotAccepted {
		t.Errorf("denied issuer: %v", d.Reason)
	}
	for _, bad := range []string{
		"issuers:\n  GX: {colours: [red]}\n",
		"profiles:\n  nosuch: {}\n",
		"profiles:\n  dcc: {accept: []}\n",
		"profiles:\n  dcc: {accept: [vaccination], test: {types: [pcr]}}\n",
	} {
		if _, err := verifiertest.ParsePolicy([]byte(bad)); err == nil {
			t.Errorf("policy %q accepted", bad)
		}
	}
}
