package corpus

import (
	"fmt"
	"strings"

	"wicket/decoder"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// addOracle records a text mutation whose reason the text layers decide;
// a mutation that passes them is not recorded.
func (g *gen) addOracle(layer, name, text, prefix string) bool {
	r, _ := textLayers([]byte(text), prefix)
	if r == "" {
		return false
	}
	g.addText(layer, name, text, r)
	return true
}

// baseText is the Ed25519 dynamic code every text mutation starts from.
func (g *gen) baseText() string { return wk(g.edCOSE(dynClaims().enc())) }

func (g *gen) controls() {
	g.control("ed25519 dynamic code", g.baseText())
	g.control("es256 printed voucher", wk(g.esCOSE(printedClaims().enc())))
	g.control("es256 watch code", wk(g.esCOSE(kindClaims(3).enc())))
	g.control("printed-only key, printed voucher", wk(seedCOSE(verifiertest.SeedPrintedOnlyKey, printedClaims().enc())))
	g.control("dynamic-only key, dynamic code", wk(seedCOSE(verifiertest.SeedDynamicOnlyKey, dynClaims().enc())))
	payload := dynClaims().enc()
	p := cmapRaw(cint(1), cint(algEdDSA))
	g.control("kid in the unprotected header only", wk(sign1(p, cmapRaw(cint(4), bstr(g.edKid)), payload, edSig(2, p, payload))))
	g.control("dcc DE vaccination", hc(g.dccCOSE(g.de, g.dccPayload(dccCWT(), dccVacc(2, 2, "2026-03-01")))))
	g.control("dcc AT vaccination", hc(g.dccCOSE(g.at, g.dccPayload(dccCWT().set(1, tstr("AT")), dccVacc(2, 2, "2026-03-01")))))
	g.control("dcc DE test", hc(g.dccCOSE(g.de, g.dccPayload(dccCWT(), dccTestEntry("LP6464-4", "260415000", now.Add(-10*hour))))))
}

func (g *gen) lengthCases() {
	L := LayerLength
	base := g.baseText()
	g.addText(L, "empty text", "", verifier.ReasonEmpty)
	for _, n := range []int{maxText + 1, maxText + 2, maxText + 3, 5000, 8192} {
		g.addText(L, fmt.Sprintf("WK1 and zeros, %d characters", n), decoder.Prefix+strings.Repeat("0", n-4), verifier.ReasonTooLong)
	}
	g.addText(L, "valid code padded to 4297 characters", base+strings.Repeat("0", maxText+1-len(base)), verifier.ReasonTooLong)
	g.addText(L, "valid code padded to 4298 characters", base+strings.Repeat("0", maxText+2-len(base)), verifier.ReasonTooLong)
	g.addText(L, "valid code repeated to 4500 characters", (base + strings.Repeat(base, 40))[:4500], verifier.ReasonTooLong)
	g.addText(L, "lower-case letters, 4297 characters", decoder.Prefix+strings.Repeat("a", maxText-3), verifier.ReasonTooLong)
	g.addText(L, "HC1 and zeros, 4297 characters", "HC1:"+strings.Repeat("0", maxText-3), verifier.ReasonTooLong)
	g.addText(L, "HC1 and zeros, 6000 characters", "HC1:"+strings.Repeat("0", 6000), verifier.ReasonTooLong)
	g.addText(L, "control characters after WK1, 4400 characters", decoder.Prefix+strings.Repeat("\r\n\x00\x1b", 1099), verifier.ReasonTooLong)
	// Over the bound without a prefix.
	g.add(L, "5000 letters, no prefix", []byte(strings.Repeat("A", 5000)), verifier.ReasonTooLong)
	g.add(L, "two codes joined behind an AIM identifier", []byte("]Q1"+(base + strings.Repeat(base, 20))[:maxText+10]), verifier.ReasonTooLong)
	// At the bound the text layers run: zeros are a zlib header with a
	// compression method of 0.
	g.addOracle(L, "WK1 and zeros, exactly 4296 characters", decoder.Prefix+strings.Repeat("0", maxText-4), decoder.Prefix)
	g.addOracle(L, "WK1 and zeros, 4295 characters", decoder.Prefix+strings.Repeat("0", maxText-5), decoder.Prefix)
}

func (g *gen) prefixCases() {
	P := LayerPrefix
	base := g.baseText()
	body := base[len(decoder.Prefix):]
	for _, p := range []string{
		"wk1:", "Wk1:", "wK1:", "WK1;", "WK1.", "WK1", "WK1-", "WK2:", "WK0:", "WK9:", "WK:", "W1:", "K1:",
		"WK11:", "WKI:", "WKl:", "VK1:", "WK1 :", " WK1:", "WK 1:", "WK1：", "ＷＫ１：", "WК1:", "W\u200bK1:",
		"\ufeffWK1:", "hc1:", "Hc1:", "HC1", "HC2:", "HC0:", "LT1:", "NO1:", "DGC1:", "CH1:", "SHC:", "shc:/",
		"https://wicket.example/v?c=WK1:", "WK1%3A", "V1:",
	} {
		g.addText(P, fmt.Sprintf("prefix %q", p), p+body, verifier.ReasonBadPrefix)
	}
	g.addText(P, "no prefix, base45 only", body, verifier.ReasonBadPrefix)
	g.addText(P, "prefix only after the body", body+decoder.Prefix, verifier.ReasonBadPrefix)
	g.addText(P, "a URL", "https://wicket.example/", verifier.ReasonBadPrefix)
	g.addText(P, "a payment code", "https://qr.alipay.com/fkx12345abcdefghijkl", verifier.ReasonBadPrefix)
	g.addText(P, "a JSON document", `{"iss":"GX","colour":"green"}`, verifier.ReasonBadPrefix)
	g.addText(P, "a single W", "W", verifier.ReasonBadPrefix)
	g.addText(P, "WK1 without its colon", "WK1", verifier.ReasonBadPrefix)
	g.addText(P, "invalid UTF-8 before the prefix", "\xff\xfe"+base, verifier.ReasonBadPrefix)
	// Another profile's prefix on a valid body: the profile's own rules
	// refuse it.
	g.addText(P, "Ed25519 Wicket voucher relabelled HC1", "HC1:"+body, verifier.ReasonUnsupportedAlg)
	es := wk(g.esCOSE(printedClaims().enc()))
	g.addText(P, "ES256 Wicket voucher relabelled HC1", "HC1:"+es[4:], verifier.ReasonUnknownKid)
	dcc := hc(g.dccCOSE(g.de, g.dccPayload(dccCWT(), dccVacc(2, 2, "2026-03-01"))))
	g.addText(P, "DCC relabelled WK1", decoder.Prefix+dcc[4:], verifier.ReasonUnknownKid)
	g.addText(P, "DCC with lower-case hc1", "hc1:"+dcc[4:], verifier.ReasonBadPrefix)
}

func (g *gen) noiseCases() {
	N := LayerNoise
	base := g.baseText()
	body := base[len(decoder.Prefix):]
	mid := len(decoder.Prefix) + len(body)/2
	for _, n := range []struct{ name, s string }{
		{"CR", "\r"}, {"LF", "\n"}, {"CRLF", "\r\n"}, {"NUL", "\x00"}, {"ESC", "\x1b"}, {"TAB", "\t"},
		{"EOT", "\x04"}, {"ETX", "\x03"}, {"DEL", "\x7f"}, {"GS", "\x1d"}, {"RS", "\x1e"},
		{"ANSI reset", "\x1b[0m"}, {"NBSP", "\u00a0"}, {"BOM", "\ufeff"},
	} {
		g.addText(N, n.name+" before the code", n.s+base, verifier.ReasonBadPrefix)
		g.addText(N, n.name+" after the code", base+n.s, verifier.ReasonBadBase45)
		g.addText(N, n.name+" inside the base45", base[:mid]+n.s+base[mid:], verifier.ReasonBadBase45)
		g.addText(N, n.name+" right after the prefix", decoder.Prefix+n.s+body, verifier.ReasonBadBase45)
		g.addText(N, n.name+" inside the prefix", "WK"+n.s+"1:"+body, verifier.ReasonBadPrefix)
	}
	g.addText(N, "CR and LF around the code", "\r\n"+base+"\r\n", verifier.ReasonBadPrefix)
	g.addText(N, "NUL every 40 characters", insertEvery(base, 40, "\x00"), verifier.ReasonBadBase45)
	g.addText(N, "line breaks every 64 characters", insertEvery(base, 64, "\r\n"), verifier.ReasonBadBase45)
	// A space is in the base45 alphabet: a trailing one breaks the length
	// or the last group, never passes.
	g.addOracle(N, "one trailing space", base+" ", decoder.Prefix)
	g.addOracle(N, "two trailing spaces", base+"  ", decoder.Prefix)
	g.addOracle(N, "three trailing spaces", base+"   ", decoder.Prefix)
	g.addText(N, "leading space", " "+base, verifier.ReasonBadPrefix)
	for _, aim := range []string{"]Q1", "]Q0", "]Q2", "]Q3", "]Q6", "]d2", "]C0", "]E0", "]L2"} {
		g.addText(N, "AIM identifier "+aim+" left on", aim+base, verifier.ReasonBadPrefix)
	}
	g.addText(N, "AIM identifier ]Q1 after the code", base+"]Q1", verifier.ReasonBadBase45)
	g.addText(N, "AIM identifier ]Q1 and CR", "]Q1"+base+"\r", verifier.ReasonBadPrefix)
	g.addText(N, "AIM identifier ]Q1 after the prefix", decoder.Prefix+"]Q1"+body, verifier.ReasonBadBase45)
	g.addText(N, "two codes separated by CR", base+"\r"+base, verifier.ReasonBadBase45)
	g.addOracle(N, "two codes joined in one frame", base+base, decoder.Prefix)
	g.addOracle(N, "code joined to half of another", base+base[:len(base)/2], decoder.Prefix)
}

// insertEvery inserts sep after every n bytes of s.
func insertEvery(s string, n int, sep string) string {
	var b strings.Builder
	for i := 0; i < len(s); i += n {
		b.WriteString(s[i:min(i+n, len(s))])
		if i+n < len(s) {
			b.WriteString(sep)
		}
	}
	return b.String()
}

func (g *gen) base45Cases() {
	B := LayerBase45
	base := g.baseText()
	pre := decoder.Prefix
	body := base[len(pre):]
	L := len(body)
	positions := []int{0, 1, L / 3, L / 2, L - 2, L - 1}
	for _, c := range []string{"a", "z", "#", "_", ",", "~", "\x80", "\xff", "é"} {
		for _, p := range positions {
			t := pre + body[:p] + c + body[p+1:]
			g.addText(B, fmt.Sprintf("%q at offset %d", c, p), t, verifier.ReasonBadBase45)
		}
	}
	g.addText(B, "whole body in lower case", pre+strings.ToLower(body), verifier.ReasonBadBase45)
	g.addText(B, "prefix and body in lower case", strings.ToLower(base), verifier.ReasonBadPrefix)
	for i, p := range []int{L / 5, L / 3, L / 2, L - 3} {
		j := strings.IndexFunc(body[p:], func(r rune) bool { return r >= 'A' && r <= 'Z' })
		if j < 0 {
			continue
		}
		j += p
		g.addText(B, fmt.Sprintf("one letter lower-cased (%d)", i), pre+body[:j]+strings.ToLower(body[j:j+1])+body[j+1:], verifier.ReasonBadBase45)
	}
	// Groups over 65535 (three characters) and 255 (two).
	triplets := (L / 3)
	for _, grp := range []string{"GGW", "HGW", ":::", "0 W", "ZZZ", "00X", "::W", "$%Y"} {
		if b45Value(grp) <= 0xffff {
			panic("corpus: " + grp + " is not an overflow triplet")
		}
		for _, k := range []int{0, 1, triplets / 2, triplets - 1} {
			t := pre + body[:3*k] + grp + body[3*k+3:]
			g.addText(B, fmt.Sprintf("triplet %d set to %q (%d)", k, grp, b45Value(grp)), t, verifier.ReasonBadBase45)
		}
	}
	for _, pair := range []string{"V5", "::", "Z9", "06"} {
		if b45Value(pair) <= 0xff {
			panic("corpus: " + pair + " is not an overflow pair")
		}
		t := pre + body + pair
		if L%3 == 2 {
			t = pre + body[:L-2] + pair
		}
		g.addText(B, fmt.Sprintf("final pair %q (%d)", pair, b45Value(pair)), t, verifier.ReasonBadBase45)
	}
	// The largest group values that are allowed change the bytes, which
	// the zlib layer then refuses.
	g.addOracle(B, "triplet 1 set to FGW (65535)", pre+body[:3]+"FGW"+body[6:], pre)
	g.addOracle(B, "final pair U5 (255) added", pre+body+"U5", pre)
	// Lengths: a remainder of 1 modulo 3 is refused; other cuts leave a
	// broken zlib stream.
	for cut := 1; cut <= 9; cut++ {
		g.addOracle(B, fmt.Sprintf("last %d characters cut", cut), base[:len(base)-cut], pre)
	}
	for i := range 12 {
		n := 1 + g.rng.IntN(L-10)
		g.addOracle(B, fmt.Sprintf("body cut to %d characters (%d)", n, i), pre+body[:n], pre)
	}
	for _, extra := range []string{"0", "00", "000", "0000", "00000"} {
		g.addOracle(B, fmt.Sprintf("%d zeros appended", len(extra)), base+extra, pre)
	}
	g.addOracle(B, "prefix only", pre, pre)
	g.addOracle(B, "one character", pre+"0", pre)
	g.addOracle(B, "two characters", pre+"00", pre)
	g.addOracle(B, "three characters", pre+"000", pre)
	g.addOracle(B, "one character missing in the middle", pre+body[:L/2]+body[L/2+1:], pre)
	g.addOracle(B, "two characters swapped", pre+body[:L/2]+body[L/2+1:L/2+2]+body[L/2:L/2+1]+body[L/2+2:], pre)
}
