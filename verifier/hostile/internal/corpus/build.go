package corpus

import (
	"bytes"
	"compress/zlib"
	"io"
	"strings"
	"time"

	"wicket/decoder"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// Times are fixed relative to the gate's clock.
var now = verifiertest.Epoch

const (
	minute = time.Minute
	hour   = time.Hour
	day    = 24 * time.Hour
)

// at is the Unix time d from the gate's now.
func at(d time.Duration) int64 { return now.Add(d).Unix() }

// Fixed identifiers of the base vouchers.
var (
	cti     = []byte("hostile-voucher1") // 16 bytes
	subject = []byte("hostile-subject1") // 16 bytes
)

// COSE algorithm identifiers.
const (
	algEdDSA = -8
	algES256 = -7
	algPS256 = -37
)

// voucherMap is a valid voucher map (claim -65537) of a kind: green, adult,
// a masked name, a negative NAAT test 12 hours old, two doses.
func voucherMap(kind int64) omap {
	return omap{
		{cint(1), cint(1)},
		{cint(2), bstr(subject)},
		{cint(3), cint(1)},
		{cint(4), cint(kind)},
		{cint(5), cint(1)},
		{cint(6), tstr("张*明")},
		{cint(7), arr(cint(1), cint(0), cint(at(-12*hour)))},
		{cint(8), arr(cint(2), cint(at(-90*day)))},
	}
}

// claimsMap is a claims map of issuer GX with the times and voucher map
// given, in deterministic key order.
func claimsMap(iat, exp int64, vm omap) omap {
	return omap{
		{cint(1), tstr(verifiertest.Issuer)},
		{cint(4), cint(exp)},
		{cint(6), cint(iat)},
		{cint(7), bstr(cti)},
		{cint(-65537), vm.enc()},
	}
}

// dynClaims: a dynamic code issued a minute ago, valid five minutes.
func dynClaims() omap {
	iat := at(-minute)
	return claimsMap(iat, iat+300, voucherMap(1))
}

// printedClaims: a printed voucher issued an hour ago, valid 30 days.
func printedClaims() omap {
	iat := at(-hour)
	return claimsMap(iat, iat+30*86400, voucherMap(2))
}

// kindClaims: a valid voucher of a kind.
func kindClaims(kind int64) omap {
	if kind == 2 {
		return printedClaims()
	}
	c := dynClaims()
	return c.set(-65537, voucherMap(kind).enc())
}

// prot is a protected header {1: alg, 4: kid}.
func prot(alg int64, kid []byte) []byte {
	return cmapRaw(cint(1), cint(alg), cint(4), bstr(kid))
}

var emptyMap = []byte{0xa0}

func tbs(protected, payload []byte) []byte {
	return decoder.AppendToBeSigned(nil, protected, payload)
}

// edSig signs with the Ed25519 key of a seed.
func edSig(seed byte, protected, payload []byte) []byte {
	return verifiertest.SignEdDSA(seed, tbs(protected, payload))
}

// esSig signs with the P-256 key of a seed.
func esSig(seed byte, protected, payload []byte) []byte {
	return verifiertest.SignES256(verifiertest.ESKey(seed), tbs(protected, payload))
}

func sign1(protected, unprotected, payload, sig []byte) []byte {
	return decoder.AssembleSign1(protected, unprotected, payload, sig)
}

// edCOSE is payload signed by the gate's Ed25519 GX key (seed 02).
func (g *gen) edCOSE(payload []byte) []byte {
	p := prot(algEdDSA, g.edKid)
	return sign1(p, emptyMap, payload, edSig(2, p, payload))
}

// esCOSE is payload signed by the gate's P-256 GX key (seed 03).
func (g *gen) esCOSE(payload []byte) []byte {
	p := prot(algES256, g.esKid)
	return sign1(p, emptyMap, payload, esSig(3, p, payload))
}

// seedCOSE is payload signed by the Ed25519 key of seed under its own kid.
func seedCOSE(seed byte, payload []byte) []byte {
	p := prot(algEdDSA, verifiertest.KidOf(verifiertest.EdKey(seed).Public()))
	return sign1(p, emptyMap, payload, edSig(seed, p, payload))
}

func wk(cose []byte) string { return decoder.Wrap(decoder.Prefix, cose) }
func hc(cose []byte) string { return decoder.Wrap("HC1:", cose) }

// deflate is the zlib stream Wrap puts in a code.
func deflate(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// wkRaw is the text of a code whose zlib bytes are given.
func wkRaw(z []byte) string { return decoder.Prefix + decoder.Base45Encode(z) }

func flipBit(b []byte, bit int) []byte {
	out := bytes.Clone(b)
	out[bit/8] ^= 0x80 >> (bit % 8)
	return out
}

// The text layers as RFC 9285 and RFC 1950 define them, written
// independently of the decoder: the expected reason of a text mutation
// whose outcome depends on where it lands.

const (
	maxText    = 4296
	maxInflate = 16 << 10
	b45        = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
)

// textLayers returns the reason the text layers refuse text with, or ""
// and the inflated bytes.
func textLayers(text []byte, prefix string) (verifier.Reason, []byte) {
	switch {
	case len(text) == 0:
		return verifier.ReasonEmpty, nil
	case len(text) > maxText:
		return verifier.ReasonTooLong, nil
	case !bytes.HasPrefix(text, []byte(prefix)):
		return verifier.ReasonBadPrefix, nil
	}
	raw, ok := refBase45(text[len(prefix):])
	if !ok {
		return verifier.ReasonBadBase45, nil
	}
	return refInflate(raw)
}

func refBase45(s []byte) ([]byte, bool) {
	if len(s)%3 == 1 {
		return nil, false
	}
	val := func(c byte) int { return strings.IndexByte(b45, c) }
	var out []byte
	for i := 0; i < len(s); i += 3 {
		n := 0
		w := min(3, len(s)-i)
		for j := w - 1; j >= 0; j-- {
			v := val(s[i+j])
			if v < 0 {
				return nil, false
			}
			n = n*45 + v
		}
		if w == 3 {
			if n > 0xffff {
				return nil, false
			}
			out = append(out, byte(n>>8), byte(n))
		} else {
			if n > 0xff {
				return nil, false
			}
			out = append(out, byte(n))
		}
	}
	return out, true
}

func refInflate(z []byte) (verifier.Reason, []byte) {
	src := bytes.NewReader(z)
	zr, err := zlib.NewReader(src)
	if err != nil {
		return verifier.ReasonBadZlib, nil
	}
	var out bytes.Buffer
	n, err := io.CopyN(&out, zr, maxInflate+1)
	switch {
	case n > maxInflate:
		return verifier.ReasonTooLarge, nil
	case err != nil && err != io.EOF:
		return verifier.ReasonBadZlib, nil
	case src.Len() != 0:
		return verifier.ReasonBadZlib, nil
	}
	return "", out.Bytes()
}

// b45Value is the value of a base45 group (least significant first).
func b45Value(s string) int {
	n := 0
	for i := len(s) - 1; i >= 0; i-- {
		n = n*45 + strings.IndexByte(b45, s[i])
	}
	return n
}
