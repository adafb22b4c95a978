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
	ec  *p256Key
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
		k.ec = newP256Key(p)
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
	return k.ec.pub
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
	b, _ := k.ec.pub.ECDH()
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
		return PublicKey{Alg: alg, Kid: kid, ec: newP256Key(pub)}, nil
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
// allocate for Ed25519. Ed25519 and P-256 keys were parsed when the key
// was made (ed25519.go, p256.go).
func (k PublicKey) Verify(alg decoder.Alg, tbs, sig []byte) bool {
	if alg != k.Alg {
		return false
	}
	switch alg {
	case decoder.AlgEdDSA:
		return k.ed.verify(tbs, sig)
	case decoder.AlgES256:
		return k.ec.verify(tbs, sig)
	case decoder.AlgPS256:
		sum := sha256.Sum256(tbs)
		return rsa.VerifyPSS(k.rsa, crypto.SHA256, sum[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
	}
	return false
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
