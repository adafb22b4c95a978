package corpus

import (
	"crypto/ecdsa"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"

	"wicket/decoder"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// dccCWT is the CWT of a certificate of signer country DE issued a day
// ago and valid a year, without its hcert claim.
func dccCWT() omap {
	iat := at(-day)
	return omap{
		{cint(1), tstr("DE")},
		{cint(4), cint(iat + 365*86400)},
		{cint(6), cint(iat)},
	}
}

func dccVacc(dose, doses int, date string) map[string]any {
	return verifiertest.DCCVaccination(dose, doses, date)
}

func dccTestEntry(tt, result string, sampled time.Time) map[string]any {
	return verifiertest.DCCTest(tt, result, sampled)
}

func dccRecovery(from, until string) map[string]any { return verifiertest.DCCRecovery(from, until) }

// hcert is the certificate (claim -260 → 1) holding the entries given.
func hcert(entries map[string]any) map[string]any {
	c := map[string]any{
		"ver": "1.3.0",
		"nam": map[string]any{"fn": "Mustermann", "fnt": "MUSTERMANN", "gn": "Erika", "gnt": "ERIKA"},
		"dob": "1964-08-12",
	}
	for k, v := range entries {
		c[k] = v
	}
	return c
}

func canon(v any) []byte {
	b, err := decoder.CanonicalMarshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// dccPayload is cwt with the hcert claim of a certificate holding entry.
func (g *gen) dccPayload(cwt omap, entry map[string]any) []byte {
	return cwt.set(-260, cmapRaw(cint(1), canon(hcert(entry)))).enc()
}

// dccCOSE signs payload as signer s (ES256, its kid protected).
func (g *gen) dccCOSE(s *verifiertest.DCCSigner, payload []byte) []byte {
	p := prot(algES256, s.Kid)
	return sign1(p, emptyMap, payload, verifiertest.SignES256(s.Key.(*ecdsa.PrivateKey), tbs(p, payload)))
}

// entryWith is a vaccination entry with one field changed.
func entryWith(kind string, e map[string]any, k string, v any) map[string]any {
	return verifiertest.DCCWith(map[string]any{kind: e[kind]}, k, v)
}

func (g *gen) dccCases() {
	D := LayerDCC
	vacc := dccVacc(2, 2, "2026-03-01")
	test := dccTestEntry("LP6464-4", "260415000", now.Add(-10*hour))
	rec := dccRecovery("2026-05-01", "2026-10-01")
	good := g.dccPayload(dccCWT(), vacc)
	add := func(name string, cose []byte, want verifier.Reason) { g.addText(D, name, hc(cose), want) }
	signed := func(name string, payload []byte, want verifier.Reason) { add(name, g.dccCOSE(g.de, payload), want) }
	esDE := func(p, payload []byte) []byte {
		return sign1(p, emptyMap, payload, esSig(verifiertest.SeedDCCDE, p, payload))
	}

	// Envelope and algorithm.
	pd := prot(algES256, g.de.Kid)
	pEd := prot(algEdDSA, g.de.Kid)
	add("EdDSA certificate", sign1(pEd, emptyMap, good, edSig(2, pEd, good)), verifier.ReasonUnsupportedAlg)
	add("EdDSA certificate with the Wicket key id", g.edCOSE(good), verifier.ReasonUnsupportedAlg)
	for _, a := range []int64{-35, -36, -257, -38, 0, -9} {
		add(fmt.Sprintf("certificate with alg %d", a), esDE(prot(a, g.de.Kid), good), verifier.ReasonUnsupportedAlg)
	}
	add("PS256 header over an ES256 signature", esDE(prot(algPS256, g.de.Kid), good), verifier.ReasonBadSignature)
	add("no alg", esDE(cmapRaw(cint(4), bstr(g.de.Kid)), emptyMap), verifier.ReasonAlgNotProtected)
	// Some issuers put alg (with the kid) in the unprotected header; the
	// DCC profile takes it there when the protected header has none, never
	// in both (docs/profiles.md).
	pk := cmapRaw(cint(4), bstr(g.de.Kid))
	unprotAlg := cmapRaw(cint(1), cint(algES256))
	g.control("EU DCC with alg in the unprotected header", hc(sign1(pk, unprotAlg, good, esSig(verifiertest.SeedDCCDE, pk, good))))
	add("alg in both headers", sign1(pd, unprotAlg, good, esSig(verifiertest.SeedDCCDE, pd, good)), verifier.ReasonAlgNotProtected)
	add("alg PS256 unprotected over an ES256 signature", sign1(pk, cmapRaw(cint(1), cint(algPS256)), good, esSig(verifiertest.SeedDCCDE, pk, good)), verifier.ReasonBadSignature)
	add("crit header", esDE(cmapRaw(cint(1), cint(algES256), cint(2), arr(cint(4)), cint(4), bstr(g.de.Kid)), emptyMap), verifier.ReasonBadCOSE)
	add("kid of 33 bytes", esDE(prot(algES256, []byte(strings.Repeat("k", 33))), emptyMap), verifier.ReasonBadCOSE)
	valid := g.dccCOSE(g.de, good)
	// Some issuers write the COSE message without tag 18; the DCC profile
	// takes it (docs/profiles.md).
	g.control("untagged EU DCC", hc(valid[1:]))
	g.control("EU DCC in a CWT tag 61", hc(tag(61, valid)))
	add("certificate tagged COSE_Sign", tag(98, valid[1:]), verifier.ReasonBadCOSE)
	add("detached certificate payload", raw(bstr(prot(algES256, g.de.Kid)), emptyMap, cnull, bstr(make([]byte, 64))), verifier.ReasonBadCOSE)
	add("indefinite-length certificate array", tag(18, indefArr(bstr(prot(algES256, g.de.Kid)), emptyMap, bstr(good), bstr(make([]byte, 64)))), verifier.ReasonBadCBOR)
	g.addText(D, "certificate bomb", "HC1:"+decoder.Base45Encode(deflate(make([]byte, 1<<20))), verifier.ReasonTooLarge)
	g.addText(D, "certificate with a bad zlib checksum", "HC1:"+decoder.Base45Encode(flipBit(deflate(valid), len(deflate(valid))*8-1)), verifier.ReasonBadZlib)
	g.addText(D, "certificate with lower-case base45", "HC1:"+strings.ToLower(hc(valid)[4:]), verifier.ReasonBadBase45)

	// Keys and signatures.
	sig := verifiertest.SignES256(g.de.Key.(*ecdsa.PrivateKey), tbs(pd, good))
	for i := range 8 {
		bit := g.rng.IntN(512)
		add(fmt.Sprintf("certificate signature bit %d flipped (%d)", bit, i), sign1(pd, emptyMap, good, flipBit(sig, bit)), verifier.ReasonBadSignature)
	}
	add("certificate signature empty", sign1(pd, emptyMap, good, nil), verifier.ReasonBadSignature)
	add("certificate signature in ASN.1 DER", sign1(pd, emptyMap, good, derSig(sig)), verifier.ReasonBadSignature)
	add("DE kid, signed by AT", sign1(pd, emptyMap, good, esSig(verifiertest.SeedDCCAT, pd, good)), verifier.ReasonBadSignature)
	add("DE kid, signed by a key in no key set", sign1(pd, emptyMap, good, esSig(verifiertest.SeedStrangerESKey, pd, good)), verifier.ReasonBadSignature)
	pw := prot(algES256, g.esKid)
	add("signed by the Wicket ES256 key", sign1(pw, emptyMap, good, esSig(3, pw, good)), verifier.ReasonUnknownKid)
	add("certificate without a kid", esDE(cmapRaw(cint(1), cint(algES256)), emptyMap), verifier.ReasonUnknownKid)
	add("certificate with an unknown kid", esDE(prot(algES256, []byte("DEADBEEF")), emptyMap), verifier.ReasonUnknownKid)
	add("certificate payload red-flagged after signing", sign1(pd, emptyMap, g.dccPayload(dccCWT(), dccVacc(1, 2, "2026-03-01")), sig), verifier.ReasonBadSignature)

	// The hcert claim.
	bad := func(name string, payload []byte) { signed(name, payload, verifier.ReasonBadClaims) }
	bad("no hcert claim", dccCWT().enc())
	bad("hcert without key 1", dccCWT().set(-260, cmapRaw(cint(2), canon(hcert(vacc)))).enc())
	bad("hcert claim empty", dccCWT().set(-260, emptyMap).enc())
	bad("certificate empty", dccCWT().set(-260, cmapRaw(cint(1), emptyMap)).enc())
	for _, ver := range []string{"", "2.0.0", "1", "0.9.0", "v1.3.0", "10.0"} {
		c := hcert(vacc)
		c["ver"] = ver
		bad(fmt.Sprintf("schema version %q", ver), dccCWT().set(-260, cmapRaw(cint(1), canon(c))).enc())
	}
	noName := hcert(vacc)
	delete(noName, "nam")
	bad("no name", dccCWT().set(-260, cmapRaw(cint(1), canon(noName))).enc())
	onlyFn := hcert(vacc)
	onlyFn["nam"] = map[string]any{"fn": "Mustermann", "gn": "Erika"}
	bad("no standardised name", dccCWT().set(-260, cmapRaw(cint(1), canon(onlyFn))).enc())
	merge := func(es ...map[string]any) map[string]any {
		m := map[string]any{}
		for _, e := range es {
			for k, v := range e {
				if old, ok := m[k]; ok {
					v = append(old.([]any), v.([]any)...)
				}
				m[k] = v
			}
		}
		return m
	}
	two := func(name string, es ...map[string]any) { bad(name, g.dccPayload(dccCWT(), merge(es...))) }
	two("vaccination and test entries", vacc, test)
	two("vaccination and recovery entries", vacc, rec)
	two("test and recovery entries", test, rec)
	two("all three entries", vacc, test, rec)
	// Several entries of one kind are taken; each is checked and the
	// decision reads the first, as the EU business rules do.
	signed("two vaccinations, the first incomplete", g.dccPayload(dccCWT(), merge(dccVacc(1, 2, "2026-01-01"), vacc)), verifier.ReasonDCCVaccinationIncomplete)
	two("two tests, the second without a sample time", test, entryWith("t", test, "sc", ""))
	two("no entry")
	bad("empty vaccination list", g.dccPayload(dccCWT(), map[string]any{"v": []any{}}))
	for _, c := range []struct {
		name string
		k    string
		v    any
	}{
		{"dose 11", "dn", 11}, {"dose -1", "dn", -1}, {"series of 11", "sd", 11},
		{"date 30 February", "dt", "2026-02-30"}, {"date empty", "dt", ""}, {"date in German order", "dt", "01.03.2026"},
		{"date with a time that is none", "dt", "2026-03-01Tnoon"}, {"no date", "dt", nil},
		{"no certificate id", "ci", nil}, {"empty certificate id", "ci", ""}, {"certificate id of 81 characters", "ci", strings.Repeat("U", 81)},
	} {
		bad("vaccination "+c.name, g.dccPayload(dccCWT(), entryWith("v", vacc, c.k, c.v)))
	}
	for _, c := range []struct {
		name string
		k    string
		v    any
	}{
		{"sample time empty", "sc", ""}, {"sample time a date", "sc", "2026-05-31"}, {"sample time in words", "sc", "yesterday"},
		{"no certificate id", "ci", nil},
		{"sample time in tag 32", "sc", cbor.Tag{Number: 32, Content: "2026-05-31T08:00:00Z"}},
	} {
		bad("test "+c.name, g.dccPayload(dccCWT(), entryWith("t", test, c.k, c.v)))
	}
	for _, c := range []struct {
		name string
		k    string
		v    any
	}{
		{"valid-from with slashes", "df", "2026/05/01"}, {"valid-until empty", "du", ""}, {"no valid-from", "df", nil},
		{"certificate id of 200 characters", "ci", strings.Repeat("R", 200)},
	} {
		bad("recovery "+c.name, g.dccPayload(dccCWT(), entryWith("r", rec, c.k, c.v)))
	}
	bad("iss of 256 characters", g.dccPayload(dccCWT().set(1, tstr(strings.Repeat("D", 256))), vacc))
	// A dose 0 is no vaccination; a result outside the value set is not
	// a negative test (the EU business rules refuse both too).
	signed("vaccination dose 0", g.dccPayload(dccCWT(), entryWith("v", vacc, "dn", 0)), verifier.ReasonDCCVaccinationIncomplete)
	for _, tr := range []string{"", "positive", "260415001", "NEGATIVO"} {
		signed(fmt.Sprintf("test result %q", tr), g.dccPayload(dccCWT(), entryWith("t", test, "tr", tr)), verifier.ReasonDCCTestResult)
	}
	bad("no iat", g.dccPayload(dccCWT().del(6), vacc))
	bad("no exp", g.dccPayload(dccCWT().del(4), vacc))
	bad("exp equal to iat", g.dccPayload(dccCWT().set(4, cint(at(-day))), vacc))
	bad("exp before iat", g.dccPayload(dccCWT().set(4, cint(at(-2*day))), vacc))
	bad("iat negative", g.dccPayload(dccCWT().set(6, cint(-1)), vacc))
	bad("iat -0.0", g.dccPayload(dccCWT().set(6, f16(0x8000)), vacc))
	bad("iat the smallest float", g.dccPayload(dccCWT().set(6, f64(math.SmallestNonzeroFloat64)), vacc))
	// Float times that are no time at all.
	for _, c := range []struct {
		name string
		key  int64
		v    []byte
	}{
		{"iat NaN (half)", 6, f16(0x7e00)}, {"iat NaN (single)", 6, f32(float32(math.NaN()))}, {"iat NaN (double)", 6, f64(math.NaN())},
		{"iat NaN with a payload", 6, f64(math.Float64frombits(0x7ff0000000000001))},
		{"iat +Inf (half)", 6, f16(0x7c00)}, {"iat +Inf (double)", 6, f64(math.Inf(1))}, {"iat -Inf (half)", 6, f16(0xfc00)},
		{"exp NaN (half)", 4, f16(0x7e00)}, {"exp NaN (double)", 4, f64(math.NaN())}, {"exp +Inf (single)", 4, f32(float32(math.Inf(1)))},
		{"exp -Inf (double)", 4, f64(math.Inf(-1))},
		{"iat 1e300", 6, f64(1e300)}, {"iat -1.5", 6, f64(-1.5)}, {"exp 1e19", 4, f64(1e19)}, {"exp after year 9999", 4, f64(253402300800)},
		{"iat as text", 6, tstr("2026-05-31T08:00:00Z")}, {"exp as bytes", 4, bstr([]byte{0x6a})},
	} {
		g.add(D, c.name, []byte(hc(g.dccCOSE(g.de, g.dccPayload(dccCWT().set(c.key, c.v), vacc)))), verifier.ReasonBadClaims)
	}
	wrongType := func(name string, payload []byte) {
		g.add(D, name, []byte(hc(g.dccCOSE(g.de, payload))), verifier.ReasonBadClaims)
	}
	wrongType("hcert claim an array", dccCWT().set(-260, arr(canon(hcert(vacc)))).enc())
	wrongType("dose number as text", g.dccPayload(dccCWT(), entryWith("v", vacc, "dn", "2")))
	wrongType("schema version as a number", dccCWT().set(-260, cmapRaw(cint(1), canon(withField(hcert(vacc), "ver", 1.3)))).enc())
	wrongType("iss as a number", g.dccPayload(dccCWT().set(1, cint(276)), vacc))
	// Strict CBOR: duplicates, depth, sizes, UTF-8.
	cb := func(name string, payload []byte) { signed(name, payload, verifier.ReasonBadCBOR) }
	cb("duplicate iss", g.dccPayload(dccCWT().plus(cint(1), tstr("FR")), vacc))
	cb("duplicate exp", g.dccPayload(dccCWT().plus(cint(4), cint(at(3650*day))), vacc))
	hc1 := canon(hcert(vacc))
	cb("duplicate hcert claim", dccCWT().set(-260, cmapRaw(cint(1), hc1)).plus(cint(-260), cmapRaw(cint(1), hc1)).enc())
	cb("duplicate certificate in the hcert claim", dccCWT().set(-260, cmapRaw(cint(1), hc1, cint(1), hc1)).enc())
	cb("duplicate ver", dccCWT().set(-260, cmapRaw(cint(1), withDupKey(hc1, tstr("ver"), tstr("1.0.0")))).enc())
	cb("unknown field nested 13 deep", dccCWT().plus(cint(-1000), nest(13, cint(0))).enc())
	cb("unknown field nested 13 maps deep", dccCWT().plus(cint(-1000), nestMaps(13, cint(0))).enc())
	cb("unknown field of 65 elements", dccCWT().plus(cint(-1000), arr(repeatItem(cint(0), 65)...)).enc())
	cb("unknown field of 65 pairs", dccCWT().plus(cint(-1000), cmapRaw(manyPairs(65)...)).enc())
	cb("array claiming 2^32 elements", dccCWT().plus(cint(-1000), head(4, 1<<32)).enc())
	cb("payload cut short", good[:len(good)-1])
	cb("payload with a byte after it", cat(good, []byte{0}))
	cb("iss not UTF-8", g.dccPayload(dccCWT().set(1, tstr("D\xff")), vacc))
	cb("payload empty", nil)
	cb("test sample time in tag 1 as text", g.dccPayload(dccCWT(), entryWith("t", test, "sc", cbor.Tag{Number: 1, Content: "2026-05-31"})))

	// Admission: signer types, issuer, validity.
	byAT := func(name string, cwt omap, entry map[string]any, want verifier.Reason) {
		add(name, g.dccCOSE(g.at, g.dccPayload(cwt, entry)), want)
	}
	atCWT := dccCWT().set(1, tstr("AT"))
	byAT("vaccination-only signer signs a test", atCWT, test, verifier.ReasonDCCSignerType)
	byAT("vaccination-only signer signs a recovery", atCWT, rec, verifier.ReasonDCCSignerType)
	byAT("vaccination-only signer signs a test, no iss", dccCWT().del(1), test, verifier.ReasonDCCSignerType)
	byAT("AT signer signs as DE", dccCWT(), vacc, verifier.ReasonIssuerMismatch)
	signed("DE signer signs as AT", g.dccPayload(atCWT, vacc), verifier.ReasonIssuerMismatch)
	signed("DE signer signs as de", g.dccPayload(dccCWT().set(1, tstr("de")), vacc), verifier.ReasonIssuerMismatch)
	signed("DE signer signs as GX", g.dccPayload(dccCWT().set(1, tstr(verifiertest.Issuer)), vacc), verifier.ReasonIssuerMismatch)
	signed("certificate issued before its signer's window", g.dccPayload(dccCWT().set(6, cint(at(-400*day))).set(4, cint(at(10*day))), vacc), verifier.ReasonKeyNotValid)
	signed("certificate issued after its signer's window", g.dccPayload(dccCWT().set(6, cint(at(400*day))).set(4, cint(at(500*day))), vacc), verifier.ReasonKeyNotValid)
	signed("certificate expired an hour ago", g.dccPayload(dccCWT().set(6, cint(at(-30*day))).set(4, cint(at(-hour))), vacc), verifier.ReasonExpired)
	signed("certificate expired, float times", g.dccPayload(dccCWT().set(6, f64(float64(at(-30*day))+0.5)).set(4, f64(float64(at(-hour))+0.5)), vacc), verifier.ReasonExpired)
	signed("certificate issued tomorrow", g.dccPayload(dccCWT().set(6, cint(at(day))).set(4, cint(at(30*day))), vacc), verifier.ReasonNotYetValid)
	signed("XJ-issued certificate from DE", g.dccPayload(dccCWT().set(1, tstr(verifiertest.DeniedIssuer)), vacc), verifier.ReasonIssuerMismatch)
}

// withDupKey appends a key and value to an encoded map of fewer than 23
// pairs (the count fits in its first byte).
func withDupKey(m, k, v []byte) []byte {
	if m[0] < 0xa0 || m[0] >= 0xb7 {
		panic("withDupKey: not a small map")
	}
	return cat([]byte{m[0] + 1}, m[1:], k, v)
}

func withField(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for kk, vv := range m {
		out[kk] = vv
	}
	out[k] = v
	return out
}
