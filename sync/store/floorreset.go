package store

import (
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// ResetFloor sets the clock floor to t, down as well as up, and stores
// the signed order that vouches for t under name with its serial, both in
// one transaction (fsynced): a power cut leaves the old floor and order
// or the new ones. The caller verifies the order first. A serial not above
// the stored one is refused with an error wrapping ErrStaleVersion and
// changes nothing: an order is acted on once.
func (s *Store) ResetFloor(t time.Time, name string, serial uint64, raw []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.update(func(tx *bbolt.Tx) error {
		if err := putTrustDoc(tx, name, serial, raw); err != nil {
			return err
		}
		return putTime(tx.Bucket(bucketMeta), keyFloor, t)
	})
	if err != nil {
		return fmt.Errorf("reset clock floor: %w", err)
	}
	s.floor.Store(&t)
	return nil
}
