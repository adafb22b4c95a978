package decoder

import (
	"bytes"
	"compress/zlib"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
)

// Signer makes COSE_Sign1 signatures with one private key.
type Signer struct {
	alg  Alg
	kid  []byte
	key  crypto.Signer
	rand io.Reader
}

// NewSigner wraps an Ed25519 or P-256 private key. The kid is KeyID of its
// public key unless kid is non-nil.
func NewSigner(key crypto.Signer, kid []byte) (*Signer, error) {
	alg, err := AlgOf(key.Public())
	if err != nil {
		return nil, err
	}
	if kid == nil {
		if kid, err = KeyID(key.Public()); err != nil {
			return nil, err
		}
	}
	return &Signer{alg: alg, kid: kid, key: key, rand: rand.Reader}, nil
}

// Alg and Kid describe the signer.
func (s *Signer) Alg() Alg    { return s.alg }
func (s *Signer) Kid() []byte { return s.kid }

// AlgOf returns the COSE algorithm for a public key.
func AlgOf(pub crypto.PublicKey) (Alg, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return AlgEdDSA, nil
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return AlgES256, nil
		}
	}
	return 0, fmt.Errorf("%w: key type %T", ErrUnsupportedAlg, pub)
}

// KeyID is the format's key id: the first 8 bytes of the SHA-256 of the
// public key's DER SubjectPublicKeyInfo.
func KeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("key id: %w", err)
	}
	sum := sha256.Sum256(der)
	return sum[:8], nil
}

// Sign signs the Sig_structure bytes. ES256 signatures are r||s, 32 bytes
// each, as RFC 9053 requires (not ASN.1).
func (s *Signer) Sign(tbs []byte) ([]byte, error) {
	switch k := s.key.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(k, tbs), nil
	case *ecdsa.PrivateKey:
		sum := sha256.Sum256(tbs)
		r, ss, err := ecdsa.Sign(s.rand, k, sum[:])
		if err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		ss.FillBytes(sig[32:])
		return sig, nil
	}
	return nil, fmt.Errorf("%w: key type %T", ErrUnsupportedAlg, s.key)
}

// ProtectedHeader serializes {1: alg, 4: kid} canonically.
func ProtectedHeader(alg Alg, kid []byte) []byte {
	b, err := canonical.Marshal(header{Alg: ptr(int64(alg)), Kid: kid})
	if err != nil {
		panic(err) // a fixed struct of an int and bytes always encodes
	}
	return b
}

func ptr[T any](v T) *T { return &v }

// EncodeSign1 builds a tagged COSE_Sign1 with alg and kid in the protected
// header and an empty unprotected header.
func (s *Signer) EncodeSign1(payload []byte) ([]byte, error) {
	return s.EncodeSign1Headers(ProtectedHeader(s.alg, s.kid), []byte{0xa0}, payload)
}

// EncodeSign1Headers builds a tagged COSE_Sign1 from serialized headers
// as given: tests and test vectors use it to build unusual messages.
func (s *Signer) EncodeSign1Headers(protected, unprotected, payload []byte) ([]byte, error) {
	sig, err := s.Sign(AppendToBeSigned(nil, protected, payload))
	if err != nil {
		return nil, err
	}
	return AssembleSign1(protected, unprotected, payload, sig), nil
}

// AssembleSign1 serializes 18([protected, unprotected, payload, signature]);
// unprotected must be a serialized CBOR map.
func AssembleSign1(protected, unprotected, payload, sig []byte) []byte {
	out := []byte{0xd2, 0x84}
	out = appendBstr(out, protected)
	out = append(out, unprotected...)
	out = appendBstr(out, payload)
	return appendBstr(out, sig)
}

// Wrap compresses a COSE message with zlib at the best level, encodes it
// as base45 and puts the prefix in front.
func Wrap(prefix string, cose []byte) string {
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	w.Write(cose)
	w.Close()
	return prefix + Base45Encode(buf.Bytes())
}

// Issue signs the claims and returns the voucher's text. The claims are
// checked first, so an issuer can't make a voucher every gate refuses.
func Issue(s *Signer, c *Claims) (string, error) {
	if err := c.Check(); err != nil {
		return "", err
	}
	payload, err := canonical.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	cose, err := s.EncodeSign1(payload)
	if err != nil {
		return "", err
	}
	return Wrap(Prefix, cose), nil
}
