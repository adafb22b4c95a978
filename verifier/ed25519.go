package verifier

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"

	"filippo.io/edwards25519"
)

// edKey is an Ed25519 public key decoded once, when the key set is read:
// crypto/ed25519.Verify decodes (decompresses) the key's point again on
// every call, about a twentieth of a verification.
type edKey struct {
	pub ed25519.PublicKey
	// minusA is the negated point of pub, valid only if ok.
	minusA edwards25519.Point
	// ok: pub is the encoding of a point. A key that is not verifies
	// nothing, as with crypto/ed25519.
	ok bool
}

// newEdKey decodes a 32-byte Ed25519 public key.
func newEdKey(pub []byte) *edKey {
	k := &edKey{pub: ed25519.PublicKey(bytes.Clone(pub))}
	var a edwards25519.Point
	if len(pub) == ed25519.PublicKeySize {
		if _, err := a.SetBytes(pub); err == nil {
			k.minusA.Negate(&a)
			k.ok = true
		}
	}
	return k
}

// verify is crypto/ed25519.Verify on the decoded key, step by step as
// crypto/ed25519 does it (RFC 8032 section 5.1.7, with the cofactorless
// equation [S]B = R + [k]A checked on encodings): S must be canonical
// (below the group order), R is compared as bytes, so a non-canonical R
// never verifies, and a key's non-canonical encoding is hashed as given.
func (k *edKey) verify(msg, sig []byte) bool {
	if !k.ok || len(sig) != ed25519.SignatureSize || sig[63]&224 != 0 {
		return false
	}
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(k.pub)
	h.Write(msg)
	var digest [sha512.Size]byte
	kh, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(digest[:0]))
	if err != nil {
		return false
	}
	s, err := edwards25519.NewScalar().SetCanonicalBytes(sig[32:])
	if err != nil {
		return false
	}
	// [S]B = R + [k]A  <=>  [k](-A) + [S]B = R
	var r edwards25519.Point
	r.VarTimeDoubleScalarBaseMult(kh, &k.minusA, s)
	return bytes.Equal(sig[:32], r.Bytes())
}
