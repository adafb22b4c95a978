package revset

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"sync"

	"wicket/verifier"
)

// MinKeyLen is the shortest gate key accepted: a full-strength HMAC key.
const MinKeyLen = 32

// Hash domains: a voucher id and a subject pseudonym with the same bytes
// get unrelated keys.
const (
	domainVoucher = 'v'
	domainSubject = 's'
)

// Hasher turns identifiers into 8-byte record keys: the first 8 bytes of
// HMAC-SHA-256(key, domain || 0x00 || verifier.EntryKey(op, id)), read
// big-endian, with domain 'v' for voucher ids and 's' for subject
// pseudonyms. Going through EntryKey (the fleet-wide 16-byte statement
// key) lets statements kept under that key elsewhere, such as the bbolt
// buckets of earlier store versions, be moved into a set without their
// identifiers. It is safe for concurrent use.
type Hasher struct {
	pool  sync.Pool
	keyID [8]byte
}

// NewHasher returns a Hasher for a gate key of at least MinKeyLen bytes.
func NewHasher(key []byte) (*Hasher, error) {
	if len(key) < MinKeyLen {
		return nil, errors.New("revset: gate key shorter than 32 bytes")
	}
	k := append([]byte(nil), key...)
	h := &Hasher{}
	h.pool.New = func() any { return &macState{mac: hmac.New(sha256.New, k)} }
	m := hmac.New(sha256.New, k)
	m.Write([]byte("wicket revset key id"))
	copy(h.keyID[:], m.Sum(nil))
	return h, nil
}

type macState struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

// KeyID identifies the gate key without revealing it; files carry it so a
// file hashed with another key is refused.
func (h *Hasher) KeyID() [8]byte { return h.keyID }

func (h *Hasher) key(domain byte, ek *[16]byte) uint64 {
	m := h.pool.Get().(*macState)
	m.mac.Reset()
	m.sum[0], m.sum[1] = domain, 0
	copy(m.sum[2:], ek[:])
	m.mac.Write(m.sum[:2+len(ek)])
	s := m.mac.Sum(m.sum[:0])
	k := binary.BigEndian.Uint64(s)
	h.pool.Put(m)
	return k
}

// Voucher returns the record key of a voucher id (revocations).
func (h *Hasher) Voucher(id []byte) uint64 {
	ek := verifier.EntryKey(verifier.OpRevoke, id)
	return h.key(domainVoucher, &ek)
}

// Subject returns the record key of a subject pseudonym (colour and
// void-before statements).
func (h *Hasher) Subject(sub []byte) uint64 {
	ek := verifier.EntryKey(verifier.OpColour, sub)
	return h.key(domainSubject, &ek)
}

// Entry returns the record key of a statement already reduced to its
// verifier.EntryKey.
func (h *Hasher) Entry(op verifier.Op, ek [16]byte) uint64 {
	if op == verifier.OpRevoke {
		return h.key(domainVoucher, &ek)
	}
	return h.key(domainSubject, &ek)
}
