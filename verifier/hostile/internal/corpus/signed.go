package corpus

import (
	"bytes"
	"encoding/asn1"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

func (g *gen) signatureCases() {
	S := LayerSignature
	b := g.baseParts()
	add := func(name string, cose []byte) { g.addText(S, name, wk(cose), verifier.ReasonBadSignature) }
	withSig := func(sig []byte) []byte { return sign1(b.p, emptyMap, b.payload, sig) }

	for i := range 40 {
		bit := i*64/5 + g.rng.IntN(12)
		add(fmt.Sprintf("Ed25519 signature bit %d flipped", bit), withSig(flipBit(b.sig, bit)))
	}
	for _, n := range []int{0, 1, 31, 32, 63} {
		add(fmt.Sprintf("Ed25519 signature cut to %d bytes", n), withSig(b.sig[:n]))
	}
	for _, n := range []int{65, 96, 128, 1000} {
		add(fmt.Sprintf("Ed25519 signature padded to %d bytes", n), withSig(cat(b.sig, make([]byte, n-64))))
	}
	add("Ed25519 signature of zeros", withSig(make([]byte, 64)))
	add("Ed25519 signature of 0xff", withSig(bytes.Repeat([]byte{0xff}, 64)))
	add("Ed25519 signature halves swapped", withSig(cat(b.sig[32:], b.sig[:32])))
	add("Ed25519 signature with S + L (not canonical)", withSig(cat(b.sig[:32], ed25519SPlusL(b.sig[32:]))))
	add("Ed25519 signature with R the identity point", withSig(cat(append([]byte{1}, make([]byte, 31)...), b.sig[32:])))
	add("Ed25519 signature twice", withSig(cat(b.sig, b.sig)))

	esPayload := printedClaims().enc()
	esP := prot(algES256, g.esKid)
	esS := esSig(3, esP, esPayload)
	esWith := func(sig []byte) []byte { return sign1(esP, emptyMap, esPayload, sig) }
	for i := range 16 {
		bit := g.rng.IntN(512)
		add(fmt.Sprintf("ES256 signature bit %d flipped (%d)", bit, i), esWith(flipBit(esS, bit)))
	}
	for _, n := range []int{0, 32, 63} {
		add(fmt.Sprintf("ES256 signature cut to %d bytes", n), esWith(esS[:n]))
	}
	add("ES256 signature padded to 65 bytes", esWith(cat(esS, []byte{0})))
	add("ES256 signature with a zero byte in front", esWith(cat([]byte{0}, esS)))
	add("ES256 signature in ASN.1 DER", esWith(derSig(esS)))
	add("ES256 signature r and s swapped", esWith(cat(esS[32:], esS[:32])))
	add("ES256 signature r = s = 0", esWith(make([]byte, 64)))
	n := p256Order()
	add("ES256 signature r = s = n", esWith(cat(n, n)))
	one := make([]byte, 32)
	one[31] = 1
	add("ES256 signature r = s = 1", esWith(cat(one, one)))
	add("ES256 signature r = n, s kept", esWith(cat(n, esS[32:])))

	// Signed by keys other than the one the kid names.
	add("signed by a key in no key set, GX kid", sign1(b.p, emptyMap, b.payload, edSig(verifiertest.SeedStrangerKey, b.p, b.payload)))
	add("signed by the root key, GX kid", sign1(b.p, emptyMap, b.payload, edSig(1, b.p, b.payload)))
	add("signed by the expired key, GX kid", sign1(b.p, emptyMap, b.payload, edSig(verifiertest.SeedExpiredKey, b.p, b.payload)))
	add("signed by a P-256 key in no key set, ES256 kid", esWith(esSig(verifiertest.SeedStrangerESKey, esP, esPayload)))
	add("signed by the DCC signer DE, ES256 kid", esWith(esSig(verifiertest.SeedDCCDE, esP, esPayload)))
	expiredKid := verifiertest.KidOf(verifiertest.EdKey(verifiertest.SeedExpiredKey).Public())
	pe := prot(algEdDSA, expiredKid)
	add("signed by the GX key, expired key's kid", sign1(pe, emptyMap, b.payload, edSig(2, pe, b.payload)))

	// The signed bytes changed after signing: the red voucher made green,
	// its life, kind, class or name changed.
	red := dynClaims().set(-65537, voucherMap(1).set(3, cint(3)).enc()).enc()
	redSig := edSig(2, b.p, red)
	for _, c := range []struct {
		name    string
		payload []byte
	}{
		{"red voucher's payload made green", dynClaims().enc()},
		{"expiry moved a year on", dynClaims().set(4, cint(at(365*day))).enc()},
		{"kind changed to printed", dynClaims().set(-65537, voucherMap(2).set(3, cint(3)).enc()).enc()},
		{"class changed to child", dynClaims().set(-65537, voucherMap(1).set(3, cint(3)).set(5, cint(2)).enc()).enc()},
		{"name changed", dynClaims().set(-65537, voucherMap(1).set(3, cint(3)).set(6, tstr("李*")).enc()).enc()},
		{"issuer changed", dynClaims().set(1, tstr("GD")).set(-65537, voucherMap(1).set(3, cint(3)).enc()).enc()},
		{"voucher id changed", dynClaims().set(7, bstr([]byte("hostile-voucher2"))).set(-65537, voucherMap(1).set(3, cint(3)).enc()).enc()},
		{"payload with a byte appended", cat(red, []byte{0})},
	} {
		add(c.name+" after signing", sign1(b.p, emptyMap, c.payload, redSig))
	}
	// The protected header changed after signing.
	for _, c := range []struct {
		name string
		p    []byte
	}{
		{"protected labels reordered", cmapRaw(cint(4), bstr(g.edKid), cint(1), cint(algEdDSA))},
		{"protected alg in a longer encoding", cmapRaw(cint(1), []byte{0x38, 0x07}, cint(4), bstr(g.edKid))},
		{"protected kid in a longer encoding", cmapRaw(cint(1), cint(algEdDSA), cint(4), cat([]byte{0x58, 0x08}, g.edKid))},
		{"protected header with a label added", cmapRaw(cint(1), cint(algEdDSA), cint(3), cint(0), cint(4), bstr(g.edKid))},
	} {
		add(c.name+" after signing", sign1(c.p, emptyMap, b.payload, b.sig))
	}
	// Signatures over other structures than Sig_structure of COSE_Sign1.
	for _, c := range []struct {
		name string
		msg  []byte
	}{
		{"signature over the payload alone", b.payload},
		{"signature over the COSE_Sign context", arr(tstr("Signature"), bstr(b.p), bstr(nil), bstr(nil), bstr(b.payload))},
		{"signature with external_aad", arr(tstr("Signature1"), bstr(b.p), bstr([]byte("wicket")), bstr(b.payload))},
		{"signature over an empty protected header", arr(tstr("Signature1"), bstr(nil), bstr(nil), bstr(b.payload))},
		{"signature over an indefinite-length Sig_structure", indefArr(tstr("Signature1"), bstr(b.p), bstr(nil), bstr(b.payload))},
		{"signature over the COSE_Mac0 context", arr(tstr("MAC0"), bstr(b.p), bstr(nil), bstr(b.payload))},
		{"signature over Sig_structure without external_aad", arr(tstr("Signature1"), bstr(b.p), bstr(b.payload))},
		{"signature over the whole message", sign1(b.p, emptyMap, b.payload, nil)},
	} {
		add(c.name, sign1(b.p, emptyMap, b.payload, verifiertest.SignEdDSA(2, c.msg)))
	}
	printed := printedClaims().enc()
	add("signature of another voucher", sign1(b.p, emptyMap, b.payload, edSig(2, b.p, printed)))
	add("ES256 signature of another voucher", esWith(esSig(3, esP, dynClaims().enc())))
}

// ed25519SPlusL adds the group order L to the little-endian scalar s.
func ed25519SPlusL(s []byte) []byte {
	L, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	be := make([]byte, 32)
	for i := range 32 {
		be[i] = s[31-i]
	}
	v := new(big.Int).Add(new(big.Int).SetBytes(be), L)
	out := v.FillBytes(make([]byte, 32))
	for i, j := 0, 31; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func p256Order() []byte {
	n, _ := new(big.Int).SetString("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", 16)
	return n.FillBytes(make([]byte, 32))
}

func derSig(rs []byte) []byte {
	der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(rs[:32]), new(big.Int).SetBytes(rs[32:])})
	if err != nil {
		panic(err)
	}
	return der
}

func (g *gen) claimsCases() {
	C := LayerClaims
	add := func(name string, payload []byte, want verifier.Reason) {
		g.addText(C, name, wk(g.edCOSE(payload)), want)
	}
	bad := func(name string, c omap) { add(name, c.enc(), verifier.ReasonBadClaims) }
	base := dynClaims()
	iat := at(-minute)
	vm := voucherMap(1)
	withV := func(v omap) omap { return base.set(-65537, v.enc()) }
	withVRaw := func(v []byte) omap { return base.set(-65537, v) }

	for _, k := range []struct {
		key  int64
		name string
	}{{1, "iss"}, {4, "exp"}, {6, "iat"}, {7, "cti"}, {-65537, "voucher"}} {
		bad("missing "+k.name, base.del(k.key))
	}
	for _, k := range []struct {
		key  int64
		name string
	}{{1, "version"}, {2, "subject"}, {3, "colour"}, {4, "kind"}, {5, "class"}} {
		bad("missing voucher "+k.name, withV(vm.del(k.key)))
	}
	bad("only the voucher map", omap{{cint(-65537), vm.enc()}})
	// iss.
	for _, s := range []struct{ name, v string }{
		{"empty", ""}, {"65 bytes", strings.Repeat("G", 65)}, {"NUL", "G\x00X"}, {"LF", "GX\n"}, {"CR", "GX\r"},
		{"ESC sequence", "\x1b[31mGX"}, {"RLO", "G\u202eX"}, {"zero-width space", "G\u200bX"}, {"NEL", "GX\u0085"},
		{"DEL", "GX\x7f"}, {"line separator", "GX\u2028"},
	} {
		bad("iss "+s.name, base.set(1, tstr(s.v)))
	}
	bad("iss as bytes", base.set(1, bstr([]byte("GX"))))
	bad("iss as an integer", base.set(1, cint(1)))
	bad("iss as an array", base.set(1, arr(tstr("GX"))))
	// Times.
	for _, t := range []struct {
		name string
		key  int64
		v    []byte
	}{
		{"iat 0", 6, cint(0)}, {"iat negative", 6, cint(-1)}, {"iat after year 9999", 6, cint(253402300800)},
		{"iat 2^63-1", 6, cint(math.MaxInt64)}, {"iat 2^64-1", 6, cuint(math.MaxUint64)}, {"iat -2^63", 6, cint(math.MinInt64)},
		{"iat as float", 6, f64(float64(iat))}, {"iat as float32", 6, f32(float32(iat))}, {"iat NaN", 6, f16(0x7e00)},
		{"iat +Inf", 6, f16(0x7c00)}, {"iat as text", 6, tstr(fmt.Sprint(iat))}, {"iat null", 6, cnull},
		{"iat as bytes", 6, bstr([]byte{1, 2, 3, 4})},
		{"exp 0", 4, cint(0)}, {"exp equal to iat", 4, cint(iat)}, {"exp before iat", 4, cint(iat - 1)},
		{"exp a day before iat", 4, cint(iat - 86400)}, {"exp negative", 4, cint(-300)},
		{"exp after year 9999", 4, cint(253402300800)}, {"exp 2^64-1", 4, cuint(math.MaxUint64)},
		{"exp as float", 4, f64(float64(iat + 300))}, {"exp NaN", 4, f64(math.NaN())}, {"exp -Inf", 4, f16(0xfc00)},
		{"exp as text", 4, tstr("2026-06-01T08:04:00Z")},
		{"nbf equal to exp", 5, cint(iat + 300)}, {"nbf after exp", 5, cint(iat + 3600)}, {"nbf negative", 5, cint(-1)},
		{"nbf after year 9999", 5, cint(253402300800)}, {"nbf as float", 5, f64(float64(iat))},
	} {
		bad(t.name, base.set(t.key, t.v))
	}
	// Tagged times: RFC 8392 NumericDate is untagged; the format refuses
	// a tagged one.
	tagged := func(name string, c omap) {
		g.add(C, name, []byte(wk(g.edCOSE(c.enc()))), verifier.ReasonBadClaims)
	}
	tagged("iat tagged as epoch time", base.set(6, tag(1, cint(iat))))
	tagged("exp tagged as epoch time", base.set(4, tag(1, cint(iat+300))))
	tagged("nbf tagged as epoch time", base.set(5, tag(1, cint(iat))))
	tagged("iat as a bignum", base.set(6, tag(2, bstr([]byte{0x6a, 0x1d, 0x3b, 0xc4}))))
	tagged("test sample time tagged as epoch time", withV(vm.set(7, arr(cint(1), cint(0), tag(1, cint(at(-hour)))))))
	tagged("iat under an unassigned tag", base.set(6, tag(100, cint(iat))))
	g.add(C, "claims map tagged as a CWT", []byte(wk(g.edCOSE(tag(61, base.enc())))), verifier.ReasonBadClaims)
	tagged("colour under an unassigned tag", withV(vm.set(3, tag(100, cint(1)))))
	bad("iat tagged as a date string", base.set(6, tag(0, tstr("2026-06-01T07:59:00Z"))))
	// cti.
	for _, n := range []int{0, 1, 7, 33, 64, 1000} {
		bad(fmt.Sprintf("cti of %d bytes", n), base.set(7, bstr(bytes.Repeat([]byte{0x43}, n))))
	}
	bad("cti as text", base.set(7, tstr(string(cti))))
	bad("cti as an integer", base.set(7, cint(12345678)))
	bad("cti null", base.set(7, cnull))
	// The voucher map.
	bad("voucher map as an array", withVRaw(arr(cint(1), bstr(subject), cint(1), cint(1), cint(1))))
	bad("voucher map as bytes", withVRaw(bstr(vm.enc())))
	bad("voucher map as an integer", withVRaw(cint(1)))
	bad("voucher map empty", withVRaw(emptyMap))
	bad("voucher map null", withVRaw(cnull))
	for _, f := range []struct {
		name string
		key  int64
		v    []byte
	}{
		{"version 0", 1, cint(0)}, {"version 2", 1, cint(2)}, {"version 255", 1, cint(255)}, {"version 256", 1, cint(256)},
		{"version -1", 1, cint(-1)}, {"version as text", 1, tstr("1")},
		{"subject of 0 bytes", 2, bstr(nil)}, {"subject of 7 bytes", 2, bstr(subject[:7])}, {"subject of 33 bytes", 2, bstr(bytes.Repeat([]byte{0x53}, 33))},
		{"subject as text", 2, tstr(string(subject))},
		{"colour 0", 3, cint(0)}, {"colour 4", 3, cint(4)}, {"colour 255", 3, cint(255)}, {"colour 256", 3, cint(256)},
		{"colour -1", 3, cint(-1)}, {"colour as text", 3, tstr("green")}, {"colour as float", 3, f16(0x3c00)},
		{"kind 0", 4, cint(0)}, {"kind 4", 4, cint(4)}, {"kind 9", 4, cint(9)}, {"kind -1", 4, cint(-1)}, {"kind as text", 4, tstr("dynamic")},
		{"class 0", 5, cint(0)}, {"class 4", 5, cint(4)}, {"class -2", 5, cint(-2)}, {"class as text", 5, tstr("adult")},
		{"name of 65 bytes", 6, tstr(strings.Repeat("A", 65))}, {"name of 22 Chinese characters", 6, tstr(strings.Repeat("张", 22))},
		{"name as bytes", 6, bstr([]byte("张*明"))}, {"name as an integer", 6, cint(0)},
		{"test kind 0", 7, arr(cint(0), cint(0), cint(at(-hour)))}, {"test kind 3", 7, arr(cint(3), cint(0), cint(at(-hour)))},
		{"test result 2", 7, arr(cint(1), cint(2), cint(at(-hour)))}, {"test result 255", 7, arr(cint(1), cint(255), cint(at(-hour)))},
		{"test sampled 0", 7, arr(cint(1), cint(0), cint(0))}, {"test sampled negative", 7, arr(cint(1), cint(0), cint(-5))},
		{"test sampled after year 9999", 7, arr(cint(1), cint(0), cint(253402300800))},
		{"test of 2 elements", 7, arr(cint(1), cint(0))}, {"test of 4 elements", 7, arr(cint(1), cint(0), cint(at(-hour)), cint(0))},
		{"test as a map", 7, cmapRaw(cint(1), cint(1))}, {"test as an integer", 7, cint(1)}, {"test empty", 7, arr()},
		{"vaccination of 11 doses", 8, arr(cint(11), cint(at(-day)))}, {"vaccination of 255 doses", 8, arr(cint(255), cint(at(-day)))},
		{"vaccination of 256 doses", 8, arr(cint(256), cint(at(-day)))}, {"vaccination of -1 doses", 8, arr(cint(-1), cint(at(-day)))},
		{"no doses but a last dose", 8, arr(cint(0), cint(at(-day)))}, {"doses without a last dose", 8, arr(cint(2), cint(0))},
		{"last dose negative", 8, arr(cint(2), cint(-1))}, {"last dose after year 9999", 8, arr(cint(2), cint(253402300800))},
		{"vaccination of 1 element", 8, arr(cint(2))}, {"vaccination of 3 elements", 8, arr(cint(2), cint(at(-day)), cint(0))},
	} {
		bad("voucher "+f.name, withV(vm.set(f.key, f.v)))
	}
	// Names a display must not show: control, format and separator
	// characters.
	for _, c := range []struct{ name, s string }{
		{"NUL", "\x00"}, {"LF", "\n"}, {"CR", "\r"}, {"TAB", "\t"}, {"ESC", "\x1b"}, {"DEL", "\x7f"}, {"NEL", "\u0085"},
		{"ANSI colour", "\x1b[32m"}, {"RLO", "\u202e"}, {"LRO", "\u202d"}, {"RLE", "\u202b"}, {"PDF", "\u202c"},
		{"LRI", "\u2066"}, {"RLI", "\u2067"}, {"FSI", "\u2068"}, {"PDI", "\u2069"}, {"RLM", "\u200f"}, {"LRM", "\u200e"},
		{"ALM", "\u061c"}, {"zero-width space", "\u200b"}, {"zero-width joiner", "\u200d"}, {"BOM", "\ufeff"},
		{"soft hyphen", "\u00ad"}, {"tag character", "\U000e0041"}, {"line separator", "\u2028"},
		{"paragraph separator", "\u2029"}, {"ideographic space", "\u3000"}, {"private use", "\ue000"},
		{"interlinear annotation", "\ufff9"},
	} {
		bad("name with "+c.name, withV(vm.set(6, tstr("张"+c.s+"*明"))))
	}
	bad("name reversed by RLO to show another name", withV(vm.set(6, tstr("\u202e明*张"))))
	// Keys the format doesn't define.
	for _, k := range []struct {
		name string
		k    []byte
	}{
		{"2 (sub)", cint(2)}, {"3 (aud)", cint(3)}, {"8 (cnf)", cint(8)}, {"0", cint(0)}, {"-1", cint(-1)},
		{"-65536", cint(-65536)}, {"-65538", cint(-65538)}, {"1000", cint(1000)}, {"text \"iss\"", tstr("iss")},
		{"text \"1\"", tstr("1")}, {"bytes 01", bstr([]byte{1})},
	} {
		bad("unknown claim "+k.name, base.plus(k.k, cint(1)))
	}
	for _, k := range []struct {
		name string
		k    []byte
	}{{"0", cint(0)}, {"9", cint(9)}, {"100", cint(100)}, {"-1", cint(-1)}, {"text \"name\"", tstr("name")}} {
		bad("unknown voucher key "+k.name, withV(vm.plus(k.k, cint(1))))
	}
	// The payload isn't a claims map.
	for _, c := range []struct {
		name string
		p    []byte
	}{
		{"array", arr(tstr("GX"))}, {"integer", cint(1)}, {"bytes", bstr(base.enc())}, {"text", tstr("GX")},
		{"null", cnull}, {"empty map", emptyMap}, {"true", ctrue}, {"float", f64(1)},
	} {
		add("payload is "+c.name, c.p, verifier.ReasonBadClaims)
	}
	// Strict CBOR inside the signed payload.
	cb := func(name string, p []byte) { add(name, p, verifier.ReasonBadCBOR) }
	cb("payload empty", nil)
	cb("payload with a byte after the map", cat(base.enc(), []byte{0}))
	cb("payload cut short", base.enc()[:len(base.enc())-1])
	cb("payload of two claims maps", cat(base.enc(), base.enc()))
	cb("duplicate iss", base.plus(cint(1), tstr("GX")).enc())
	cb("duplicate iss, second different", base.plus(cint(1), tstr("GD")).enc())
	cb("duplicate exp, second a year on", base.plus(cint(4), cint(at(365*day))).enc())
	cb("duplicate voucher map", base.plus(cint(-65537), vm.enc()).enc())
	cb("duplicate colour: red then green", withV(vm.set(3, cint(3)).plus(cint(3), cint(1))).enc())
	cb("duplicate colour in a longer encoding", withV(vm.set(3, cint(3)).plus(uint8Head(0, 3), cint(1))).enc())
	cb("duplicate iat key in a longer encoding", base.plus(uint8Head(0, 6), cint(iat)).enc())
	cb("indefinite-length claims map", indefMap(flatten(base)...))
	cb("indefinite-length voucher map", withVRaw(indefMap(flatten(vm)...)).enc())
	cb("indefinite-length iss", base.set(1, indefTstr("G", "X")).enc())
	cb("indefinite-length cti", base.set(7, indefBstr(cti[:8], cti[8:])).enc())
	cb("indefinite-length test array", withV(vm.set(7, indefArr(cint(1), cint(0), cint(at(-hour))))).enc())
	cb("test array of 17 elements", withV(vm.set(7, arr(make17()...))).enc())
	cb("claims map of 33 pairs", base.plus(cint(1000), cmapRaw(manyPairs(33)...)).enc())
	cb("unknown claim nested 12 deep", base.plus(cint(1000), nest(12, cint(0))).enc())
	cb("name nested in arrays 10 deep", withV(vm.set(6, nest(10, tstr("x")))).enc())
	cb("iss not UTF-8", base.set(1, tstr("G\xff")).enc())
	cb("iss with a UTF-16 surrogate", base.set(1, tstr("G\xed\xa0\x80")).enc())
	cb("name not UTF-8", withV(vm.set(6, tstr("张\xc3*明"))).enc())
	cb("name with an overlong slash", withV(vm.set(6, tstr("\xc0\xaf"))).enc())
	cb("name cut inside a character", withV(vm.set(6, tstr("张*\xe6\x98"))).enc())
	cb("array claiming 2^32 elements in the claims", base.plus(cint(1000), head(4, 1<<32)).enc())
}

// flatten lists a map's keys and values for indefMap.
func flatten(m omap) [][]byte {
	var kv [][]byte
	for _, f := range m {
		kv = append(kv, f.k, f.v)
	}
	return kv
}

// voucher is a claims map of a kind with the times given.
func voucher(kind int64, iat, exp time.Duration) omap {
	return claimsMap(at(iat), at(exp), voucherMap(kind))
}

func (g *gen) keyCases() {
	K := LayerKey
	add := func(name string, cose []byte, want verifier.Reason) { g.addText(K, name, wk(cose), want) }
	exp := verifiertest.SeedExpiredKey
	fut := verifiertest.SeedFutureKey
	add("expired key, printed voucher issued in its window", seedCOSE(exp, voucher(2, -60*day, 20*day).enc()), verifier.ReasonKeyNotValid)
	add("expired key, printed voucher issued on its last day", seedCOSE(exp, voucher(2, -30*day-hour, 20*day).enc()), verifier.ReasonKeyNotValid)
	add("expired key, dynamic code issued now", seedCOSE(exp, dynClaims().enc()), verifier.ReasonKeyNotValid)
	add("expired key, watch code issued now", seedCOSE(exp, kindClaims(3).enc()), verifier.ReasonKeyNotValid)
	add("expired key, printed voucher issued now", seedCOSE(exp, printedClaims().enc()), verifier.ReasonKeyNotValid)
	add("key not yet valid, dynamic code issued now", seedCOSE(fut, dynClaims().enc()), verifier.ReasonKeyNotValid)
	add("key not yet valid, printed voucher issued now", seedCOSE(fut, printedClaims().enc()), verifier.ReasonKeyNotValid)
	add("key not yet valid, voucher back-dated a year", seedCOSE(fut, voucher(2, -365*day, 10*day).enc()), verifier.ReasonKeyNotValid)
	add("GX key, printed voucher issued before its window", g.edCOSE(voucher(2, -181*day, 10*day).enc()), verifier.ReasonKeyNotValid)
	add("GX key, printed voucher issued after its window", g.edCOSE(voucher(2, 181*day, 200*day).enc()), verifier.ReasonKeyNotValid)
	add("GX ES256 key, printed voucher issued before its window", g.esCOSE(voucher(2, -200*day, 10*day).enc()), verifier.ReasonKeyNotValid)
	add("GX key, expired voucher issued before its window", g.edCOSE(voucher(2, -400*day, -370*day).enc()), verifier.ReasonKeyNotValid)
	po, do := verifiertest.SeedPrintedOnlyKey, verifiertest.SeedDynamicOnlyKey
	add("printed-only key signs a dynamic code", seedCOSE(po, dynClaims().enc()), verifier.ReasonKeyKindNotAllowed)
	add("printed-only key signs a watch code", seedCOSE(po, kindClaims(3).enc()), verifier.ReasonKeyKindNotAllowed)
	add("dynamic-only key signs a printed voucher", seedCOSE(do, printedClaims().enc()), verifier.ReasonKeyKindNotAllowed)
	add("dynamic-only key signs a watch code", seedCOSE(do, kindClaims(3).enc()), verifier.ReasonKeyKindNotAllowed)
	add("printed-only key signs a red dynamic code", seedCOSE(po, dynClaims().set(-65537, voucherMap(1).set(3, cint(3)).enc()).enc()), verifier.ReasonKeyKindNotAllowed)
	// Two keys share the GX key's kid: the XJ key's signatures verify, but
	// not as GX.
	twin := func(payload []byte) []byte {
		p := prot(algEdDSA, g.edKid)
		return sign1(p, emptyMap, payload, edSig(verifiertest.SeedKidTwinKey, p, payload))
	}
	add("kid shared with an XJ key, XJ key signs as GX", twin(dynClaims().enc()), verifier.ReasonIssuerMismatch)
	add("kid shared with an XJ key, XJ key signs a printed GX voucher", twin(printedClaims().enc()), verifier.ReasonIssuerMismatch)
	add("kid shared with an XJ key, XJ key signs as XJ", twin(dynClaims().set(1, tstr(verifiertest.DeniedIssuer)).enc()), verifier.ReasonIssuerNotAccepted)
	add("kid shared with an XJ key, GX key signs as XJ", g.edCOSE(dynClaims().set(1, tstr(verifiertest.DeniedIssuer)).enc()), verifier.ReasonIssuerMismatch)
	pp := printedClaims().enc()
	pk := prot(algEdDSA, g.edKid)
	add("kid shared by two keys, signed by neither", sign1(pk, emptyMap, pp, edSig(verifiertest.SeedStrangerKey, pk, pp)), verifier.ReasonBadSignature)
	// Issuers that differ from the key's.
	for _, iss := range []string{"GD", "gx", "GX ", " GX", "ＧＸ", "GXX", "G", "DE"} {
		add(fmt.Sprintf("GX key signs issuer %q", iss), g.edCOSE(dynClaims().set(1, tstr(iss)).enc()), verifier.ReasonIssuerMismatch)
	}
	add("ES256 GX key signs issuer GD", g.esCOSE(printedClaims().set(1, tstr("GD")).enc()), verifier.ReasonIssuerMismatch)
	// A DCC signer's key never signs a Wicket voucher.
	payload := printedClaims().enc()
	pd := prot(algES256, g.de.Kid)
	add("DCC signer DE signs a Wicket voucher", sign1(pd, emptyMap, payload, esSig(verifiertest.SeedDCCDE, pd, payload)), verifier.ReasonUnknownKid)
	pa := prot(algES256, g.at.Kid)
	add("DCC signer AT signs a Wicket voucher", sign1(pa, emptyMap, payload, esSig(verifiertest.SeedDCCAT, pa, payload)), verifier.ReasonUnknownKid)
}

func (g *gen) timeCases() {
	T := LayerTime
	add := func(name string, c omap, want verifier.Reason) { g.addText(T, name, wk(g.edCOSE(c.enc())), want) }
	dyn := func(iat, exp time.Duration) omap { return voucher(1, iat, exp) }
	for _, e := range []time.Duration{-2*minute - time.Second, -3 * minute, -hour, -day, -30 * day, -179 * day} {
		add(fmt.Sprintf("dynamic code expired %v ago", -e), dyn(e-5*minute, e), verifier.ReasonExpired)
	}
	add("printed voucher expired an hour ago", voucher(2, -10*day, -hour), verifier.ReasonExpired)
	add("watch code expired 5 minutes ago", voucher(3, -10*minute, -5*minute), verifier.ReasonExpired)
	// A dynamic code lives 10 minutes; replayed later it has expired.
	for _, ago := range []time.Duration{12*minute + time.Second, 13 * minute, 15 * minute, 30 * minute, hour, 6 * hour, day, 7 * day, 29 * day} {
		add(fmt.Sprintf("dynamic code replayed %v after issue", ago), dyn(-ago, -ago+10*minute), verifier.ReasonExpired)
	}
	add("watch code replayed an hour after issue", voucher(3, -hour, -hour+10*minute), verifier.ReasonExpired)
	for _, iat := range []time.Duration{2*minute + time.Second, 3 * minute, hour, day, 100 * day} {
		add(fmt.Sprintf("dynamic code issued %v ahead", iat), dyn(iat, iat+5*minute), verifier.ReasonNotYetValid)
	}
	add("printed voucher valid from an hour ahead", voucher(2, -hour, 30*day).set(5, cint(at(hour))), verifier.ReasonNotYetValid)
	add("printed voucher valid from 2m1s ahead", voucher(2, -hour, 30*day).set(5, cint(at(2*minute+time.Second))), verifier.ReasonNotYetValid)
	add("printed voucher issued 10 minutes ahead", voucher(2, 10*minute, 30*day), verifier.ReasonNotYetValid)
	g.addText(T, "key not yet valid, voucher issued in its future window", wk(seedCOSE(verifiertest.SeedFutureKey, voucher(2, 20*day, 50*day).enc())), verifier.ReasonNotYetValid)
	// Dynamic and watch codes may be valid 10 minutes at most.
	for _, life := range []time.Duration{10*minute + time.Second, 11 * minute, hour, day, 30 * day, 365 * day} {
		add(fmt.Sprintf("dynamic code valid %v", life), dyn(-minute, -minute+life), verifier.ReasonValidityTooLong)
	}
	add("dynamic code valid until year 9999", dyn(-minute, 0).set(4, cint(253402300799)), verifier.ReasonValidityTooLong)
	for _, life := range []time.Duration{10*minute + time.Second, day} {
		add(fmt.Sprintf("watch code valid %v", life), voucher(3, -minute, -minute+life), verifier.ReasonValidityTooLong)
	}
	add("dynamic code valid 20 minutes, issued 15 minutes ago", dyn(-15*minute, 5*minute), verifier.ReasonValidityTooLong)
	// Printed vouchers: at most 30 days old (plus the skew).
	for _, age := range []time.Duration{30*day + 3*minute, 31 * day, 90 * day, 179 * day} {
		add(fmt.Sprintf("printed voucher %v old", age), voucher(2, -age, day), verifier.ReasonVoucherTooOld)
	}
}
