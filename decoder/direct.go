package decoder

import (
	"math"
	"unicode/utf8"
)

// The direct decoders read the shapes Wicket issuers write, the COSE_Sign1
// of a voucher and its claims map, byte by byte with no reflection, in one
// pass that checks the CBOR rules as it goes. They accept a subset of what
// the general decoding (the CBOR library) accepts and give the same result
// on it; on anything else (a label or key they do not know, an empty byte
// string, an indefinite length, a duplicate key, a value of another type)
// they decline, and the general decoding decides and words the error.
// FuzzDirectSign1 and FuzzDirectClaims hold them to this.

// directBstr reads a definite-length byte string of at least one byte.
func directBstr(b []byte) (v, rest []byte, ok bool) {
	major, ai, n, b, err := head(b)
	if err != nil || major != 2 || ai == 31 || n == 0 || n > uint64(len(b)) {
		return nil, nil, false
	}
	return b[:n], b[n:], true
}

// directTstr reads a definite-length text string of valid UTF-8.
func directTstr(b []byte) (v string, rest []byte, ok bool) {
	major, ai, n, b, err := head(b)
	if err != nil || major != 3 || ai == 31 || n > uint64(len(b)) || !utf8.Valid(b[:n]) {
		return "", nil, false
	}
	return string(b[:n]), b[n:], true
}

// directInt reads an integer that fits an int64.
func directInt(b []byte) (v int64, rest []byte, ok bool) {
	major, ai, n, b, err := head(b)
	if err != nil || ai == 31 || n > math.MaxInt64 {
		return 0, nil, false
	}
	switch major {
	case 0:
		return int64(n), b, true
	case 1:
		return -1 - int64(n), b, true
	}
	return 0, nil, false
}

// directUint8 reads an unsigned integer of at most 255.
func directUint8(b []byte) (v uint8, rest []byte, ok bool) {
	major, ai, n, b, err := head(b)
	if err != nil || major != 0 || ai == 31 || n > math.MaxUint8 {
		return 0, nil, false
	}
	return uint8(n), b, true
}

// directMap reads the head of a definite-length map of fewer than 24
// pairs (every map the direct decoders read is that small).
func directMap(b []byte) (pairs int, rest []byte, ok bool) {
	if len(b) == 0 || b[0]>>5 != 5 || b[0]&0x1f >= 24 {
		return 0, nil, false
	}
	return int(b[0] & 0x1f), b[1:], true
}

// directHeader is a COSE header map of alg and kid alone.
type directHeader struct {
	alg            int64
	kid            []byte
	hasAlg, hasKid bool
}

// parse reads a header map with no label but alg (1) and kid (4), each
// at most once, and returns what follows it.
func (h *directHeader) parse(b []byte) ([]byte, bool) {
	pairs, b, ok := directMap(b)
	if !ok {
		return nil, false
	}
	for range pairs {
		if len(b) == 0 {
			return nil, false
		}
		label := b[0]
		switch {
		case label == labelAlg && !h.hasAlg:
			h.alg, b, ok = directInt(b[1:])
			h.hasAlg = true
		case label == labelKid && !h.hasKid:
			h.kid, b, ok = directBstr(b[1:])
			h.hasKid = true
		default:
			return nil, false
		}
		if !ok {
			return nil, false
		}
	}
	return b, true
}

// parseSign1Direct is parseSign1 for a tagged COSE_Sign1 whose headers
// hold nothing but alg (protected) and kid, and whose byte strings are
// not empty. It reports false, leaving dst as it was, on any other
// message. The slices of dst point into data.
func parseSign1Direct(dst *Sign1, data []byte) bool {
	if len(data) < 2 || data[0] != 0xd2 || data[1] != 0x84 {
		return false
	}
	var prot, unprot directHeader
	protected, b, ok := directBstr(data[2:])
	if !ok {
		return false
	}
	if b, ok = unprot.parse(b); !ok {
		return false
	}
	payload, b, ok := directBstr(b)
	if !ok {
		return false
	}
	sig, b, ok := directBstr(b)
	if !ok || len(b) != 0 {
		return false
	}
	if rest, ok := prot.parse(protected); !ok || len(rest) != 0 {
		return false
	}
	alg := Alg(prot.alg)
	if !prot.hasAlg || unprot.hasAlg || (alg != AlgEdDSA && alg != AlgES256 && alg != AlgPS256) {
		return false
	}
	kid := unprot.kid
	if prot.hasKid {
		kid = prot.kid
	}
	if len(kid) > MaxKidLen {
		return false
	}
	*dst = Sign1{Protected: protected, Alg: alg, Kid: kid, Payload: payload, Signature: sig}
	return true
}

// claimVoucherKey is the encoding of the key ClaimVoucher, -65537: a
// negative integer with a four-byte argument, 65536.
var claimVoucherKey = [5]byte{0x3a, 0x00, 0x01, 0x00, 0x00}

// parseClaimsDirect decodes a claims map as the strict decoding would,
// without checking the claims (Check does that). It reports false on a
// map it does not read; c may then be partly filled. The byte slices of
// c point into payload.
func parseClaimsDirect(c *Claims, payload []byte) bool {
	pairs, b, ok := directMap(payload)
	if !ok {
		return false
	}
	// The keys are 1 to 7 and the voucher's, which takes slot 8 of seen.
	const voucherSlot = 8
	var seen uint16
	for range pairs {
		if len(b) == 0 {
			return false
		}
		key := b[0]
		switch {
		case key == claimVoucherKey[0]:
			if len(b) < len(claimVoucherKey) || [5]byte(b) != claimVoucherKey {
				return false
			}
			key, b = voucherSlot, b[len(claimVoucherKey):]
		case key >= 1 && key <= 7:
			b = b[1:]
		default:
			return false
		}
		if seen&(1<<key) != 0 {
			return false
		}
		seen |= 1 << key
		switch key {
		case voucherSlot:
			b, ok = parseVoucherDirect(&c.Voucher, b)
		case 1:
			c.Issuer, b, ok = directTstr(b)
		case 4:
			c.Expiry, b, ok = directInt(b)
		case 5:
			c.NotBefore, b, ok = directInt(b)
		case 6:
			c.IssuedAt, b, ok = directInt(b)
		case 7:
			c.ID, b, ok = directBstr(b)
		default:
			return false
		}
		if !ok {
			return false
		}
	}
	return len(b) == 0
}

// parseVoucherDirect reads the voucher map and returns what follows it.
func parseVoucherDirect(v *Voucher, b []byte) ([]byte, bool) {
	pairs, b, ok := directMap(b)
	if !ok {
		return nil, false
	}
	var seen uint16
	for range pairs {
		if len(b) == 0 {
			return nil, false
		}
		key := b[0]
		if key < 1 || key > 8 || seen&(1<<key) != 0 {
			return nil, false
		}
		seen |= 1 << key
		b = b[1:]
		switch key {
		case 1:
			v.Version, b, ok = directUint8(b)
		case 2:
			v.Subject, b, ok = directBstr(b)
		case 3:
			var n uint8
			n, b, ok = directUint8(b)
			v.Colour = Colour(n)
		case 4:
			var n uint8
			n, b, ok = directUint8(b)
			v.Kind = Kind(n)
		case 5:
			var n uint8
			n, b, ok = directUint8(b)
			v.Class = Class(n)
		case 6:
			v.Name, b, ok = directTstr(b)
		case 7:
			v.Test = new(Test)
			b, ok = parseTestDirect(v.Test, b)
		case 8:
			v.Vaccination = new(Vaccination)
			b, ok = parseVaccinationDirect(v.Vaccination, b)
		}
		if !ok {
			return nil, false
		}
	}
	return b, true
}

// parseTestDirect reads [kind, result, sample time].
func parseTestDirect(t *Test, b []byte) ([]byte, bool) {
	if len(b) == 0 || b[0] != 0x83 {
		return nil, false
	}
	kind, b, ok := directUint8(b[1:])
	if !ok {
		return nil, false
	}
	result, b, ok := directUint8(b)
	if !ok {
		return nil, false
	}
	t.Kind, t.Result = TestKind(kind), TestResult(result)
	t.Sampled, b, ok = directInt(b)
	return b, ok
}

// parseVaccinationDirect reads [doses, time of the last dose].
func parseVaccinationDirect(d *Vaccination, b []byte) ([]byte, bool) {
	if len(b) == 0 || b[0] != 0x82 {
		return nil, false
	}
	doses, b, ok := directUint8(b[1:])
	if !ok {
		return nil, false
	}
	d.Doses = doses
	d.Last, b, ok = directInt(b)
	return b, ok
}
