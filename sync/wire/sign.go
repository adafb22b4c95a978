package wire

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// Signed messages (wire version 2). Records batches and status messages
// are signed by their gate, acks by the collector that stored the
// records, each with its own Ed25519 key enrolled in the fleet's roster
// (verifier.Roster). The body is the JSON of version 1 (Records, Ack,
// Status), carried byte for byte, so the signature covers exactly what
// the receiver parses:
//
//	{"v":2,"signer":"G1","body":{...},"sig":"base64"}
//
// The signature is Ed25519 over "wicket/<kind>/v2", NUL, the fleet, NUL,
// the signer, NUL and the body bytes: a signature of one kind, fleet or
// signer never verifies as another's.
const SignedVersion = 2

// Kinds of signed messages.
const (
	KindRecords = "records"
	KindAck     = "ack"
	KindStatus  = "status"
)

// Errors of signed messages.
var (
	// ErrUnsigned: a message without a version 2 envelope.
	ErrUnsigned = errors.New("message not signed")
	// ErrSignature: the signature does not verify with the signer's
	// enrolled key, or the signer is not enrolled in that role.
	ErrSignature = errors.New("bad signature or signer not enrolled")
)

// Signed is the envelope of a signed message.
type Signed struct {
	V      int             `json:"v"`
	Signer string          `json:"signer"`
	Body   json.RawMessage `json:"body"`
	Sig    []byte          `json:"sig"`
}

// signedBytes is what the signature covers.
func signedBytes(kind, fleet, signer string, body []byte) []byte {
	b := make([]byte, 0, 16+len(kind)+len(fleet)+len(signer)+len(body))
	b = append(b, "wicket/"+kind+"/v2\x00"...)
	b = append(b, fleet...)
	b = append(b, 0)
	b = append(b, signer...)
	b = append(b, 0)
	return append(b, body...)
}

// Sign marshals body as JSON and wraps it, signed by signer with key.
func Sign(kind, fleet, signer string, key ed25519.PrivateKey, body any) ([]byte, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", kind, err)
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("sign %s: no Ed25519 key", kind)
	}
	sig := ed25519.Sign(key, signedBytes(kind, fleet, signer, raw))
	return json.Marshal(Signed{V: SignedVersion, Signer: signer, Body: raw, Sig: sig})
}

// Open parses the envelope of a signed message of at most MaxMessage
// bytes, without checking the signature: the receiver looks the signer
// up first, then calls Verify.
//
// The body is not parsed here: the receiver decodes it after Verify, and
// acts only on what the signer signed.
func Open(payload []byte) (*Signed, error) {
	if len(payload) > MaxMessage {
		return nil, fmt.Errorf("message of %d bytes, over %d", len(payload), MaxMessage)
	}
	s, ok := openAsSigned(payload)
	if !ok {
		if err := json.Unmarshal(payload, &s); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnsigned, err)
		}
	}
	if s.V != SignedVersion || len(s.Body) == 0 || len(s.Sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: want version %d with a body and a signature", ErrUnsigned, SignedVersion)
	}
	if err := ValidName(s.Signer); err != nil {
		return nil, fmt.Errorf("%w: signer %w", ErrUnsigned, err)
	}
	return &s, nil
}

// openAsSigned reads an envelope in the exact form Sign writes,
// {"v":2,"signer":"S","body":B,"sig":"X"}, without a JSON pass over the
// body (which the receiver decodes anyway); ok is false for any other
// form, which Open then parses in full. Whatever it extracts is used
// only if the signature over exactly those body bytes verifies.
func openAsSigned(p []byte) (s Signed, ok bool) {
	rest, ok := bytes.CutPrefix(p, []byte(`{"v":2,"signer":"`))
	if !ok {
		return s, false
	}
	i := bytes.IndexByte(rest, '"')
	if i < 0 || bytes.IndexByte(rest[:i], '\\') >= 0 {
		return s, false
	}
	signer := rest[:i]
	if rest, ok = bytes.CutPrefix(rest[i+1:], []byte(`,"body":`)); !ok {
		return s, false
	}
	j := bytes.LastIndex(rest, []byte(`,"sig":"`))
	if j < 0 {
		return s, false
	}
	b64, ok := bytes.CutSuffix(rest[j+len(`,"sig":"`):], []byte(`"}`))
	if !ok {
		return s, false
	}
	sig, err := base64.StdEncoding.DecodeString(string(b64))
	if err != nil {
		return s, false
	}
	return Signed{V: SignedVersion, Signer: string(signer), Body: rest[:j], Sig: sig}, true
}

// Verify checks the signature of a kind of message in a fleet with the
// signer's public key; a nil key (signer not enrolled) never verifies.
func (s *Signed) Verify(kind, fleet string, pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, signedBytes(kind, fleet, s.Signer, s.Body), s.Sig) {
		return fmt.Errorf("%w: %s of %q", ErrSignature, kind, s.Signer)
	}
	return nil
}

// OpenStatus reads a status message. A signed one comes with its
// envelope, for the caller to Verify against the roster; an unsigned one
// (a gate without an identity key, or anybody else) comes with a nil
// envelope and must be shown as unverified.
func OpenStatus(payload []byte) (Status, *Signed, error) {
	var st Status
	sm, err := Open(payload)
	body := payload
	if err == nil {
		body = sm.Body
	} else if len(payload) > MaxMessage {
		return st, nil, err
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, nil, fmt.Errorf("status message: %w", err)
	}
	return st, sm, nil
}
