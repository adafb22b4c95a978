package verifier

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"wicket/decoder"
)

// Role is what an enrolled member of a fleet does.
type Role uint8

const (
	// RoleGate signs its records batches and status messages.
	RoleGate Role = 1
	// RoleCollector signs acks of records it stored.
	RoleCollector Role = 2
)

func (r Role) String() string {
	switch r {
	case RoleGate:
		return "gate"
	case RoleCollector:
		return "collector"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// ParseRole reads "gate" or "collector".
func ParseRole(s string) (Role, error) {
	switch s {
	case "gate":
		return RoleGate, nil
	case "collector":
		return RoleCollector, nil
	}
	return 0, fmt.Errorf("role %q: want gate or collector", s)
}

// Roster limits.
const (
	// MaxRosterMembers bounds one roster: a fleet of ten thousand gates
	// and their collectors, about 1 MB signed, far below MaxTrustDocLen.
	MaxRosterMembers = 16384
	// maxMemberName bounds ids, venues and stations: the 64 bytes a
	// fleet or gate id may have in a topic (wire.ValidName).
	maxMemberName = 64
)

// rosterDoc is the signed payload of a roster (document type 3).
type rosterDoc struct {
	Type     int            `cbor:"1,keyasint"`
	Version  uint64         `cbor:"2,keyasint"`
	IssuedAt int64          `cbor:"3,keyasint"`
	Members  []rosterMember `cbor:"4,keyasint"`
}

type rosterMember struct {
	ID      string `cbor:"1,keyasint"`
	Venue   string `cbor:"2,keyasint,omitempty"`
	Station string `cbor:"3,keyasint,omitempty"`
	Role    Role   `cbor:"4,keyasint"`
	Key     []byte `cbor:"5,keyasint"`
}

// Member is one enrolled gate or collector: its fleet id, where it
// stands, what it does and the Ed25519 public key it signs with (made on
// the device, the private key never leaves it).
type Member struct {
	ID      string
	Venue   string
	Station string
	Role    Role
	Key     ed25519.PublicKey
}

// Roster is a verified roster: the gates and collectors of a fleet.
type Roster struct {
	Version  uint64
	IssuedAt time.Time
	Members  []Member
	byID     map[string]*Member
}

// Key returns the public key of the member with the id and role, or nil
// when no such member is enrolled. A nil roster has no members.
func (r *Roster) Key(id string, role Role) ed25519.PublicKey {
	if r == nil {
		return nil
	}
	if m := r.byID[id]; m != nil && m.Role == role {
		return m.Key
	}
	return nil
}

// Member returns the member with the id, or nil.
func (r *Roster) Member(id string) *Member {
	if r == nil {
		return nil
	}
	return r.byID[id]
}

// checkMember checks one member's fields.
func checkMember(m *Member) error {
	for _, f := range []struct{ name, v string }{{"id", m.ID}, {"venue", m.Venue}, {"station", m.Station}} {
		if len(f.v) > maxMemberName || strings.ContainsAny(f.v, "/+#$ \x00") {
			return fmt.Errorf("%s %q: at most %d bytes, without / + # $ or spaces", f.name, f.v, maxMemberName)
		}
	}
	switch {
	case m.ID == "":
		return errors.New("empty id")
	case m.Role != RoleGate && m.Role != RoleCollector:
		return fmt.Errorf("id %s: %v is not gate or collector", m.ID, m.Role)
	case len(m.Key) != ed25519.PublicKeySize:
		return fmt.Errorf("id %s: key of %d bytes, want an Ed25519 key of %d", m.ID, len(m.Key), ed25519.PublicKeySize)
	}
	return nil
}

// newRoster checks members and indexes them by id.
func newRoster(version uint64, issued time.Time, members []Member) (*Roster, error) {
	if len(members) > MaxRosterMembers {
		return nil, fmt.Errorf("%d members, over %d", len(members), MaxRosterMembers)
	}
	r := &Roster{Version: version, IssuedAt: issued, Members: members, byID: make(map[string]*Member, len(members))}
	for i := range r.Members {
		m := &r.Members[i]
		if err := checkMember(m); err != nil {
			return nil, fmt.Errorf("member %d: %w", i, err)
		}
		if r.byID[m.ID] != nil {
			return nil, fmt.Errorf("member %d: id %s enrolled twice", i, m.ID)
		}
		r.byID[m.ID] = m
	}
	return r, nil
}

// ParseRoster verifies and parses a signed roster. It does not check the
// version against an installed one.
func (roots RootKeys) ParseRoster(data []byte) (*Roster, error) {
	msg, err := roots.openDoc(data)
	if err != nil {
		return nil, err
	}
	var doc rosterDoc
	if err := decoder.StrictUnmarshalTrust(msg.Payload, &doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTrustFormat, err)
	}
	if doc.Type != docRoster {
		return nil, fmt.Errorf("%w: type %d is not a roster", ErrTrustFormat, doc.Type)
	}
	if doc.Version == 0 || doc.IssuedAt <= 0 {
		return nil, fmt.Errorf("%w: version and issued-at are required", ErrTrustFormat)
	}
	members := make([]Member, len(doc.Members))
	for i, m := range doc.Members {
		members[i] = Member{ID: m.ID, Venue: m.Venue, Station: m.Station, Role: m.Role, Key: m.Key}
	}
	r, err := newRoster(doc.Version, time.Unix(doc.IssuedAt, 0), members)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTrustFormat, err)
	}
	return r, nil
}

// RosterSpec is what the authority signs into a roster.
type RosterSpec struct {
	Version  uint64
	IssuedAt time.Time
	Members  []Member
}

// Sign checks and signs a roster with a root signer.
func (s RosterSpec) Sign(root *decoder.Signer) ([]byte, error) {
	if s.Version == 0 || s.IssuedAt.Unix() <= 0 {
		return nil, errors.New("roster needs a version and an issued-at")
	}
	if _, err := newRoster(s.Version, s.IssuedAt, s.Members); err != nil {
		return nil, fmt.Errorf("roster: %w", err)
	}
	doc := rosterDoc{Type: docRoster, Version: s.Version, IssuedAt: s.IssuedAt.Unix(), Members: make([]rosterMember, len(s.Members))}
	for i, m := range s.Members {
		doc.Members[i] = rosterMember{ID: m.ID, Venue: m.Venue, Station: m.Station, Role: m.Role, Key: m.Key}
	}
	payload, err := decoder.CanonicalMarshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode roster: %w", err)
	}
	return root.EncodeSign1(payload)
}

// memberKeyPrefix starts the text form of a member's public key.
const memberKeyPrefix = "ed25519:"

// FormatMemberKey is the text form of a member's public key, as a gate
// prints it for enrolment: "ed25519:" and the 32 bytes in unpadded
// base64url.
func FormatMemberKey(pub ed25519.PublicKey) string {
	return memberKeyPrefix + base64.RawURLEncoding.EncodeToString(pub)
}

// ParseMemberKey reads the text form of FormatMemberKey.
func ParseMemberKey(s string) (ed25519.PublicKey, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), memberKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("member key %q: want %s followed by base64url", s, memberKeyPrefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("member key %q: not %d bytes of base64url", s, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}
