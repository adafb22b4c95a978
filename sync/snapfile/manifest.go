// Package snapfile carries large revocation/override snapshots as files:
// the authority puts each signed part document on any HTTP(S) server or
// object store under the SHA-256 of its content, and announces the set
// with a small signed Manifest on MQTT. A gate's Fetcher downloads the
// parts (jittered, resumed with Range requests after a cut, capped at the
// sizes the manifest gives), checks every one against the manifest's hash
// and hands it to the trust Applier, which checks its own signature and
// version as for any other source. When no URL delivers, it takes the
// parts from the broker instead, and says so. Nothing is in force until
// every part has passed both checks.
package snapfile

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"wicket/decoder"
	"wicket/sync/wire"
	"wicket/verifier"
)

// Limits of a manifest, with their reasons.
const (
	// MaxParts is the most parts one manifest lists: a multi-part
	// snapshot has at most verifier.MaxSnapshotParts.
	MaxParts = verifier.MaxSnapshotParts
	// MaxPartSize bounds one part file: it is one signed trust document.
	MaxPartSize = decoder.MaxTrustDocLen
	// MaxURLs bounds the base URLs: a few mirrors, not a list to scan.
	MaxURLs = 8
	// MaxURLLen bounds one base URL.
	MaxURLLen = 512
)

// ErrManifest: a manifest that is not well formed (the signature may be
// fine: the authority's tool has a bug, or it is not a manifest at all).
var ErrManifest = errors.New("malformed snapshot manifest")

// Part is one file of a snapshot: its size and SHA-256. The file's name
// at every base URL is the hex of the hash (Name).
type Part struct {
	_      struct{} `cbor:",toarray"`
	Size   int64
	SHA256 []byte
}

// Name is the file name of the part: the lowercase hex of its SHA-256.
func (p Part) Name() string { return hex.EncodeToString(p.SHA256) }

// Matches reports whether data is the part.
func (p Part) Matches(data []byte) bool {
	sum := sha256.Sum256(data)
	return int64(len(data)) == p.Size && string(sum[:]) == string(p.SHA256)
}

// PartOf describes data as a part.
func PartOf(data []byte) Part {
	sum := sha256.Sum256(data)
	return Part{Size: int64(len(data)), SHA256: sum[:]}
}

// Manifest announces one snapshot published as files. Version and
// IssuedAt are the snapshot's; Parts are in part order (part n of the
// snapshot is Parts[n]; a snapshot in one document has one part).
type Manifest struct {
	Version  uint64
	IssuedAt time.Time
	Parts    []Part
	// URLs are the base URLs the parts are under, tried in turn.
	URLs []string
}

// manifestDoc is the signed payload.
type manifestDoc struct {
	Type     int      `cbor:"1,keyasint"`
	Version  uint64   `cbor:"2,keyasint"`
	IssuedAt int64    `cbor:"3,keyasint"`
	Parts    []Part   `cbor:"4,keyasint"`
	URLs     []string `cbor:"5,keyasint"`
}

// Total is the sum of the part sizes.
func (m *Manifest) Total() int64 {
	var n int64
	for _, p := range m.Parts {
		n += p.Size
	}
	return n
}

// URL is where part n is under base URL i.
func (m *Manifest) URL(i, n int) string {
	b := m.URLs[i]
	if b[len(b)-1] != '/' {
		b += "/"
	}
	return b + m.Parts[n].Name()
}

// check checks the fields.
func (m *Manifest) check() error {
	switch {
	case m.Version == 0 || m.IssuedAt.Unix() <= 0:
		return errors.New("version and issued-at are required")
	case len(m.Parts) == 0 || len(m.Parts) > MaxParts:
		return fmt.Errorf("%d parts: want 1 to %d", len(m.Parts), MaxParts)
	case len(m.URLs) == 0 || len(m.URLs) > MaxURLs:
		return fmt.Errorf("%d URLs: want 1 to %d", len(m.URLs), MaxURLs)
	}
	for i, p := range m.Parts {
		if p.Size <= 0 || p.Size > MaxPartSize || len(p.SHA256) != sha256.Size {
			return fmt.Errorf("part %d: want 1 to %d bytes and a 32-byte SHA-256", i, MaxPartSize)
		}
	}
	for i, s := range m.URLs {
		if err := CheckURL(s); err != nil {
			return fmt.Errorf("URL %d: %w", i, err)
		}
	}
	return nil
}

// CheckURL checks a base URL: http or https, a host, no query or
// fragment, at most MaxURLLen bytes.
func CheckURL(s string) error {
	if len(s) > MaxURLLen {
		return fmt.Errorf("%d bytes, over %d", len(s), MaxURLLen)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return err
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: want http:// or https://", s)
	case u.Host == "":
		return fmt.Errorf("%q: no host", s)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("%q: no query, fragment or user info", s)
	}
	return nil
}

// Sign builds and signs the manifest with a root signer.
func (m Manifest) Sign(root *decoder.Signer) ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	payload, err := decoder.CanonicalMarshal(manifestDoc{Type: verifier.DocSnapshotManifest, Version: m.Version, IssuedAt: m.IssuedAt.Unix(), Parts: m.Parts, URLs: m.URLs})
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return root.EncodeSign1(payload)
}

// Parse verifies a signed manifest with the root keys and parses it. A
// bad signature is verifier.ErrTrustSignature, a bad document
// ErrManifest. It is pure and bounded: no input panics.
func Parse(roots verifier.RootKeys, raw []byte) (*Manifest, error) {
	payload, err := roots.OpenDoc(raw)
	if err != nil {
		return nil, err
	}
	var doc manifestDoc
	if err := decoder.StrictUnmarshalTrust(payload, &doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	if doc.Type != verifier.DocSnapshotManifest {
		return nil, fmt.Errorf("%w: type %d is not a manifest", ErrManifest, doc.Type)
	}
	m := &Manifest{Version: doc.Version, IssuedAt: time.Unix(doc.IssuedAt, 0), Parts: doc.Parts, URLs: doc.URLs}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	return m, nil
}

// Topic is where the fleet's manifest is kept, retained. It is under
// the trust tree, so every gate receives it with the other trust
// documents.
func Topic(fleet string) string { return wire.Root + "/" + fleet + "/trust/status/manifest" }

// FallbackTopic is where part n of the announced snapshot is kept,
// retained, for gates no URL serves. It is outside the trust tree: a gate
// subscribes to it only when it falls back, so the fleet does not receive
// the whole snapshot over MQTT.
func FallbackTopic(fleet string, n int) string {
	return fallbackPrefix(fleet) + strconv.Itoa(n)
}

// AllFallback is the filter of every fallback part topic.
func AllFallback(fleet string) string { return fallbackPrefix(fleet) + "+" }

// FallbackPart returns the part number of a fallback topic.
func FallbackPart(fleet, topic string) (int, bool) {
	s, ok := strings.CutPrefix(topic, fallbackPrefix(fleet))
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0 && n < MaxParts
}

func fallbackPrefix(fleet string) string { return wire.Root + "/" + fleet + "/snapfile/part/" }
