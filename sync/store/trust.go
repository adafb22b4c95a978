package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// Names of the signed trust documents the store keeps.
const (
	// TrustKeySet is the signed issuer key set.
	TrustKeySet = "keyset"
	// TrustRoster is the fleet's roster of gates and collectors.
	TrustRoster = "roster"
	// TrustClockReset and TrustEmergencyAck are the last clock reset and
	// emergency acknowledge the gate acted on, under their serials.
	TrustClockReset   = "clock-reset"
	TrustEmergencyAck = "emergency-ack"
)

// PutTrustDoc stores a signed trust document under name with its version,
// both in one transaction (fsynced). The caller verifies the signature
// first. A version not above the stored one is refused with an error
// wrapping ErrStaleVersion and changes nothing.
func (s *Store) PutTrustDoc(name string, version uint64, raw []byte) error {
	if name == "" {
		return errors.New("put trust document: empty name")
	}
	err := s.update(func(tx *bbolt.Tx) error { return putTrustDoc(tx, name, version, raw) })
	if err != nil {
		return fmt.Errorf("put trust document %q: %w", name, err)
	}
	return nil
}

// putTrustDoc is PutTrustDoc within a transaction.
func putTrustDoc(tx *bbolt.Tx, name string, version uint64, raw []byte) error {
	b := tx.Bucket(bucketTrust)
	if cur := b.Get([]byte(name)); len(cur) >= 8 {
		if old := binary.BigEndian.Uint64(cur); version <= old {
			return fmt.Errorf("%w: %d, stored %d", ErrStaleVersion, version, old)
		}
	} else if version == 0 {
		return fmt.Errorf("%w: version 0", ErrStaleVersion)
	}
	v := make([]byte, 8, 8+len(raw))
	binary.BigEndian.PutUint64(v, version)
	return b.Put([]byte(name), append(v, raw...))
}

// TrustDoc returns the stored document and its version; nil, 0, nil when
// there is none. The bytes are a copy the caller may keep.
func (s *Store) TrustDoc(name string) (raw []byte, version uint64, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTrust)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(name))
		if v == nil {
			return nil
		}
		if len(v) < 8 {
			return fmt.Errorf("record is %d bytes, shorter than its version", len(v))
		}
		version = binary.BigEndian.Uint64(v)
		raw = append([]byte{}, v[8:]...)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read trust document %q: %w", name, err)
	}
	return raw, version, nil
}
