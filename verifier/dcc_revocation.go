package verifier

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"wicket/decoder"
)

// EU DCC revocation (the DCC gateway's revocation lists) and the keyed
// DCC subject pseudonym. Both are made once the signature is good: the
// revocation keys need the signer's kid and the signature, the pseudonym
// the gate's DCC pseudonym key.

// DCCHashType is how an EU revocation entry names a certificate. Each is
// the first 16 bytes of a SHA-256:
//   - UCI: of the certificate identifier (ci) as written;
//   - COUNTRYCODEUCI: of the CWT issuer claim (iss) followed by ci;
//   - SIGNATURE: of the COSE signature; for ES256 of its first half (r)
//     only, as ECDSA signatures can be changed in s without the key.
type DCCHashType byte

const (
	DCCHashSignature      DCCHashType = 1
	DCCHashUCI            DCCHashType = 2
	DCCHashCountryCodeUCI DCCHashType = 3
)

// dccHashOrder is the order a decision looks the hash types up in.
var dccHashOrder = [3]DCCHashType{DCCHashUCI, DCCHashCountryCodeUCI, DCCHashSignature}

// dccHashTypes are the gateway's names of the hash types.
var dccHashTypes = map[string]DCCHashType{
	"SIGNATURE": DCCHashSignature, "UCI": DCCHashUCI, "COUNTRYCODEUCI": DCCHashCountryCodeUCI,
}

func (h DCCHashType) String() string {
	for name, t := range dccHashTypes {
		if t == h {
			return name
		}
	}
	return fmt.Sprintf("hashType(%d)", byte(h))
}

// DCCRevocationHashLen is the length of an EU revocation hash.
const DCCRevocationHashLen = 16

// DCCRevocationID is the Wicket voucher id under which a DCC revocation
// entry is published and looked up: the first 16 bytes of
// SHA-256("wicket-dcc-revocation" ‖ 0 ‖ hash type ‖ len(kid) ‖ kid ‖ hash).
// An entry therefore revokes only certificates of the signer whose kid
// the EU list names, as the EU designed it.
func DCCRevocationID(t DCCHashType, kid, hash []byte) []byte {
	id := dccRevocationID(t, kid, hash)
	return id[:]
}

// dccRevocationDomain starts every DCC revocation id's hash input.
const dccRevocationDomain = "wicket-dcc-revocation\x00"

// dccRevocationID is DCCRevocationID on the stack (three per DCC decision).
func dccRevocationID(t DCCHashType, kid, hash []byte) [16]byte {
	var buf [len(dccRevocationDomain) + 2 + decoder.MaxKidLen + DCCRevocationHashLen]byte
	n := copy(buf[:], dccRevocationDomain)
	buf[n], buf[n+1] = byte(t), byte(len(kid))
	n += 2
	n += copy(buf[n:], kid[:min(len(kid), decoder.MaxKidLen)])
	n += copy(buf[n:], hash[:min(len(hash), DCCRevocationHashLen)])
	sum := sha256.Sum256(buf[:n])
	return [16]byte(sum[:16])
}

// DCCRevocationHash computes the EU revocation hash of one type from a
// certificate's identifier, iss claim, algorithm and signature.
func DCCRevocationHash(t DCCHashType, ci, iss string, alg decoder.Alg, sig []byte) []byte {
	var sum [32]byte
	switch t {
	case DCCHashUCI:
		sum = sha256.Sum256([]byte(ci))
	case DCCHashCountryCodeUCI:
		sum = sha256.Sum256([]byte(iss + ci))
	default:
		if alg == decoder.AlgES256 && len(sig) == 64 {
			sig = sig[:32]
		}
		sum = sha256.Sum256(sig)
	}
	return sum[:DCCRevocationHashLen]
}

// dccKeys is what a DCC's claims mapping leaves for the verifier: the
// certificate identifier and iss claim (revocation hashes) and an
// unkeyed digest of the holder's standardised name and birth date, which
// only ever leaves this package keyed (DCCPseudonym).
type dccKeys struct {
	ci, iss string
	holder  [32]byte
	// revocations are the Wicket ids of the certificate's EU revocation
	// entries, one per hash type (dccHashOrder).
	revocations [3][16]byte
}

// dccHolder is the digest the pseudonym is keyed over.
func dccHolder(fnt, gnt, dob string) [32]byte {
	return sha256.Sum256([]byte("wicket-dcc-holder\x00" + fnt + "\x00" + gnt + "\x00" + dob))
}

// MinDCCPseudonymKeyLen is the least length of a DCC pseudonym key.
const MinDCCPseudonymKeyLen = 32

// DCCPseudonym is the subject pseudonym of a DCC holder: the first 16
// bytes of HMAC-SHA-256(key, "wicket-dcc-subject-v2" ‖ 0 ‖
// SHA-256("wicket-dcc-holder" ‖ 0 ‖ fnt ‖ 0 ‖ gnt ‖ 0 ‖ dob)), over the
// standardised names and the birth date as written. Without the key, a
// pseudonym on the broker or in PostgreSQL cannot be tested against
// guessed names and birth dates.
func DCCPseudonym(key []byte, fnt, gnt, dob string) []byte {
	return dccPseudonym(key, dccHolder(fnt, gnt, dob))
}

func dccPseudonym(key []byte, holder [32]byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("wicket-dcc-subject-v2\x00"))
	m.Write(holder[:])
	return m.Sum(nil)[:16]
}

// SetDCCPseudonymKey gives the verifier the key of DCC subject pseudonyms
// (trust.dcc_pseudonym_key, provisioned by the authority at enrolment and
// the same on every gate of a fleet). Until it has one, every DCC is
// denied no_trust_data: without its pseudonym the gate cannot apply the
// holder's overrides. Safe to call while verifying.
func (v *Verifier) SetDCCPseudonymKey(key []byte) error {
	if len(key) < MinDCCPseudonymKeyLen {
		return fmt.Errorf("dcc pseudonym key of %d bytes, want at least %d", len(key), MinDCCPseudonymKeyLen)
	}
	k := append([]byte(nil), key...)
	v.dccKey.Store(&k)
	return nil
}

// dccFinish makes a verified DCC's subject pseudonym and EU revocation
// ids, once the signer (kid) and signature are known.
func (v *Verifier) dccFinish(env *decoder.Sign1, key *IssuerKey, in *Input) (Reason, string) {
	k := v.dccKey.Load()
	if k == nil {
		return ReasonNoTrustData, "no DCC pseudonym key (trust.dcc_pseudonym_key): holders' overrides cannot be applied"
	}
	in.Subject = dccPseudonym(*k, in.dcc.holder)
	for i, t := range dccHashOrder {
		hash := DCCRevocationHash(t, in.dcc.ci, in.dcc.iss, env.Alg, env.Signature)
		in.dcc.revocations[i] = dccRevocationID(t, key.Kid, hash)
	}
	return ReasonOK, ""
}

// dccRevoked looks a DCC's EU revocation ids up in the installed
// revocation data.
func (v *Verifier) dccRevoked(in *Input) (Reason, string) {
	if in.dcc == nil || v.status == nil {
		return ReasonOK, ""
	}
	for i := range in.dcc.revocations {
		st, err := v.status.Standing(in.dcc.revocations[i][:], nil)
		if err != nil {
			return ReasonInternal, "revocation lookup: " + err.Error()
		}
		if st.Revoked {
			return ReasonRevoked, "on an EU revocation list (" + dccHashOrder[i].String() + ")"
		}
	}
	return ReasonOK, ""
}

// DCCRevocationBatch is one batch of the DCC gateway's revocation lists:
// the hashes of one type revoking certificates of one signer (kid).
type DCCRevocationBatch struct {
	Country  string
	Expires  time.Time
	Kid      []byte
	HashType DCCHashType
	Hashes   [][]byte
}

// dccGatewayBatch is the gateway's JSON form of a batch.
type dccGatewayBatch struct {
	Country  string    `json:"country"`
	Expires  time.Time `json:"expires"`
	Kid      string    `json:"kid"`
	HashType string    `json:"hashType"`
	Entries  []struct {
		Hash string `json:"hash"`
	} `json:"entries"`
}

// ErrDCCRevocation: a revocation batch that cannot be read.
var ErrDCCRevocation = errors.New("dcc revocation batch")

// ParseDCCRevocationBatch reads one batch in the gateway's JSON form:
//
//	{"country": "AT", "expires": "2026-12-31T00:00:00Z", "kid": "base64",
//	 "hashType": "SIGNATURE", "entries": [{"hash": "base64 of 16 bytes"}]}
//
// Every entry must be a 16-byte hash (a longer one is cut to 16, as the
// gateway's lists are built from SHA-256 prefixes); the kid 1 to 32 bytes.
func ParseDCCRevocationBatch(data []byte) (*DCCRevocationBatch, error) {
	var g dccGatewayBatch
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDCCRevocation, err)
	}
	t, ok := dccHashTypes[strings.ToUpper(g.HashType)]
	if !ok {
		return nil, fmt.Errorf("%w: hashType %q (want SIGNATURE, UCI or COUNTRYCODEUCI)", ErrDCCRevocation, g.HashType)
	}
	kid, err := base64.StdEncoding.DecodeString(g.Kid)
	if err != nil || len(kid) == 0 || len(kid) > decoder.MaxKidLen {
		return nil, fmt.Errorf("%w: kid %q is not base64 of 1 to %d bytes", ErrDCCRevocation, g.Kid, decoder.MaxKidLen)
	}
	if g.Expires.IsZero() {
		return nil, fmt.Errorf("%w: no expires", ErrDCCRevocation)
	}
	if len(g.Entries) > decoder.MaxTrustListLen {
		return nil, fmt.Errorf("%w: %d entries, over %d", ErrDCCRevocation, len(g.Entries), decoder.MaxTrustListLen)
	}
	b := &DCCRevocationBatch{Country: strings.ToUpper(g.Country), Expires: g.Expires, Kid: kid, HashType: t}
	for i, e := range g.Entries {
		h, err := base64.StdEncoding.DecodeString(e.Hash)
		if err != nil || len(h) < DCCRevocationHashLen {
			return nil, fmt.Errorf("%w: entry %d: hash %q is not base64 of %d bytes", ErrDCCRevocation, i, e.Hash, DCCRevocationHashLen)
		}
		b.Hashes = append(b.Hashes, h[:DCCRevocationHashLen])
	}
	return b, nil
}

// IDs returns the Wicket voucher ids of the batch's entries
// (DCCRevocationID), ready for a signed revocation batch.
func (b *DCCRevocationBatch) IDs() [][]byte {
	ids := make([][]byte, len(b.Hashes))
	for i, h := range b.Hashes {
		ids[i] = DCCRevocationID(b.HashType, b.Kid, h)
	}
	return ids
}
