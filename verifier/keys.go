package verifier

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"wicket/decoder"
)

// PublicKey is a verification key with its COSE algorithm.
type PublicKey struct {
	Alg decoder.Alg
	Kid []byte
	ed  *edKey
	ec  *ecdsa.PublicKey
	rsa *rsa.PublicKey
}

// minRSABits is the smallest RSA key accepted for PS256 (EU DCC signers
// use 2048 to 4096 bits).
const minRSABits = 2048

// NewPublicKey wraps an Ed25519, P-256 or RSA (PS256) public key; kid nil
// means decoder.KeyID of the key (not defined for RSA keys).
func NewPublicKey(pub crypto.PublicKey, kid []byte) (PublicKey, error) {
	if r, ok := pub.(*rsa.PublicKey); ok {
		if r.N.BitLen() < minRSABits {
			return PublicKey{}, fmt.Errorf("RSA key of %d bits, want at least %d", r.N.BitLen(), minRSABits)
		}
		if kid == nil {
			return PublicKey{}, errors.New("an RSA key needs an explicit kid")
		}
		return PublicKey{Alg: decoder.AlgPS256, Kid: kid, rsa: r}, nil
	}
	alg, err := decoder.AlgOf(pub)
	if err != nil {
		return PublicKey{}, err
	}
	if kid == nil {
		if kid, err = decoder.KeyID(pub); err != nil {
			return PublicKey{}, err
		}
	}
	k := PublicKey{Alg: alg, Kid: kid}
	switch p := pub.(type) {
	case ed25519.PublicKey:
		k.ed = newEdKey(p)
	case *ecdsa.PublicKey:
		k.ec = p
	}
	return k, nil
}

// Public returns the crypto.PublicKey.
func (k PublicKey) Public() crypto.PublicKey {
	switch {
	case k.ed != nil:
		return k.ed.pub
	case k.rsa != nil:
		return k.rsa
	}
	return k.ec
}

// Raw returns the key as the key set stores it: 32 bytes for Ed25519, the
// 65-byte uncompressed SEC 1 point for P-256, PKIX DER for RSA.
func (k PublicKey) Raw() []byte {
	if k.ed != nil {
		return bytes.Clone(k.ed.pub)
	}
	if k.rsa != nil {
		der, _ := x509.MarshalPKIXPublicKey(k.rsa)
		return der
	}
	b, _ := k.ec.ECDH()
	return b.Bytes()
}

// parseRawKey is the inverse of Raw.
func parseRawKey(alg decoder.Alg, raw, kid []byte) (PublicKey, error) {
	switch alg {
	case decoder.AlgEdDSA:
		if len(raw) != ed25519.PublicKeySize {
			return PublicKey{}, fmt.Errorf("Ed25519 key of %d bytes, want 32", len(raw))
		}
		return PublicKey{Alg: alg, Kid: kid, ed: newEdKey(raw)}, nil
	case decoder.AlgES256:
		if len(raw) != 65 || raw[0] != 4 {
			return PublicKey{}, errors.New("ES256 key must be a 65-byte uncompressed point")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
		if err != nil {
			return PublicKey{}, fmt.Errorf("ES256 key not on curve: %w", err)
		}
		return PublicKey{Alg: alg, Kid: kid, ec: pub}, nil
	case decoder.AlgPS256:
		pub, err := x509.ParsePKIXPublicKey(raw)
		if err != nil {
			return PublicKey{}, fmt.Errorf("PS256 key: %w", err)
		}
		if _, ok := pub.(*rsa.PublicKey); !ok {
			return PublicKey{}, fmt.Errorf("PS256 key is a %T, want RSA", pub)
		}
		return NewPublicKey(pub, kid)
	}
	return PublicKey{}, fmt.Errorf("%w: %v", decoder.ErrUnsupportedAlg, alg)
}

// Verify checks a signature over the to-be-signed bytes. It does not
// allocate for Ed25519.
func (k PublicKey) Verify(alg decoder.Alg, tbs, sig []byte) bool {
	if alg != k.Alg {
		return false
	}
	switch alg {
	case decoder.AlgEdDSA:
		return k.ed.verify(tbs, sig)
	case decoder.AlgES256:
		if len(sig) != 64 {
			return false
		}
		sum := sha256.Sum256(tbs)
		var der [2 + 2*35]byte
		return ecdsa.VerifyASN1(k.ec, sum[:], appendASN1Signature(der[:0], sig[:32], sig[32:]))
	case decoder.AlgPS256:
		sum := sha256.Sum256(tbs)
		return rsa.VerifyPSS(k.rsa, crypto.SHA256, sum[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
	}
	return false
}

// appendASN1Signature appends the ASN.1 SEQUENCE of two INTEGERs that
// ecdsa.VerifyASN1 reads, from the unsigned big-endian r and s of a COSE
// signature (RFC 9053 section 2.1), without the big.Int round trip of
// ecdsa.Verify. Zero (a signature no key verifies) encodes as the INTEGER 0.
func appendASN1Signature(dst, r, s []byte) []byte {
	integer := func(dst, v []byte) []byte {
		v = bytes.TrimLeft(v, "\x00")
		if len(v) == 0 || v[0]&0x80 != 0 {
			dst = append(dst, 0x02, byte(len(v)+1), 0)
		} else {
			dst = append(dst, 0x02, byte(len(v)))
		}
		return append(dst, v...)
	}
	start := len(dst)
	dst = append(dst, 0x30, 0)
	dst = integer(dst, r)
	dst = integer(dst, s)
	dst[start+1] = byte(len(dst) - start - 2)
	return dst
}

// ReadPublicKeyFile reads a PEM "PUBLIC KEY" (PKIX) file.
func ReadPublicKeyFile(path string) (PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return PublicKey{}, err
	}
	return ParsePublicKeyPEM(b)
}

// ParsePublicKeyPEM parses a PEM "PUBLIC KEY" block.
func ParsePublicKeyPEM(b []byte) (PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return PublicKey{}, errors.New("not a PEM PUBLIC KEY")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return PublicKey{}, fmt.Errorf("parse public key: %w", err)
	}
	return NewPublicKey(pub, nil)
}
