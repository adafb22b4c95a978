package corpus

import (
	"bytes"
	"fmt"
	"math"

	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// parts are the pieces of the base Ed25519 dynamic code: protected
// header, payload and a signature over both.
type parts struct{ p, payload, sig []byte }

func (g *gen) baseParts() parts {
	payload := dynClaims().enc()
	p := prot(algEdDSA, g.edKid)
	return parts{p, payload, edSig(2, p, payload)}
}

// raw assembles 18([p, u, payload, sig]) from encoded items.
func raw(items ...[]byte) []byte { return tag(18, arr(items...)) }

func (g *gen) cborCases() {
	C := LayerCBOR
	b := g.baseParts()
	valid := sign1(b.p, emptyMap, b.payload, b.sig)
	add := func(name string, cose []byte, want verifier.Reason) { g.addText(C, name, wk(cose), want) }
	unprot := func(name string, u []byte, want verifier.Reason) {
		add(name, sign1(b.p, u, b.payload, b.sig), want)
	}
	label := func(v []byte) []byte { return cmapRaw(cint(99), v) }

	add("no bytes at all", nil, verifier.ReasonBadCBOR)
	for _, x := range [][]byte{{0xff}, {0x1c}, {0x1d}, {0x1e}, {0x1f}, {0x3f}, {0x5c}, {0x7d}, {0x9c}, {0xbe}, {0xdc}, {0xfc}, {0xfd}, {0xfe}, {0xf8, 0x00}, {0xf8, 0x1f}, {0xd2}, {0xd2, 0x84}} {
		add(fmt.Sprintf("lone item % x", x), x, verifier.ReasonBadCBOR)
	}
	for cut := 1; cut < len(valid); cut++ {
		if cut > 4 && cut != len(valid)-1 && cut%11 != 0 {
			continue
		}
		add(fmt.Sprintf("COSE cut to %d of %d bytes", cut, len(valid)), valid[:cut], verifier.ReasonBadCBOR)
	}
	for _, tail := range [][]byte{{0x00}, {0xa0}, {0xf6}, {0xff}, valid} {
		add(fmt.Sprintf("%d bytes after the message: % x", len(tail), tail[:min(2, len(tail))]), cat(valid, tail), verifier.ReasonBadCBOR)
	}
	// Indefinite lengths, anywhere.
	add("indefinite-length array", tag(18, indefArr(bstr(b.p), emptyMap, bstr(b.payload), bstr(b.sig))), verifier.ReasonBadCBOR)
	add("indefinite-length protected header", raw(indefBstr(b.p[:4], b.p[4:]), emptyMap, bstr(b.payload), bstr(b.sig)), verifier.ReasonBadCBOR)
	add("indefinite-length protected header, one chunk", raw(indefBstr(b.p), emptyMap, bstr(b.payload), bstr(b.sig)), verifier.ReasonBadCBOR)
	add("indefinite-length payload", raw(bstr(b.p), emptyMap, indefBstr(b.payload[:40], b.payload[40:]), bstr(b.sig)), verifier.ReasonBadCBOR)
	add("indefinite-length signature", raw(bstr(b.p), emptyMap, bstr(b.payload), indefBstr(b.sig[:32], b.sig[32:])), verifier.ReasonBadCBOR)
	unprot("indefinite-length unprotected header", indefMap(), verifier.ReasonBadCBOR)
	unprot("indefinite-length unprotected header with a kid", indefMap(cint(4), bstr(g.edKid)), verifier.ReasonBadCBOR)
	unprot("indefinite-length text in the unprotected header", label(indefTstr("a", "b")), verifier.ReasonBadCBOR)
	unprot("indefinite-length array in the unprotected header", label(indefArr(cint(1))), verifier.ReasonBadCBOR)
	unprot("indefinite-length bytes in the unprotected header", label(indefBstr([]byte{1})), verifier.ReasonBadCBOR)
	indefProt := cat([]byte{0xbf}, cint(1), cint(algEdDSA), cint(4), bstr(g.edKid), []byte{0xff})
	add("indefinite-length map in the protected header", sign1(indefProt, emptyMap, b.payload, edSig(2, indefProt, b.payload)), verifier.ReasonBadCBOR)
	// Duplicate keys.
	unprot("duplicate kid in the unprotected header", cmapRaw(cint(4), bstr(g.edKid), cint(4), bstr(g.edKid)), verifier.ReasonBadCBOR)
	unprot("duplicate unknown label in the unprotected header", cmapRaw(cint(99), cint(0), cint(99), cint(1)), verifier.ReasonBadCBOR)
	unprot("duplicate text label in the unprotected header", cmapRaw(tstr("a"), cint(0), tstr("a"), cint(1)), verifier.ReasonBadCBOR)
	unprot("duplicate kid, second in a longer encoding", cmapRaw(cint(4), bstr(g.edKid), uint8Head(0, 4), bstr(g.edKid)), verifier.ReasonBadCBOR)
	for i, p := range [][]byte{
		cmapRaw(cint(1), cint(algEdDSA), cint(1), cint(algEdDSA), cint(4), bstr(g.edKid)),
		cmapRaw(cint(1), cint(algEdDSA), cint(4), bstr(g.edKid), cint(4), bstr(g.edKid)),
		cmapRaw(cint(1), cint(algES256), cint(4), bstr(g.edKid), cint(1), cint(algEdDSA)),
		cmapRaw(cint(1), cint(algEdDSA), cint(4), bstr(g.edKid), uint8Head(0, 1), cint(algEdDSA)),
	} {
		add(fmt.Sprintf("duplicate label in the protected header (%d)", i), sign1(p, emptyMap, b.payload, edSig(2, p, b.payload)), verifier.ReasonBadCBOR)
	}
	// Nesting beyond 8 levels.
	for _, d := range []int{9, 10, 16, 100, 1000, 10000} {
		unprot(fmt.Sprintf("arrays nested %d deep in the unprotected header", d), label(nest(d, cint(0))), verifier.ReasonBadCBOR)
	}
	for _, d := range []int{9, 100, 3000} {
		unprot(fmt.Sprintf("maps nested %d deep in the unprotected header", d), label(nestMaps(d, cint(0))), verifier.ReasonBadCBOR)
	}
	for _, d := range []int{10, 100, 1000} {
		unprot(fmt.Sprintf("tags nested %d deep in the unprotected header", d), label(nestTags(d, cint(0))), verifier.ReasonBadCBOR)
	}
	deepProt := cmapRaw(cint(1), cint(algEdDSA), cint(4), bstr(g.edKid), cint(99), nest(20, cint(0)))
	add("arrays nested 20 deep in the protected header", sign1(deepProt, emptyMap, b.payload, edSig(2, deepProt, b.payload)), verifier.ReasonBadCBOR)
	// Huge or lying containers.
	unprot("array of 17 elements", label(arr(make17()...)), verifier.ReasonBadCBOR)
	unprot("array of 1000 elements", label(arr(repeatItem(cint(0), 1000)...)), verifier.ReasonBadCBOR)
	unprot("map of 33 pairs", cmapRaw(manyPairs(33)...), verifier.ReasonBadCBOR)
	unprot("map of 500 pairs", cmapRaw(manyPairs(500)...), verifier.ReasonBadCBOR)
	unprot("nested map of 40 pairs", label(cmapRaw(manyPairs(40)...)), verifier.ReasonBadCBOR)
	for _, h := range []struct {
		name string
		b    []byte
	}{
		{"array claiming 2^32-1 elements", head(4, math.MaxUint32)},
		{"array claiming 2^64-1 elements", head(4, math.MaxUint64)},
		{"array claiming 17 elements with 1", cat(head(4, 17), cint(0))},
		{"map claiming 2^63 pairs", head(5, 1<<63)},
		{"map claiming 2^31 pairs", head(5, 1<<31)},
		{"bytes claiming 2^64-1 bytes", head(2, math.MaxUint64)},
		{"bytes claiming 2^31 bytes", head(2, 1<<31)},
		{"text claiming 2^32 bytes", head(3, 1<<32)},
		{"bytes claiming 1000 bytes with 3", cat(head(2, 1000), []byte{1, 2, 3})},
	} {
		unprot(h.name+" in the unprotected header", label(h.b), verifier.ReasonBadCBOR)
	}
	add("message array claiming 2^64-1 elements", cat([]byte{0xd2}, head(4, math.MaxUint64)), verifier.ReasonBadCBOR)
	add("protected header claiming 2^64-1 bytes", cat([]byte{0xd2, 0x84}, head(2, math.MaxUint64), b.p), verifier.ReasonBadCBOR)
	add("signature claiming 2^32 bytes", raw(bstr(b.p), emptyMap, bstr(b.payload), cat(head(2, 1<<32), b.sig)), verifier.ReasonBadCBOR)
	// Text that is not UTF-8, and items that are not well-formed.
	for _, s := range []string{"\xc3\x28", "\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ok\x80", "\xe2\x80"} {
		g.add(C, fmt.Sprintf("invalid UTF-8 % x in the unprotected header", s), []byte(wk(sign1(b.p, label(tstr(s)), b.payload, b.sig))), verifier.ReasonBadCBOR)
	}
	badProt := cmapRaw(cint(1), cint(algEdDSA), cint(4), bstr(g.edKid), cint(99), tstr("\xff"))
	g.add(C, "invalid UTF-8 in the protected header", []byte(wk(sign1(badProt, emptyMap, b.payload, edSig(2, badProt, b.payload)))), verifier.ReasonBadCBOR)
	unprot("kid as text that is not UTF-8", cmapRaw(cint(4), tstr("\xff")), verifier.ReasonBadCBOR)
	unprot("invalid UTF-8 label in the unprotected header", cmapRaw(tstr("\xfe"), cint(0)), verifier.ReasonBadCBOR)
	for _, x := range [][]byte{{0x1c}, {0xff}, {0xf8, 0x18}, {0xdc, 0x00}, {0x5f, 0x61, 0x61, 0xff}, {0x7f, 0x41, 0x00, 0xff}} {
		unprot(fmt.Sprintf("ill-formed item % x in the unprotected header", x), label(x), verifier.ReasonBadCBOR)
	}
}

func make17() [][]byte { return repeatItem(cint(0), 17) }

func repeatItem(item []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = item
	}
	return out
}

// manyPairs is n pairs of distinct unknown labels 100, 101, ...
func manyPairs(n int) [][]byte {
	var kv [][]byte
	for i := range n {
		kv = append(kv, cint(int64(100+i)), cint(0))
	}
	return kv
}

func (g *gen) coseCases() {
	C := LayerCOSE
	b := g.baseParts()
	valid := sign1(b.p, emptyMap, b.payload, b.sig)
	add := func(name string, cose []byte, want verifier.Reason) { g.addText(C, name, wk(cose), want) }
	// signed assembles a message whose signature covers the headers given
	// (seed 02), so only the header rule can refuse it.
	signed := func(p, u []byte) []byte { return sign1(p, u, b.payload, edSig(2, p, b.payload)) }

	add("untagged COSE_Sign1", valid[1:], verifier.ReasonBadCOSE)
	for _, t := range []uint64{98, 96, 97, 17, 16, 61, 19, 24, 55799, 1 << 20, math.MaxUint64} {
		add(fmt.Sprintf("tag %d instead of 18", t), tag(t, valid[1:]), verifier.ReasonBadCOSE)
	}
	// A null protected header holds no alg; a null signature verifies
	// nothing.
	add("protected header null", raw(cnull, emptyMap, bstr(b.payload), bstr(b.sig)), verifier.ReasonAlgNotProtected)
	add("signature null", raw(bstr(b.p), emptyMap, bstr(b.payload), cnull), verifier.ReasonBadSignature)
	for _, c := range []struct {
		name string
		u    []byte
	}{{"null", cnull}, {"undefined", cundef}} {
		g.add(C, "unprotected header "+c.name, []byte(wk(raw(bstr(b.p), c.u, bstr(b.payload), bstr(b.sig)))), verifier.ReasonBadCOSE)
	}
	// Only tag 18 directly on the array.
	for _, c := range []struct {
		name string
		cose []byte
	}{
		{"self-described CBOR around the tagged message", tag(55799, valid)},
		{"tag 18 twice", tag(18, valid)},
		{"tag 18 around tag 98", tag(18, tag(98, valid[1:]))},
		{"tag 18 around self-described CBOR", tag(18, tag(55799, valid[1:]))},
		{"tag 18 around tag 2^64-1", tag(18, tag(math.MaxUint64, valid[1:]))},
	} {
		g.add(C, c.name, []byte(wk(c.cose)), verifier.ReasonBadCOSE)
	}
	tp := tag(98, b.p)
	g.add(C, "protected header map tagged 98", []byte(wk(sign1(tp, emptyMap, b.payload, edSig(2, tp, b.payload)))), verifier.ReasonBadCOSE)
	tu := tag(98, cmapRaw(cint(4), bstr(g.edKid)))
	g.add(C, "unprotected header map tagged 98", []byte(wk(sign1(b.p, tu, b.payload, b.sig))), verifier.ReasonBadCOSE)
	add("CWT tag 61 around the tagged message", tag(61, valid), verifier.ReasonBadCOSE)
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"empty map", emptyMap}, {"integer", cint(0)}, {"byte string", bstr(b.payload)}, {"text", tstr("COSE_Sign1")},
		{"null", cnull}, {"empty array", arr()}, {"array of 3", arr(bstr(b.p), emptyMap, bstr(b.payload))},
		{"array of 5", arr(bstr(b.p), emptyMap, bstr(b.payload), bstr(b.sig), bstr(b.sig))},
		{"array of 4 integers", arr(cint(1), cint(2), cint(3), cint(4))},
		{"array of 1", arr(bstr(b.p))},
	} {
		add("tag 18 on "+c.name, tag(18, c.b), verifier.ReasonBadCOSE)
	}
	// Elements of the wrong type.
	pb, ub, yb, sb := bstr(b.p), emptyMap, bstr(b.payload), bstr(b.sig)
	for _, c := range []struct {
		name  string
		items [4][]byte
	}{
		{"protected header as a map", [4][]byte{b.p, ub, yb, sb}},
		{"protected header as text", [4][]byte{tstr("alg EdDSA"), ub, yb, sb}},
		{"protected header as an integer", [4][]byte{cint(1), ub, yb, sb}},
		{"protected header as an array", [4][]byte{arr(pb), ub, yb, sb}},
		{"unprotected header as bytes", [4][]byte{pb, bstr(emptyMap), yb, sb}},
		{"unprotected header as an array", [4][]byte{pb, arr(), yb, sb}},
		{"unprotected header as an integer", [4][]byte{pb, cint(0), yb, sb}},
		{"unprotected header as text", [4][]byte{pb, tstr(""), yb, sb}},
		{"payload as text", [4][]byte{pb, ub, tstr("iss GX"), sb}},
		{"payload as the claims map itself", [4][]byte{pb, ub, b.payload, sb}},
		{"payload as an integer", [4][]byte{pb, ub, cint(7), sb}},
		{"signature as text", [4][]byte{pb, ub, yb, tstr(fmt.Sprintf("%x", b.sig))}},
		{"signature as an array", [4][]byte{pb, ub, yb, arr(sb)}},
		{"signature as a map", [4][]byte{pb, ub, yb, emptyMap}},
		{"signature as an integer", [4][]byte{pb, ub, yb, cint(0)}},
		{"detached payload (null)", [4][]byte{pb, ub, cnull, sb}},
		{"protected header false", [4][]byte{cfalse, ub, yb, sb}},
	} {
		add(c.name, raw(c.items[:]...), verifier.ReasonBadCOSE)
	}
	// What the protected byte string holds.
	for _, c := range []struct {
		name string
		p    []byte
		want verifier.Reason
	}{
		{"empty protected header", nil, verifier.ReasonAlgNotProtected},
		{"protected header an empty map", emptyMap, verifier.ReasonAlgNotProtected},
		{"protected header holding an array", arr(cint(1), cint(algEdDSA)), verifier.ReasonBadCOSE},
		{"protected header holding an integer", cint(-8), verifier.ReasonBadCOSE},
		{"protected header holding text", tstr("EdDSA"), verifier.ReasonBadCOSE},
		{"protected header with a byte after the map", cat(b.p, []byte{0}), verifier.ReasonBadCBOR},
		{"protected header cut short", b.p[:len(b.p)-1], verifier.ReasonBadCBOR},
		{"protected header holding a break", []byte{0xff}, verifier.ReasonBadCBOR},
		{"protected header of two maps", cat(b.p, b.p), verifier.ReasonBadCBOR},
	} {
		add(c.name, signed(c.p, emptyMap), c.want)
	}
	// Where alg is.
	kidOnly := cmapRaw(cint(4), bstr(g.edKid))
	algEd := cmapRaw(cint(1), cint(algEdDSA))
	add("alg only in the unprotected header", signed(kidOnly, algEd), verifier.ReasonAlgNotProtected)
	add("alg in both headers", signed(b.p, algEd), verifier.ReasonAlgNotProtected)
	add("alg in both headers, different", signed(b.p, cmapRaw(cint(1), cint(algES256))), verifier.ReasonAlgNotProtected)
	add("alg in neither header", signed(kidOnly, emptyMap), verifier.ReasonAlgNotProtected)
	add("alg only unprotected, no kid anywhere", signed(nil, algEd), verifier.ReasonAlgNotProtected)
	add("alg unprotected with the kid", signed(nil, cmapRaw(cint(1), cint(algEdDSA), cint(4), bstr(g.edKid))), verifier.ReasonAlgNotProtected)
	add("protected alg null", signed(cmapRaw(cint(1), cnull, cint(4), bstr(g.edKid)), emptyMap), verifier.ReasonAlgNotProtected)
	add("alg under text label \"alg\"", signed(cmapRaw(tstr("alg"), cint(algEdDSA), cint(4), bstr(g.edKid)), emptyMap), verifier.ReasonAlgNotProtected)
	// Algorithms other than EdDSA and ES256.
	for _, a := range []int64{-35, -36, algPS256, -38, -39, -47, -257, -258, -259, -19, -9, -6, -25, -65535, 0, 1, 2, 3, 5, 8, 7, 26, math.MaxInt64, math.MinInt64} {
		p := prot(a, g.edKid)
		add(fmt.Sprintf("alg %d", a), signed(p, emptyMap), verifier.ReasonUnsupportedAlg)
	}
	for _, c := range []struct {
		name string
		alg  []byte
	}{
		{"alg as text \"EdDSA\"", tstr("EdDSA")}, {"alg as text \"-8\"", tstr("-8")}, {"alg as bytes", bstr([]byte{0x27})},
		{"alg as float -8.0", f16(0xc800)}, {"alg as an array", arr(cint(algEdDSA))}, {"alg as a map", cmapRaw(cint(1), cint(algEdDSA))},
		{"alg as true", ctrue}, {"alg 2^64-1", cuint(math.MaxUint64)}, {"alg -2^64", head(1, math.MaxUint64)},
	} {
		add(c.name, signed(cmapRaw(cint(1), c.alg, cint(4), bstr(g.edKid)), emptyMap), verifier.ReasonBadCOSE)
	}
	// crit: no critical extension is defined.
	withCrit := func(crit []byte, extra ...[]byte) []byte {
		return cmapRaw(append([][]byte{cint(1), cint(algEdDSA), cint(2), crit, cint(4), bstr(g.edKid)}, extra...)...)
	}
	add("crit naming kid", signed(withCrit(arr(cint(4))), emptyMap), verifier.ReasonBadCOSE)
	add("crit empty", signed(withCrit(arr()), emptyMap), verifier.ReasonBadCOSE)
	add("crit naming a label present", signed(withCrit(arr(cint(99)), cint(99), cint(1)), emptyMap), verifier.ReasonBadCOSE)
	add("crit naming a text label", signed(withCrit(arr(tstr("exp"))), emptyMap), verifier.ReasonBadCOSE)
	add("crit as an integer", signed(withCrit(cint(4)), emptyMap), verifier.ReasonBadCOSE)
	add("crit null", signed(withCrit(cnull), emptyMap), verifier.ReasonBadCOSE)
	add("crit in the unprotected header", signed(b.p, cmapRaw(cint(2), arr(cint(4)))), verifier.ReasonBadCOSE)
	add("crit in both headers", signed(withCrit(arr(cint(4))), cmapRaw(cint(2), arr(cint(4)))), verifier.ReasonBadCOSE)
	// kid: at most 32 bytes, bytes only.
	for _, n := range []int{33, 34, 64, 255, 1000, 4000} {
		long := bytes.Repeat([]byte{0x4b}, n)
		copy(long, g.edKid)
		add(fmt.Sprintf("protected kid of %d bytes", n), signed(prot(algEdDSA, long), emptyMap), verifier.ReasonBadCOSE)
		add(fmt.Sprintf("unprotected kid of %d bytes", n), signed(algEd, cmapRaw(cint(4), bstr(long))), verifier.ReasonBadCOSE)
	}
	for _, c := range []struct {
		name string
		kid  []byte
	}{
		{"kid as text", tstr(fmt.Sprintf("%x", g.edKid))}, {"kid as an integer", cint(4)}, {"kid as an array", arr(bstr(g.edKid))},
		{"kid as a map", cmapRaw(cint(4), bstr(g.edKid))}, {"kid as true", ctrue},
	} {
		add(c.name, signed(cmapRaw(cint(1), cint(algEdDSA), cint(4), c.kid), emptyMap), verifier.ReasonBadCOSE)
	}
	// kids the key set doesn't hold.
	rootKid := verifiertest.KidOf(verifiertest.EdKey(1).Public())
	for _, c := range []struct {
		name string
		p, u []byte
	}{
		{"no kid", algEd, emptyMap},
		{"empty kid", prot(algEdDSA, nil), emptyMap},
		{"kid null", cmapRaw(cint(1), cint(algEdDSA), cint(4), cnull), emptyMap},
		{"kid of zeros", prot(algEdDSA, make([]byte, 8)), emptyMap},
		{"kid with a byte added", prot(algEdDSA, cat(g.edKid, []byte{0})), emptyMap},
		{"kid with its last byte cut", prot(algEdDSA, g.edKid[:7]), emptyMap},
		{"kid with its first byte cut", prot(algEdDSA, g.edKid[1:]), emptyMap},
		{"kid with a bit flipped", prot(algEdDSA, flipBit(g.edKid, 63)), emptyMap},
		{"kid of 32 bytes", prot(algEdDSA, bytes.Repeat(g.edKid, 4)), emptyMap},
		{"kid of the root key", prot(algEdDSA, rootKid), emptyMap},
		{"kid of the DCC signer DE", prot(algEdDSA, g.de.Kid), emptyMap},
		{"wrong kid only unprotected", algEd, cmapRaw(cint(4), bstr(rootKid))},
		{"wrong protected kid beats the right unprotected one", prot(algEdDSA, rootKid), cmapRaw(cint(4), bstr(g.edKid))},
		{"kid as a hex string's bytes", prot(algEdDSA, []byte(fmt.Sprintf("%x", g.edKid))), emptyMap},
	} {
		add(c.name, signed(c.p, c.u), verifier.ReasonUnknownKid)
	}
	// Algorithm confusion: the header's alg is what the key must have.
	esHdrEdKid := prot(algES256, g.edKid)
	add("ES256 header over an Ed25519 signature", signed(esHdrEdKid, emptyMap), verifier.ReasonBadSignature)
	add("ES256 header swapped onto an Ed25519-signed message", sign1(esHdrEdKid, emptyMap, b.payload, b.sig), verifier.ReasonBadSignature)
	esHdrEsKidEdSig := prot(algES256, g.esKid)
	add("ES256 header and key id, Ed25519 signature", signed(esHdrEsKidEdSig, emptyMap), verifier.ReasonBadSignature)
	edHdrEsKid := prot(algEdDSA, g.esKid)
	add("EdDSA header over an ES256 signature", sign1(edHdrEsKid, emptyMap, b.payload, esSig(3, edHdrEsKid, b.payload)), verifier.ReasonBadSignature)
	add("EdDSA header and Ed25519 key id over an ES256 signature", sign1(b.p, emptyMap, b.payload, esSig(3, b.p, b.payload)), verifier.ReasonBadSignature)
	esP := prot(algES256, g.esKid)
	esMsgSig := esSig(3, esP, b.payload)
	add("EdDSA header swapped onto an ES256-signed message", sign1(prot(algEdDSA, g.esKid), emptyMap, b.payload, esMsgSig), verifier.ReasonBadSignature)
}
