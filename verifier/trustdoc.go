package verifier

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"wicket/decoder"
)

// Errors of signed trust documents (key sets, batches, rosters). A refused
// document leaves the gate's trust data as it was.
var (
	// ErrTrustFormat: not a well-formed document of the expected type.
	ErrTrustFormat = errors.New("malformed trust document")
	// ErrTrustSignature: no pinned root key verifies the signature.
	ErrTrustSignature = errors.New("trust document not signed by a pinned root key")
	// ErrTrustVersion: the version is not newer than the one installed.
	ErrTrustVersion = errors.New("trust document version not newer than installed")
	// ErrTrustGap: a delta batch whose base is not the installed version.
	ErrTrustGap = errors.New("delta batch does not follow the installed version")
)

// Document types, claim 1 of every trust document, so a signed batch can
// never pass for a key set or the other way round.
const (
	docKeySet = 1
	docBatch  = 2
	docRoster = 3 // roster.go
	// Orders to named gates (order.go).
	docClockReset   = 4
	docEmergencyAck = 5
)

// keySetDoc is the signed payload of a key set.
type keySetDoc struct {
	Type     int         `cbor:"1,keyasint"`
	Version  uint64      `cbor:"2,keyasint"`
	IssuedAt int64       `cbor:"3,keyasint"`
	Keys     []keySetKey `cbor:"4,keyasint"`
}

type keySetKey struct {
	Kid       []byte         `cbor:"1,keyasint"`
	Issuer    string         `cbor:"2,keyasint"`
	Alg       int64          `cbor:"3,keyasint"`
	Key       []byte         `cbor:"4,keyasint"`
	NotBefore int64          `cbor:"5,keyasint"`
	NotAfter  int64          `cbor:"6,keyasint"`
	Kinds     []decoder.Kind `cbor:"7,keyasint"`
	Profile   string         `cbor:"8,keyasint,omitempty"`
	Types     []string       `cbor:"9,keyasint,omitempty"`
}

// IssuerKey is one trusted voucher-signing key.
type IssuerKey struct {
	PublicKey
	Issuer    string
	NotBefore time.Time
	NotAfter  time.Time
	// Kinds are the Wicket voucher kinds the key may sign (Wicket keys).
	Kinds []decoder.Kind
	// Profile names the voucher profile the key signs for: "" for Wicket
	// vouchers, "dcc" for EU DCC signers.
	Profile string
	// Types restricts what the key may sign within its profile (for DCC
	// signers: "v", "t", "r" from the certificate's extended key usage);
	// empty means no restriction.
	Types []string
}

// AllowsType reports whether the key may sign content of type t.
func (k *IssuerKey) AllowsType(t string) bool {
	return len(k.Types) == 0 || slices.Contains(k.Types, t)
}

// AllowsKind reports whether the key may sign vouchers of kind k.
func (k *IssuerKey) AllowsKind(kind decoder.Kind) bool {
	for _, x := range k.Kinds {
		if x == kind {
			return true
		}
	}
	return false
}

// KeySet is a verified key set.
type KeySet struct {
	Version  uint64
	IssuedAt time.Time
	Keys     []IssuerKey
	byKid    map[string][]*IssuerKey
}

// ByKid returns every key with the kid (kids may collide; all are tried).
func (ks *KeySet) ByKid(kid []byte) []*IssuerKey {
	return ks.byKid[string(kid)]
}

// RootKeys are the pinned keys that sign trust documents.
type RootKeys []PublicKey

// openDoc verifies a trust document's signature with the root keys and
// returns its payload.
func (roots RootKeys) openDoc(data []byte) (*decoder.Sign1, error) {
	if len(data) > decoder.MaxTrustDocLen {
		return nil, fmt.Errorf("%w: %d bytes, over %d", ErrTrustFormat, len(data), decoder.MaxTrustDocLen)
	}
	msg, err := decoder.ParseSign1(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTrustFormat, err)
	}
	tbs := msg.ToBeSigned()
	for _, r := range roots {
		if (msg.Kid == nil || bytes.Equal(r.Kid, msg.Kid)) && r.Verify(msg.Alg, tbs, msg.Signature) {
			return msg, nil
		}
	}
	return nil, fmt.Errorf("%w (kid %x)", ErrTrustSignature, msg.Kid)
}

// ParseKeySet verifies and parses a signed key set. It does not check the
// version against an installed one: see Trust.InstallKeySet.
func (roots RootKeys) ParseKeySet(data []byte) (*KeySet, error) {
	msg, err := roots.openDoc(data)
	if err != nil {
		return nil, err
	}
	var doc keySetDoc
	if err := decoder.StrictUnmarshalTrust(msg.Payload, &doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTrustFormat, err)
	}
	if doc.Type != docKeySet {
		return nil, fmt.Errorf("%w: type %d is not a key set", ErrTrustFormat, doc.Type)
	}
	if doc.Version == 0 || doc.IssuedAt <= 0 {
		return nil, fmt.Errorf("%w: version and issued-at are required", ErrTrustFormat)
	}
	ks := &KeySet{Version: doc.Version, IssuedAt: time.Unix(doc.IssuedAt, 0), byKid: map[string][]*IssuerKey{}}
	ks.Keys = make([]IssuerKey, 0, len(doc.Keys))
	for i, k := range doc.Keys {
		pk, err := parseRawKey(decoder.Alg(k.Alg), k.Key, k.Kid)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %w", ErrTrustFormat, i, err)
		}
		switch {
		case len(k.Kid) == 0 || len(k.Kid) > decoder.MaxKidLen:
			return nil, fmt.Errorf("%w: key %d: kid must be 1 to %d bytes", ErrTrustFormat, i, decoder.MaxKidLen)
		case k.Issuer == "" || len(k.Issuer) > decoder.MaxIssuerLen:
			return nil, fmt.Errorf("%w: key %d: issuer must be 1 to %d bytes", ErrTrustFormat, i, decoder.MaxIssuerLen)
		case k.NotAfter <= k.NotBefore:
			return nil, fmt.Errorf("%w: key %d: not-after is not after not-before", ErrTrustFormat, i)
		case k.Profile == "" && len(k.Kinds) == 0:
			return nil, fmt.Errorf("%w: key %d: no voucher kinds allowed", ErrTrustFormat, i)
		case k.Profile != "" && BuiltinProfiles().ByName(k.Profile) == nil:
			return nil, fmt.Errorf("%w: key %d: unknown profile %q", ErrTrustFormat, i, k.Profile)
		case decoder.Alg(k.Alg) == decoder.AlgPS256 && k.Profile == "":
			return nil, fmt.Errorf("%w: key %d: PS256 keys only sign DCC", ErrTrustFormat, i)
		}
		ks.Keys = append(ks.Keys, IssuerKey{
			PublicKey: pk, Issuer: k.Issuer,
			NotBefore: time.Unix(k.NotBefore, 0), NotAfter: time.Unix(k.NotAfter, 0),
			Kinds: k.Kinds, Profile: k.Profile, Types: k.Types,
		})
	}
	for i := range ks.Keys {
		k := &ks.Keys[i]
		ks.byKid[string(k.Kid)] = append(ks.byKid[string(k.Kid)], k)
	}
	return ks, nil
}

// KeySetSpec is what an issuing authority signs into a key set.
type KeySetSpec struct {
	Version  uint64
	IssuedAt time.Time
	Keys     []IssuerKey
}

// Sign builds and signs a key set document with a root signer.
func (s KeySetSpec) Sign(root *decoder.Signer) ([]byte, error) {
	doc := keySetDoc{Type: docKeySet, Version: s.Version, IssuedAt: s.IssuedAt.Unix()}
	for _, k := range s.Keys {
		doc.Keys = append(doc.Keys, keySetKey{
			Kid: k.Kid, Issuer: k.Issuer, Alg: int64(k.Alg), Key: k.Raw(),
			NotBefore: k.NotBefore.Unix(), NotAfter: k.NotAfter.Unix(), Kinds: k.Kinds,
			Profile: k.Profile, Types: k.Types,
		})
	}
	payload, err := decoder.CanonicalMarshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode key set: %w", err)
	}
	return root.EncodeSign1(payload)
}

// Op is what one batch entry states.
type Op uint8

const (
	// OpRevoke: the voucher with this id (cti) is revoked.
	OpRevoke Op = 1
	// OpColour: from Time on, the subject's colour is Colour.
	OpColour Op = 2
	// OpVoidBefore: every voucher of the subject issued before Time is void.
	OpVoidBefore Op = 3
)

func (o Op) String() string {
	switch o {
	case OpRevoke:
		return "revoke"
	case OpColour:
		return "colour"
	case OpVoidBefore:
		return "void-before"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Entry is one statement of a batch: [op, key, time, expires, colour].
type Entry struct {
	_ struct{} `cbor:",toarray"`
	// Op says what the entry states.
	Op Op
	// Key is a voucher id (OpRevoke) or a subject pseudonym.
	Key []byte
	// Time is when the statement was made (seconds since the epoch). Among
	// statements about one subject the newest wins.
	Time int64
	// Expires is when the gate may forget the entry (seconds since epoch).
	Expires int64
	// Colour is the new colour for OpColour, 0 otherwise.
	Colour decoder.Colour
}

// batchDoc is the signed payload of a revocation/override batch. Keys 6
// and 7 are only present on the parts of a multi-part snapshot; a gate
// that predates them refuses such a part (unknown key) rather than take
// it for a whole snapshot.
type batchDoc struct {
	Type     int     `cbor:"1,keyasint"`
	Version  uint64  `cbor:"2,keyasint"`
	IssuedAt int64   `cbor:"3,keyasint"`
	Base     uint64  `cbor:"4,keyasint"`
	Entries  []Entry `cbor:"5,keyasint"`
	Part     uint32  `cbor:"6,keyasint,omitempty"`
	Parts    uint32  `cbor:"7,keyasint,omitempty"`
}

// MaxSnapshotParts bounds the documents of one multi-part snapshot:
// 8192 parts of 16384 entries (wicketctl's default, about 1 MB each) is
// 134 million entries.
const MaxSnapshotParts = 8192

// Batch is a verified revocation/override batch. A batch with Base 0 is a
// snapshot that replaces everything; otherwise it is a delta that applies
// only on top of version Base.
//
// A snapshot too large for one document (decoder.MaxTrustListLen entries,
// decoder.MaxTrustDocLen bytes) is published as Parts documents of the
// same Version and IssuedAt, numbered by Part from 0; it is in force only
// once every part has arrived, and statements about one key combine in
// part order, as if the parts were one document. Parts is 0 for a batch
// in one document.
type Batch struct {
	Version  uint64
	Base     uint64
	IssuedAt time.Time
	Entries  []Entry
	Part     uint32
	Parts    uint32
}

// Snapshot reports whether the batch replaces all earlier statements.
func (b *Batch) Snapshot() bool { return b.Base == 0 }

// ErrSnapshotPart: a part of a multi-part snapshot given where a whole
// batch is needed (see Batch and JoinParts).
var ErrSnapshotPart = errors.New("part of a multi-part snapshot: apply all its parts together")

// JoinParts joins every part of one multi-part snapshot, in any order,
// into one batch. It is for tools and tests: a gate streams the parts
// into its store instead of holding them in memory.
func JoinParts(parts []*Batch) (*Batch, error) {
	if len(parts) == 0 {
		return nil, errors.New("join snapshot parts: none given")
	}
	first := parts[0]
	if first.Parts == 0 || int(first.Parts) != len(parts) {
		return nil, fmt.Errorf("join snapshot parts: %d given, the snapshot has %d", len(parts), first.Parts)
	}
	byPart := make([]*Batch, first.Parts)
	n := 0
	for _, p := range parts {
		switch {
		case p.Version != first.Version || !p.IssuedAt.Equal(first.IssuedAt) || p.Parts != first.Parts:
			return nil, fmt.Errorf("join snapshot parts: part %d is of version %d issued %v, part %d of version %d issued %v",
				p.Part, p.Version, p.IssuedAt, first.Part, first.Version, first.IssuedAt)
		case byPart[p.Part] != nil:
			return nil, fmt.Errorf("join snapshot parts: part %d given twice", p.Part)
		}
		byPart[p.Part] = p
		n += len(p.Entries)
	}
	out := &Batch{Version: first.Version, IssuedAt: first.IssuedAt, Entries: make([]Entry, 0, n)}
	for _, p := range byPart {
		out.Entries = append(out.Entries, p.Entries...)
	}
	return out, nil
}

// ParseBatch verifies and parses a signed batch.
func (roots RootKeys) ParseBatch(data []byte) (*Batch, error) {
	msg, err := roots.openDoc(data)
	if err != nil {
		return nil, err
	}
	var doc batchDoc
	if err := decoder.StrictUnmarshalTrust(msg.Payload, &doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTrustFormat, err)
	}
	if doc.Type != docBatch {
		return nil, fmt.Errorf("%w: type %d is not a batch", ErrTrustFormat, doc.Type)
	}
	if doc.Version == 0 || doc.IssuedAt <= 0 || doc.Base >= doc.Version {
		return nil, fmt.Errorf("%w: need version > base and an issued-at", ErrTrustFormat)
	}
	if err := checkParts(doc.Base, doc.Part, doc.Parts); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTrustFormat, err)
	}
	for i, e := range doc.Entries {
		if err := e.check(); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %w", ErrTrustFormat, i, err)
		}
	}
	return &Batch{Version: doc.Version, Base: doc.Base, IssuedAt: time.Unix(doc.IssuedAt, 0), Entries: doc.Entries, Part: doc.Part, Parts: doc.Parts}, nil
}

// checkParts checks the part numbering of a batch.
func checkParts(base uint64, part, parts uint32) error {
	switch {
	case parts == 0 && part != 0:
		return errors.New("part number without a part count")
	case parts == 0:
		return nil
	case base != 0:
		return errors.New("only a snapshot comes in parts")
	case parts < 2 || parts > MaxSnapshotParts:
		return fmt.Errorf("%d parts: want 2 to %d", parts, MaxSnapshotParts)
	case part >= parts:
		return fmt.Errorf("part %d of %d", part, parts)
	}
	return nil
}

func (e *Entry) check() error {
	switch {
	case e.Op < OpRevoke || e.Op > OpVoidBefore:
		return fmt.Errorf("unknown op %d", e.Op)
	case len(e.Key) < decoder.MinIDLen || len(e.Key) > decoder.MaxIDLen:
		return fmt.Errorf("key must be %d to %d bytes", decoder.MinIDLen, decoder.MaxIDLen)
	case e.Time <= 0 || e.Expires <= 0:
		return errors.New("time and expires are required")
	case e.Op == OpColour && (e.Colour < decoder.ColourGreen || e.Colour > decoder.ColourRed):
		return fmt.Errorf("colour %d out of range", e.Colour)
	case e.Op != OpColour && e.Colour != 0:
		return errors.New("colour only goes with the colour op")
	}
	return nil
}

// SignBatch builds and signs a batch document with a root signer.
func SignBatch(root *decoder.Signer, b Batch) ([]byte, error) {
	if b.Version == 0 || b.Base >= b.Version {
		return nil, errors.New("batch needs version > base")
	}
	if err := checkParts(b.Base, b.Part, b.Parts); err != nil {
		return nil, err
	}
	for i := range b.Entries {
		if err := b.Entries[i].check(); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	payload, err := decoder.CanonicalMarshal(batchDoc{Type: docBatch, Version: b.Version, IssuedAt: b.IssuedAt.Unix(), Base: b.Base, Entries: b.Entries, Part: b.Part, Parts: b.Parts})
	if err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	return root.EncodeSign1(payload)
}
