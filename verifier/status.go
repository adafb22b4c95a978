package verifier

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"wicket/decoder"
)

// SubjectState is what the revocation/override data says about a subject.
type SubjectState struct {
	// Colour is the newest colour statement, ColourNone when there is none.
	Colour decoder.Colour
	// ColourAt is when that statement was made; it beats a voucher issued
	// earlier and loses to one issued later.
	ColourAt time.Time
	// ColourUntil is when the statement expires.
	ColourUntil time.Time
	// VoidBefore voids every voucher of the subject issued before it.
	VoidBefore time.Time
}

// StatusInfo describes the revocation/override data installed.
type StatusInfo struct {
	Version  uint64
	IssuedAt time.Time
}

// Standing is what the revocation/override data says about one voucher.
type Standing struct {
	// Revoked: the voucher id is revoked.
	Revoked bool
	// Subject: the statements about the voucher's subject.
	Subject SubjectState
}

// Status answers revocation and override questions. It is the seam to the
// on-disk store; lookups must be safe for concurrent use and must not block
// on the network. An error makes the decision fail secure.
type Status interface {
	// Standing looks up a voucher id and its subject pseudonym together,
	// so a store can answer from one read transaction.
	Standing(id, sub []byte) (Standing, error)
	// Info describes the installed data; the zero value means none.
	Info() StatusInfo
}

// EntryKey is the 16-byte lookup key of a voucher id or subject: the first
// 16 bytes of SHA-256 over a domain byte and the id. 128 bits keeps
// accidental collisions out of reach (about 2^-77 at 80 million entries).
func EntryKey(op Op, id []byte) [16]byte {
	d := byte('s')
	if op == OpRevoke {
		d = 'v'
	}
	var k [16]byte
	if len(id) <= decoder.MaxIDLen {
		// On the stack: lookups hash two ids per decision.
		var buf [1 + decoder.MaxIDLen]byte
		buf[0] = d
		n := 1 + copy(buf[1:], id)
		sum := sha256.Sum256(buf[:n])
		copy(k[:], sum[:])
		return k
	}
	h := sha256.New()
	h.Write([]byte{d})
	h.Write(id)
	copy(k[:], h.Sum(nil))
	return k
}

// MemStatus is an in-memory Status for tests, tools and small fleets.
type MemStatus struct {
	mu       sync.RWMutex
	info     StatusInfo
	revoked  map[[16]byte]int64 // expiry
	subjects map[[16]byte]memSubject
}

type memSubject struct {
	colour      decoder.Colour
	colourAt    int64
	colourUntil int64
	voidBefore  int64
	voidUntil   int64
}

// NewMemStatus returns an empty MemStatus.
func NewMemStatus() *MemStatus {
	return &MemStatus{revoked: map[[16]byte]int64{}, subjects: map[[16]byte]memSubject{}}
}

// Apply installs a batch: a snapshot needs a newer version and replaces
// everything; a delta needs Base equal to the installed version. Entries
// already expired at now are dropped.
func (m *MemStatus) Apply(b *Batch, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := CheckBatchVersion(m.info.Version, b); err != nil {
		return err
	}
	if b.Snapshot() {
		m.revoked = map[[16]byte]int64{}
		m.subjects = map[[16]byte]memSubject{}
	}
	for _, e := range b.Entries {
		if e.Expires <= now.Unix() {
			continue
		}
		k := EntryKey(e.Op, e.Key)
		switch e.Op {
		case OpRevoke:
			m.revoked[k] = max(m.revoked[k], e.Expires)
		case OpColour:
			s := m.subjects[k]
			if e.Time > s.colourAt {
				s.colour, s.colourAt, s.colourUntil = e.Colour, e.Time, e.Expires
			}
			m.subjects[k] = s
		case OpVoidBefore:
			s := m.subjects[k]
			if e.Time > s.voidBefore {
				s.voidBefore, s.voidUntil = e.Time, e.Expires
			}
			m.subjects[k] = s
		}
	}
	m.info = StatusInfo{Version: b.Version, IssuedAt: b.IssuedAt}
	return nil
}

// CheckBatchVersion says whether a batch may be applied on top of the
// installed version: one place for the rule every Status implementation
// follows.
func CheckBatchVersion(installed uint64, b *Batch) error {
	if b.Parts != 0 {
		return fmt.Errorf("%w: version %d part %d of %d", ErrSnapshotPart, b.Version, b.Part, b.Parts)
	}
	if b.Version <= installed {
		return fmt.Errorf("%w: batch %d, installed %d", ErrTrustVersion, b.Version, installed)
	}
	if !b.Snapshot() && b.Base != installed {
		return fmt.Errorf("%w: delta %d applies to %d, installed %d", ErrTrustGap, b.Version, b.Base, installed)
	}
	return nil
}

// Standing implements Status.
func (m *MemStatus) Standing(id, sub []byte) (Standing, error) {
	r, _ := m.Revoked(id)
	st, _ := m.Subject(sub)
	return Standing{Revoked: r, Subject: st}, nil
}

// Revoked reports whether the voucher id is revoked.
func (m *MemStatus) Revoked(id []byte) (bool, error) {
	m.mu.RLock()
	_, ok := m.revoked[EntryKey(OpRevoke, id)]
	m.mu.RUnlock()
	return ok, nil
}

// Subject returns what is known about a subject pseudonym.
func (m *MemStatus) Subject(sub []byte) (SubjectState, error) {
	m.mu.RLock()
	s, ok := m.subjects[EntryKey(OpColour, sub)]
	m.mu.RUnlock()
	if !ok {
		return SubjectState{}, nil
	}
	st := SubjectState{Colour: s.colour}
	if s.colourAt != 0 {
		st.ColourAt, st.ColourUntil = time.Unix(s.colourAt, 0), time.Unix(s.colourUntil, 0)
	}
	if s.voidBefore != 0 {
		st.VoidBefore = time.Unix(s.voidBefore, 0)
	}
	return st, nil
}

// Info implements Status.
func (m *MemStatus) Info() StatusInfo {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.info
}
