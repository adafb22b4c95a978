package revset

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"sync"
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
// HMAC-SHA-256(key, domain || 0x00 || id), read big-endian, with domain
// 'v' for voucher ids and 's' for subject pseudonyms (the construction of
// the store's record hashes).
// It is safe for concurrent use.
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

func (h *Hasher) key(domain byte, id []byte) uint64 {
	m := h.pool.Get().(*macState)
	m.mac.Reset()
	m.sum[0], m.sum[1] = domain, 0
	m.mac.Write(m.sum[:2])
	m.mac.Write(id)
	s := m.mac.Sum(m.sum[:0])
	k := binary.BigEndian.Uint64(s)
	h.pool.Put(m)
	return k
}

// Voucher returns the record key of a voucher id (revocations).
func (h *Hasher) Voucher(id []byte) uint64 { return h.key(domainVoucher, id) }

// Subject returns the record key of a subject pseudonym (colour and
// void-before statements).
func (h *Hasher) Subject(sub []byte) uint64 { return h.key(domainSubject, sub) }
