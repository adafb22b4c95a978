package verifier

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"math/big"

	"filippo.io/bigmod"
	"filippo.io/nistec"
)

// p256Order is n, the order of the P-256 group, for bigmod and math/big.
var (
	p256OrderInt = elliptic.P256().Params().N
	p256Order    = must(bigmod.NewModulus(p256OrderInt.Bytes()))
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// p256Key is a P-256 public key parsed once, when the key set is read.
// ecdsa.VerifyASN1 converts the key's coordinates into an encoded point
// and parses it, twice, on every call, and inverts s in constant time
// (a secret's inversion when signing, public data when verifying): the
// two together are about 6% of the instructions of a verification
// (docs/BENCHMARKS.md).
type p256Key struct {
	pub *ecdsa.PublicKey
	// q is the point of pub, nil if pub is not a P-256 point: such a key
	// verifies nothing, as with crypto/ecdsa.
	q *nistec.P256Point
}

// newP256Key parses pub's point.
func newP256Key(pub *ecdsa.PublicKey) *p256Key {
	k := &p256Key{pub: pub}
	if pub.Curve != elliptic.P256() {
		return k
	}
	raw, err := pub.Bytes()
	if err != nil || len(raw) != 65 || raw[0] != 4 {
		return k
	}
	if q, err := nistec.NewP256Point().SetBytes(raw); err == nil {
		k.q = q
	}
	return k
}

// verify checks a COSE ES256 signature, r and s as 32 bytes each (RFC
// 9053 section 2.1), over msg. It is the verification of crypto/ecdsa
// (FIPS 186-5 section 6.4.2, as crypto/internal/fips140/ecdsa does it,
// on the same nistec and bigmod code) on the parsed point, with s
// inverted by math/big: s is public, so the inversion need not be
// constant-time. r and s must lie in [1, n-1].
func (k *p256Key) verify(msg, sig []byte) bool {
	if k.q == nil || len(sig) != 64 {
		return false
	}
	r, err := bigmod.NewNat().SetBytes(sig[:32], p256Order)
	if err != nil || r.IsZero() == 1 {
		return false
	}
	s, err := bigmod.NewNat().SetBytes(sig[32:], p256Order)
	if err != nil || s.IsZero() == 1 {
		return false
	}
	// A SHA-256 digest is as long as n: all of it is the integer e,
	// reduced modulo n (FIPS 186-5 section 6.4.1, point 2).
	sum := sha256.Sum256(msg)
	e, err := bigmod.NewNat().SetOverflowingBytes(sum[:], p256Order)
	if err != nil {
		return false
	}
	// w = s⁻¹ mod n; n is prime and 0 < s < n, so it exists.
	var si, wi big.Int
	if wi.ModInverse(si.SetBytes(sig[32:]), p256OrderInt) == nil {
		return false
	}
	var wb [32]byte
	w, err := bigmod.NewNat().SetBytes(wi.FillBytes(wb[:]), p256Order)
	if err != nil {
		return false
	}
	// R = [e·w]G + [r·w]Q; its x modulo n must be r.
	p1, err := nistec.NewP256Point().ScalarBaseMult(e.Mul(w, p256Order).Bytes(p256Order))
	if err != nil {
		return false
	}
	p2, err := nistec.NewP256Point().ScalarMult(k.q, w.Mul(r, p256Order).Bytes(p256Order))
	if err != nil {
		return false
	}
	// BytesX fails on the point at infinity.
	x, err := p1.Add(p1, p2).BytesX()
	if err != nil {
		return false
	}
	v, err := bigmod.NewNat().SetOverflowingBytes(x, p256Order)
	return err == nil && v.Equal(r) == 1
}
