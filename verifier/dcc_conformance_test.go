package verifier_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"wicket/decoder"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// The DCC conformance vectors: certificates as member states issued them
// (each category the EU reference apps accept), EU revocation by each
// hash type, and the keyed subject pseudonym. Keys and certificates are
// made here; no third-party data. Epoch is 2026-06-01.

var with = verifiertest.DCCWith

// both puts the elements of b after those of a (same kind).
func both(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for kind, list := range a {
		out[kind] = append(append([]any{}, list.([]any)...), b[kind].([]any)...)
	}
	return out
}

const dccIat = 1780185600 // 2026-05-31T00:00:00Z, a day before Epoch

func TestDCCConformance(t *testing.T) {
	h := time.Hour
	sampled := verifiertest.Epoch.Add(-10 * h)
	vaccOK := verifiertest.DCCVaccination(2, 2, "2026-03-01")
	testOK := verifiertest.DCCTest(naat, negative, sampled)
	recOK := verifiertest.DCCRecovery("2026-05-01", "2026-10-01")
	ministry := "Ministry of Health, Labour and Social Affairs of the Republic of Somewhere (80B)"
	if len(ministry) != 80 {
		t.Fatalf("ministry name is %d bytes", len(ministry))
	}
	type vec struct {
		name    string
		iss     string
		entry   map[string]any
		headers *verifiertest.DCCHeaders
		want    verifier.Reason
		check   func(t *testing.T, d *verifier.DCC)
	}
	vecs := []vec{
		// Date-times as CBOR tag 0 (and tag 1), where the schema says
		// date-time.
		{name: "sc in tag 0", entry: with(testOK, "sc", cbor.Tag{Number: 0, Content: sampled.Format(time.RFC3339)}), want: verifier.ReasonOK,
			check: func(t *testing.T, d *verifier.DCC) {
				if !d.SampledAt.Equal(sampled) {
					t.Errorf("sampled at %v; want %v", d.SampledAt, sampled)
				}
			}},
		{name: "sc in tag 1", entry: with(testOK, "sc", cbor.Tag{Number: 1, Content: sampled.Unix()}), want: verifier.ReasonOK},
		{name: "dr in tag 0", entry: with(testOK, "dr", cbor.Tag{Number: 0, Content: sampled.Add(h).Format(time.RFC3339)}), want: verifier.ReasonOK},
		{name: "sc with an offset and fractions", entry: with(testOK, "sc", sampled.In(time.FixedZone("", 7200)).Format("2006-01-02T15:04:05.000-07:00")), want: verifier.ReasonOK},
		{name: "sc in 2 days: too old", entry: with(testOK, "sc", cbor.Tag{Number: 0, Content: verifiertest.Epoch.Add(-80 * h).Format(time.RFC3339)}), want: verifier.ReasonTestTooOld},
		// Date-times where the schema says date: the date as written.
		{name: "dt a date-time without offset", entry: with(vaccOK, "dt", "2026-03-09T00:00:00"), want: verifier.ReasonOK,
			check: func(t *testing.T, d *verifier.DCC) {
				if d.Date != "2026-03-09" {
					t.Errorf("date %q; want 2026-03-09", d.Date)
				}
			}},
		{name: "dt a date-time with offset", entry: with(vaccOK, "dt", "2026-03-18T22:54:00+02:00"), want: verifier.ReasonOK,
			check: func(t *testing.T, d *verifier.DCC) {
				if d.Date != "2026-03-18" {
					t.Errorf("date %q; want the date as written, 2026-03-18", d.Date)
				}
			}},
		{name: "df and du date-times", entry: with(with(recOK, "df", "2026-05-01T00:00:00Z"), "du", "2026-10-01T23:59:59+02:00"), want: verifier.ReasonOK,
			check: func(t *testing.T, d *verifier.DCC) {
				if d.ValidFrom != "2026-05-01" || d.ValidUntil != "2026-10-01" {
					t.Errorf("recovery %s to %s", d.ValidFrom, d.ValidUntil)
				}
			}},
		{name: "du a date-time in the past", entry: with(recOK, "du", "2026-05-30T12:00:00Z"), want: verifier.ReasonDCCRecoveryExpired},
		// iss: a ministry's name stands for no country; the signer's does.
		{name: "iss of 80 bytes", iss: ministry, entry: vaccOK, want: verifier.ReasonOK},
		{name: "iss another country code", iss: "FR", entry: vaccOK, want: verifier.ReasonIssuerMismatch},
		// Several entries of one kind: each checked, the first decides.
		{name: "two vaccinations", entry: both(vaccOK, verifiertest.DCCVaccination(1, 2, "2026-01-01")), want: verifier.ReasonOK,
			check: func(t *testing.T, d *verifier.DCC) {
				if d.Dose != 2 {
					t.Errorf("dose %d; want the first entry's 2", d.Dose)
				}
			}},
		{name: "two vaccinations, the first incomplete", entry: both(verifiertest.DCCVaccination(1, 2, "2026-01-01"), vaccOK), want: verifier.ReasonDCCVaccinationIncomplete},
		{name: "two tests", entry: both(testOK, testOK), want: verifier.ReasonOK},
		{name: "two recoveries", entry: both(recOK, recOK), want: verifier.ReasonOK},
		{name: "two tests, the second malformed", entry: both(testOK, with(testOK, "sc", "yesterday")), want: verifier.ReasonBadClaims},
		{name: "a vaccination and a test", entry: map[string]any{"v": vaccOK["v"], "t": testOK["t"]}, want: verifier.ReasonBadClaims},
		// Result values outside the value set: read, and refused.
		{name: "test result empty", entry: with(testOK, "tr", ""), want: verifier.ReasonDCCTestResult},
		{name: "test result NEGATIVO", entry: with(testOK, "tr", "NEGATIVO"), want: verifier.ReasonDCCTestResult},
		// dn and sd of 0.
		{name: "dose 0 of 2", entry: with(vaccOK, "dn", 0), want: verifier.ReasonDCCVaccinationIncomplete},
		{name: "dose 0 of 0", entry: with(with(vaccOK, "dn", 0), "sd", 0), want: verifier.ReasonDCCVaccinationIncomplete},
		{name: "dose 1 of 0", entry: with(with(vaccOK, "dn", 1), "sd", 0), want: verifier.ReasonOK},
		// The envelope: alg with the kid only in the unprotected header,
		// a CWT tag 61 around the COSE_Sign1, and both.
		{name: "alg and kid unprotected", entry: vaccOK, headers: &verifiertest.DCCHeaders{UnprotectedAlg: true}, want: verifier.ReasonOK},
		{name: "CWT tag 61", entry: vaccOK, headers: &verifiertest.DCCHeaders{CWTTag: true}, want: verifier.ReasonOK},
		{name: "CWT tag 61, alg unprotected", entry: vaccOK, headers: &verifiertest.DCCHeaders{CWTTag: true, UnprotectedAlg: true}, want: verifier.ReasonOK},
	}
	for _, v := range vecs {
		t.Run(v.name, func(t *testing.T) {
			f := verifiertest.New(t)
			g := newDCCGate(t, f, dccPolicy)
			iss := v.iss
			if iss == "" {
				iss = "DE"
			}
			h := v.headers
			if h != nil && h.UnprotectedAlg {
				hh := *h
				hh.UnprotectedKid = g.de.Kid
				h = &hh
			} else if h != nil {
				hh := *h
				hh.ProtectedKid = g.de.Kid
				h = &hh
			}
			text := verifiertest.IssueDCC(t, g.de, verifiertest.DCCPayload(t, iss, int64(dccIat), int64(dccIat+365*86400), v.entry), h)
			d := f.Verifier.Verify([]byte(text))
			if d.Reason != v.want {
				t.Fatalf("Verify(%s) = %v (%s); want %v", v.name, d.Reason, d.Detail, v.want)
			}
			if v.check != nil {
				v.check(t, d.Voucher.DCC)
			}
		})
	}
}

// A Wicket voucher keeps the strict envelope: no CWT tag, alg protected.
func TestWK1EnvelopeStaysStrict(t *testing.T) {
	f := verifiertest.New(t)
	text := f.Issue(t, f.Ed, f.Claims(decoder.KindDynamic))
	cose, err := decoder.Unwrap([]byte(text), decoder.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	tagged := decoder.Wrap(decoder.Prefix, append([]byte{0xd8, 61}, cose...))
	if d := f.Verifier.Verify([]byte(tagged)); d.Reason != verifier.ReasonBadCOSE {
		t.Errorf("WK1 in a CWT tag: %v; want bad_cose", d.Reason)
	}
	if _, err := decoder.ParseSign1DCC(append([]byte{0xd8, 61}, cose...)); err != nil {
		t.Errorf("the DCC envelope refuses the same tagged message: %v", err)
	}
}

// issued is a DCC's text and its COSE signature.
func issued(t *testing.T, s *verifiertest.DCCSigner, iss string, entry map[string]any) (string, []byte) {
	text := verifiertest.IssueDCC(t, s, verifiertest.DCCPayload(t, iss, int64(dccIat), int64(dccIat+365*86400), entry), nil)
	cose, err := decoder.Unwrap([]byte(text), "HC1:")
	if err != nil {
		t.Fatal(err)
	}
	env, err := decoder.ParseSign1DCC(cose)
	if err != nil {
		t.Fatal(err)
	}
	return text, env.Signature
}

func sha16(b []byte) []byte { s := sha256.Sum256(b); return s[:16] }

// EU revocation: each hash type, computed here from the definitions,
// revokes the certificate of the signer whose kid the list names and no
// other signer's.
func TestDCCRevocation(t *testing.T) {
	const ci = "URN:UVCI:01:DE:WICKET2026-03-01#V"
	for _, tc := range []struct {
		name string
		typ  string
		hash func(sig []byte, rsa bool) []byte
	}{
		{"UCI", "UCI", func([]byte, bool) []byte { return sha16([]byte(ci)) }},
		{"COUNTRYCODEUCI", "COUNTRYCODEUCI", func([]byte, bool) []byte { return sha16([]byte("DE" + ci)) }},
		{"SIGNATURE", "SIGNATURE", func(sig []byte, rsa bool) []byte {
			if rsa {
				return sha16(sig)
			}
			return sha16(sig[:32]) // ES256: r only
		}},
	} {
		for _, signer := range []string{"ES256", "PS256"} {
			t.Run(tc.name+" "+signer, func(t *testing.T) {
				f := verifiertest.New(t)
				g := newDCCGate(t, f, dccPolicy)
				s, iss := g.de, "DE"
				if signer == "PS256" {
					s, iss = g.fr, "FR"
				}
				text, sig := issued(t, s, iss, verifiertest.DCCVaccination(2, 2, "2026-03-01"))
				hash := tc.hash(sig, signer == "PS256")
				if tc.typ == "COUNTRYCODEUCI" {
					hash = sha16([]byte(iss + ci))
				}
				// The gateway's JSON batches: one for another signer's kid,
				// then one for this signer's.
				batch := func(kid []byte) *verifier.DCCRevocationBatch {
					js, _ := json.Marshal(map[string]any{
						"country": iss, "expires": verifiertest.Epoch.Add(90 * 24 * time.Hour), "kid": base64.StdEncoding.EncodeToString(kid),
						"hashType": tc.typ, "entries": []any{map[string]any{"hash": base64.StdEncoding.EncodeToString(hash)}},
					})
					b, err := verifier.ParseDCCRevocationBatch(js)
					if err != nil {
						t.Fatal(err)
					}
					return b
				}
				apply := func(version uint64, b *verifier.DCCRevocationBatch) {
					var es []verifier.Entry
					for _, id := range b.IDs() {
						es = append(es, verifier.Entry{Op: verifier.OpRevoke, Key: id, Time: verifiertest.Epoch.Unix(), Expires: b.Expires.Unix()})
					}
					f.ApplyBatch(t, verifier.Batch{Version: version, Base: version - 1, IssuedAt: verifiertest.Epoch.Add(-time.Minute), Entries: es})
				}
				apply(2, batch(g.at.Kid))
				if d := f.Verifier.Verify([]byte(text)); !d.Allow {
					t.Fatalf("revoked under another signer's kid: %v (%s)", d.Reason, d.Detail)
				}
				apply(3, batch(s.Kid))
				d := f.Verifier.Verify([]byte(text))
				if d.Reason != verifier.ReasonRevoked || !strings.Contains(d.Detail, tc.typ) {
					t.Fatalf("revoked by %s: %v (%s); want revoked", tc.typ, d.Reason, d.Detail)
				}
			})
		}
	}
	// A SIGNATURE entry over the whole ES256 signature is not the EU's
	// definition and revokes nothing.
	f := verifiertest.New(t)
	g := newDCCGate(t, f, dccPolicy)
	text, sig := issued(t, g.de, "DE", verifiertest.DCCVaccination(2, 2, "2026-03-01"))
	b := &verifier.DCCRevocationBatch{Kid: g.de.Kid, HashType: verifier.DCCHashSignature, Hashes: [][]byte{sha16(sig)}}
	f.ApplyBatch(t, verifier.Batch{Version: 2, Base: 1, IssuedAt: verifiertest.Epoch.Add(-time.Minute),
		Entries: []verifier.Entry{{Op: verifier.OpRevoke, Key: b.IDs()[0], Time: verifiertest.Epoch.Unix(), Expires: verifiertest.Epoch.Add(time.Hour).Unix()}}})
	if d := f.Verifier.Verify([]byte(text)); !d.Allow {
		t.Errorf("hash of r||s revoked an ES256 certificate: %v", d.Reason)
	}
}

func TestParseDCCRevocationBatch(t *testing.T) {
	kid := base64.StdEncoding.EncodeToString([]byte("12345678"))
	hash := base64.StdEncoding.EncodeToString(make([]byte, 16))
	for _, tc := range []struct {
		name, js string
		ok       bool
	}{
		{"good", `{"country":"AT","expires":"2026-12-31T00:00:00Z","kid":"` + kid + `","hashType":"UCI","entries":[{"hash":"` + hash + `"}]}`, true},
		{"hash type unknown", `{"country":"AT","expires":"2026-12-31T00:00:00Z","kid":"` + kid + `","hashType":"SHA1","entries":[]}`, false},
		{"kid not base64", `{"country":"AT","expires":"2026-12-31T00:00:00Z","kid":"*","hashType":"UCI","entries":[]}`, false},
		{"no expiry", `{"country":"AT","kid":"` + kid + `","hashType":"UCI","entries":[]}`, false},
		{"short hash", `{"country":"AT","expires":"2026-12-31T00:00:00Z","kid":"` + kid + `","hashType":"UCI","entries":[{"hash":"AAAA"}]}`, false},
		{"not JSON", `HC1:`, false},
	} {
		_, err := verifier.ParseDCCRevocationBatch([]byte(tc.js))
		if (err == nil) != tc.ok {
			t.Errorf("ParseDCCRevocationBatch(%s) = %v; want ok %v", tc.name, err, tc.ok)
		}
	}
}

// unkeyedDCCSubject is the pseudonym Wicket made before it was keyed.
func unkeyedDCCSubject(fnt, gnt, dob string) []byte {
	return sha16([]byte("wicket-dcc-subject\x00" + fnt + "\x00" + gnt + "\x00" + dob))
}

// A red override of a DCC holder applies; the override's subject on the
// broker gives nothing away: enumerating every birth date of 100 years
// for the known name finds nothing without the key (and, as a check
// that the search itself works, finds the date with it).
func TestDCCPseudonymKeyed(t *testing.T) {
	f := verifiertest.New(t)
	g := newDCCGate(t, f, dccPolicy)
	sub := verifier.DCCPseudonym(verifiertest.DCCPseudonymKey, "MUSTERMANN", "ERIKA", "1964-08-12")
	f.ApplyBatch(t, verifier.Batch{Version: 2, Base: 1, IssuedAt: verifiertest.Epoch.Add(-time.Minute), Entries: []verifier.Entry{{
		Op: verifier.OpColour, Key: sub, Time: verifiertest.Epoch.Add(-time.Hour).Unix(), Expires: verifiertest.Epoch.Add(time.Hour).Unix(), Colour: decoder.ColourRed,
	}}})
	text, _ := issued(t, g.de, "DE", verifiertest.DCCVaccination(2, 2, "2026-03-01"))
	// The certificate was issued a day before the override: it is red.
	if d := f.Verifier.Verify([]byte(text)); d.Reason != verifier.ReasonColourRed {
		t.Fatalf("red override of the holder: %v (%s)", d.Reason, d.Detail)
	}

	search := func(guess func(dob string) []byte) (string, int) {
		n := 0
		for day := time.Date(1926, 1, 1, 0, 0, 0, 0, time.UTC); day.Year() < 2026; day = day.AddDate(0, 0, 1) {
			n++
			dob := day.Format("2006-01-02")
			if string(guess(dob)) == string(sub) {
				return dob, n
			}
		}
		return "", n
	}
	for name, guess := range map[string]func(string) []byte{
		"unkeyed SHA-256 (the old pseudonym)": func(dob string) []byte { return unkeyedDCCSubject("MUSTERMANN", "ERIKA", dob) },
		"empty key":                           func(dob string) []byte { return verifier.DCCPseudonym(nil, "MUSTERMANN", "ERIKA", dob) },
		"another fleet's key": func(dob string) []byte {
			return verifier.DCCPseudonym([]byte(strings.Repeat("k", 32)), "MUSTERMANN", "ERIKA", dob)
		},
	} {
		if dob, n := search(guess); dob != "" {
			t.Errorf("%s: birth date %s recovered after %d guesses", name, dob, n)
		} else if n < 36500 {
			t.Errorf("%s: only %d dates tried", name, n)
		}
	}
	if dob, _ := search(func(dob string) []byte {
		return verifier.DCCPseudonym(verifiertest.DCCPseudonymKey, "MUSTERMANN", "ERIKA", dob)
	}); dob != "1964-08-12" {
		t.Errorf("with the key the search finds %q; want 1964-08-12", dob)
	}
}

// Without the fleet's pseudonym key a gate denies DCCs (fail secure: the
// holder's overrides could not be applied), and a short key is refused.
func TestDCCNeedsPseudonymKey(t *testing.T) {
	f := verifiertest.New(t)
	g := newDCCGate(t, f, dccPolicy)
	v, err := verifier.New(f.TClock, f.Status, &f.Policy)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.InstallKeySet(f.Verifier.KeySet()); err != nil {
		t.Fatal(err)
	}
	text, _ := issued(t, g.de, "DE", verifiertest.DCCVaccination(2, 2, "2026-03-01"))
	if d := v.Verify([]byte(text)); d.Reason != verifier.ReasonNoTrustData {
		t.Errorf("no pseudonym key: %v; want no_trust_data", d.Reason)
	}
	if err := v.SetDCCPseudonymKey(make([]byte, 16)); err == nil {
		t.Error("a 16-byte key was taken")
	}
	if err := v.SetDCCPseudonymKey(verifiertest.DCCPseudonymKey); err != nil {
		t.Fatal(err)
	}
	if d := v.Verify([]byte(text)); !d.Allow {
		t.Errorf("with the key: %v (%s)", d.Reason, d.Detail)
	}
}

// expiredSigner is a P-256 signer certificate of country whose window
// ended a day before Epoch.
func expiredSigner(t *testing.T, country string) []byte {
	key := verifiertest.ESKey(13)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{Country: []string{country}, CommonName: "DSC " + country},
		NotBefore:    verifiertest.Epoch.Add(-400 * 24 * time.Hour),
		NotAfter:     verifiertest.Epoch.Add(-24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// A trust list with unusable entries: every usable signer is taken, each
// other one is reported with its reason, and a signer certificate
// without a country takes the list's.
func TestDCCTrustListPartial(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	de := verifiertest.NewDCCSigner(t, verifiertest.ESKey(10), "DE")
	noC := verifiertest.NewDCCSigner(t, verifiertest.ESKey(12), "")
	b64 := base64.StdEncoding.EncodeToString
	entry := func(kid []byte, country string, der []byte) map[string]any {
		return map[string]any{"kid": b64(kid), "country": country, "rawData": b64(der)}
	}
	list, _ := json.Marshal(map[string]any{"certificates": []any{
		entry(de.Kid, "DE", de.Cert),
		entry([]byte("p384-kid"), "IT", verifiertest.NewDCCSigner(t, p384, "IT").Cert),
		entry([]byte("ed-kid!!"), "NL", verifiertest.NewDCCSigner(t, edKey, "NL").Cert),
		entry([]byte("old-kid!"), "BE", expiredSigner(t, "BE")),
		map[string]any{"kid": b64([]byte("bad-der!")), "country": "PL", "rawData": b64([]byte("not DER"))},
		map[string]any{"kid": "*", "country": "PL", "rawData": b64(de.Cert)},
		entry(noC.Kid, "lu", noC.Cert),
	}})
	keys, skipped, err := verifier.ParseDCCSigners(list, verifiertest.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].Issuer != "DE" || keys[1].Issuer != "LU" {
		t.Fatalf("taken: %+v; want DE and LU", keys)
	}
	want := []string{"P-384", "ed25519", "expired", "unparseable", "kid is not base64"}
	if len(skipped) != len(want) {
		t.Fatalf("skipped %d: %+v; want %d", len(skipped), skipped, len(want))
	}
	for i, w := range want {
		if !strings.Contains(skipped[i].Reason, w) {
			t.Errorf("skipped[%d] = %s: %s; want a reason with %q", i, skipped[i].Entry, skipped[i].Reason, w)
		}
	}
	// The gateway's form: a bare array, signers marked DSC.
	gw, _ := json.Marshal([]any{
		map[string]any{"kid": b64(de.Kid), "country": "DE", "rawData": b64(de.Cert), "certificateType": "DSC"},
		map[string]any{"kid": b64([]byte("csca-kid")), "country": "DE", "rawData": b64(de.Cert), "certificateType": "CSCA"},
	})
	keys, skipped, err = verifier.ParseDCCSigners(gw, verifiertest.Epoch)
	if err != nil || len(keys) != 1 || len(skipped) != 1 || !strings.Contains(skipped[0].Reason, "CSCA") {
		t.Errorf("gateway trust list: %v, %d keys, skipped %+v", err, len(keys), skipped)
	}
	// The same certificate without a list's country is refused alone.
	if _, skipped, err := verifier.ParseDCCSigners(noC.Cert, verifiertest.Epoch); err == nil || len(skipped) != 1 || !strings.Contains(skipped[0].Reason, "country") {
		t.Errorf("no country anywhere: %v %+v", err, skipped)
	}
}

// TestDGCTestdata runs the public EU DCC conformance cases (the
// dgc-testdata repository, checked out by the operator; none of it is in
// this repository) through the HC1 profile and prints how often Wicket
// agrees. It runs only with WICKET_DGC_TESTDATA set to the checkout:
//
//	scripts/dcc-conformance.sh /path/to/dgc-testdata
//
// Each case's TESTCTX.CERTIFICATE becomes the only signer (kid: the first
// 8 bytes of its SHA-256, country: its subject's C, else the iss claim, as
// a trust list would give it; a signer the import refuses counts as a
// signature not verified), the clock is VALIDATIONCLOCK (else the certificate's iat), and
// the policy accepts every type with no content limits, so that what is
// measured is the envelope, the signature and the claims mapping:
//   - signature: passing the signature check agrees with EXPECTEDVERIFY;
//   - decision: of the cases expected to verify, how many get past the
//     claims mapping (not bad_claims or bad_cbor) to a decision;
//   - key usage: the signer's extended key usage verdict agrees with
//     EXPECTEDKEYUSAGE;
//   - claims: of the cases whose JSON is expected schema-invalid, how many
//     the mapping refuses (most break only value sets, which the EU apps
//     leave to business rules, and so does Wicket: its content rules).
func TestDGCTestdata(t *testing.T) {
	root := os.Getenv("WICKET_DGC_TESTDATA")
	if root == "" {
		t.Skip("WICKET_DGC_TESTDATA is not set (scripts/dcc-conformance.sh)")
	}
	f := verifiertest.New(t)
	p, err := verifiertest.ParsePolicy([]byte(`
max_status_age: 0s
max_key_set_age: 87600h
profiles:
  dcc:
    accept: [vaccination, test, recovery]
    vaccination: {complete: false}
    test: {max_age: 876000h}
`))
	if err != nil {
		t.Fatal(err)
	}
	type tally struct{ n, ok int }
	var sig, decided, refused, usage tally
	var noKey int
	reasons := map[verifier.Reason]int{}
	var misses []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		var c struct {
			Prefix string `json:"PREFIX"`
			Ctx    struct {
				Certificate string `json:"CERTIFICATE"`
				Clock       string `json:"VALIDATIONCLOCK"`
			} `json:"TESTCTX"`
			Want map[string]bool `json:"EXPECTEDRESULTS"`
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if json.Unmarshal(raw, &c) != nil || !strings.HasPrefix(c.Prefix, "HC1:") || c.Want == nil {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		der, err := base64.StdEncoding.DecodeString(c.Ctx.Certificate)
		if err != nil {
			noKey++
			return nil
		}
		key, err := verifier.DCCSignerKey(der, nil, "")
		if err != nil {
			// A trust list gives the country of a certificate without one.
			country := issClaim(c.Prefix)
			if country == "" {
				country = "XX" // the case's text is broken: any country
			}
			key, err = verifier.DCCSignerKey(der, nil, country)
		}
		if err != nil {
			noKey++
			t.Logf("%s: signer not usable: %v", rel, err)
			if want, ok := c.Want["EXPECTEDVERIFY"]; ok {
				sig.n++
				if want {
					decided.n++
					misses = append(misses, fmt.Sprintf("signature %s: signer not usable; EU: verify true", rel))
				} else {
					sig.ok++
				}
			}
			return nil
		}
		now, err := time.Parse(time.RFC3339Nano, c.Ctx.Clock)
		if err != nil {
			// Some cases give the clock without an offset: UTC.
			now, err = time.Parse("2006-01-02T15:04:05.999999999", c.Ctx.Clock)
		}
		if err != nil {
			now = key.NotBefore.Add(24 * time.Hour)
		}
		d0 := verifyAt(t, f, p, key, now, c.Prefix)
		if err != nil && d0.Voucher != nil {
			d0 = verifyAt(t, f, p, key, d0.Voucher.IssuedAt.Add(time.Minute), c.Prefix)
		}
		r := d0.Reason
		reasons[r]++
		if os.Getenv("WICKET_DGC_VERBOSE") != "" {
			t.Logf("case %s: %s (%s)", rel, r, d0.Detail)
		}
		passed := signatureChecked(d0)
		if want, ok := c.Want["EXPECTEDVERIFY"]; ok {
			sig.n++
			if passed == want {
				sig.ok++
			} else {
				misses = append(misses, fmt.Sprintf("signature %s: %s (%s); EU: verify %v", rel, r, d0.Detail, want))
			}
			if want {
				decided.n++
				if passed && r != verifier.ReasonBadClaims && r != verifier.ReasonBadCBOR {
					decided.ok++
				} else if passed {
					misses = append(misses, fmt.Sprintf("decision %s: %s (%s)", rel, r, d0.Detail))
				}
			}
		}
		if want, ok := c.Want["EXPECTEDKEYUSAGE"]; ok && passed {
			usage.n++
			if (r != verifier.ReasonDCCSignerType) == want {
				usage.ok++
			} else {
				misses = append(misses, fmt.Sprintf("key usage %s: %s; EU: key usage %v", rel, r, want))
			}
		}
		if valid, ok := c.Want["EXPECTEDSCHEMAVALIDATION"]; ok && !valid && passed {
			refused.n++
			if r == verifier.ReasonBadClaims || r == verifier.ReasonBadCBOR {
				refused.ok++
			} else {
				misses = append(misses, fmt.Sprintf("claims %s: %s; EU: schema-invalid", rel, r))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(misses)
	for _, m := range misses {
		t.Log(m)
	}
	var rs []string
	for r, n := range reasons {
		rs = append(rs, fmt.Sprintf("%s %d", r, n))
	}
	slices.Sort(rs)
	fmt.Printf("dgc-testdata: %d cases with EXPECTEDVERIFY, %d signers unusable\n", sig.n, noKey)
	fmt.Printf("signature verdict agrees:          %d of %d\n", sig.ok, sig.n)
	fmt.Printf("expected valid, reach a decision:  %d of %d\n", decided.ok, decided.n)
	fmt.Printf("key usage (EKU) verdict agrees:    %d of %d\n", usage.ok, usage.n)
	fmt.Printf("schema-invalid, refused as claims: %d of %d\n", refused.ok, refused.n)
	fmt.Printf("reasons: %s\n", strings.Join(rs, ", "))
}

// issClaim is the CWT iss claim of an HC1 text, or "".
func issClaim(text string) string {
	cose, err := decoder.Unwrap([]byte(text), "HC1:")
	if err != nil {
		return ""
	}
	env, err := decoder.ParseSign1DCC(cose)
	if err != nil {
		return ""
	}
	var cwt map[int]any
	if cbor.Unmarshal(env.Payload, &cwt) != nil {
		return ""
	}
	iss, _ := cwt[1].(string)
	return iss
}

// verifyAt verifies text at now with key as the only signer.
func verifyAt(t *testing.T, f *verifiertest.Fixture, p *verifier.Policy, key verifier.IssuerKey, now time.Time, text string) verifier.Decision {
	v, err := verifier.New(verifier.NewTrustedClock(verifier.FixedClock(now), time.Time{}), verifier.NewMemStatus(), p)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetDCCPseudonymKey(verifiertest.DCCPseudonymKey); err != nil {
		t.Fatal(err)
	}
	doc, err := verifier.KeySetSpec{Version: 1, IssuedAt: now.Add(-time.Hour), Keys: []verifier.IssuerKey{key}}.Sign(f.Root)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := f.Roots().ParseKeySet(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.InstallKeySet(ks); err != nil {
		t.Fatal(err)
	}
	return v.Verify([]byte(text))
}

// signatureChecked: the decision got past the signature check (the
// envelope read, a key found, the signature good).
func signatureChecked(d verifier.Decision) bool {
	switch d.Reason {
	case verifier.ReasonEmpty, verifier.ReasonTooLong, verifier.ReasonBadPrefix, verifier.ReasonBadBase45,
		verifier.ReasonBadZlib, verifier.ReasonTooLarge, verifier.ReasonBadCOSE, verifier.ReasonAlgNotProtected,
		verifier.ReasonUnsupportedAlg, verifier.ReasonUnknownKid, verifier.ReasonBadSignature,
		verifier.ReasonNoTrustData, verifier.ReasonClockUntrusted, verifier.ReasonTrustDataStale:
		return false
	case verifier.ReasonBadCBOR:
		return strings.HasPrefix(d.Detail, "dcc:")
	}
	return true
}
