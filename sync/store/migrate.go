package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"wicket/decoder"
	"wicket/verifier"
)

// Schema 1 kept the statements in bbolt: bucket "revoked" (EntryKey of
// the voucher id → expiry, big-endian int64) and bucket "subjects"
// (EntryKey of the subject → colour, colourAt, colourUntil, voidBefore,
// voidUntil), with the installed version and issue time in meta.
var (
	legacyRevoked       = []byte("revoked")
	legacySubjects      = []byte("subjects")
	legacyStatusVersion = []byte("status_version")
	legacyStatusIssued  = []byte("status_issued")
)

// legacySubjectLen is the size of a schema-1 subject record.
const legacySubjectLen = 1 + 4*8

// migrateStatus moves the statements of a schema-1 file into the set, as a
// snapshot of the installed version, then drops the buckets and records
// schema 2. The set is written first: after a crash in between the next
// Open finds the set already at that version and only drops the buckets.
// Records that are not well formed are skipped and counted in the log.
func (s *Store) migrateStatus() error {
	var schema, version uint64
	var issued time.Time
	if err := s.db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		schema = getUint(meta, keySchema)
		version = getUint(meta, legacyStatusVersion)
		issued = getTime(meta, legacyStatusIssued)
		return nil
	}); err != nil {
		return err
	}
	if schema >= 2 {
		return nil
	}
	start := s.clock.Now()
	moved, bad := 0, 0
	if version != 0 && s.rs.Info().Version < version {
		// Drop only what expired before a time known to have passed: the
		// wall clock at the first start of this version may be ahead.
		floor := s.Floor()
		if issued.After(floor) {
			floor = issued
		}
		w := s.rs.NewSnapshot(version, issued, floor)
		err := s.db.View(func(tx *bbolt.Tx) error {
			t := max(issued.Unix(), 1)
			if b := tx.Bucket(legacyRevoked); b != nil {
				if err := b.ForEach(func(k, v []byte) error {
					if len(k) != 16 || len(v) != 8 {
						bad++
						return nil
					}
					moved++
					return w.AddStored(verifier.OpRevoke, [16]byte(k), t, int64(binary.BigEndian.Uint64(v)), 0)
				}); err != nil {
					return err
				}
			}
			b := tx.Bucket(legacySubjects)
			if b == nil {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				if len(k) != 16 || len(v) != legacySubjectLen {
					bad++
					return nil
				}
				i := func(n int) int64 { return int64(binary.BigEndian.Uint64(v[1+8*n:])) }
				if at := i(0); at > 0 {
					if err := w.AddStored(verifier.OpColour, [16]byte(k), at, i(1), decoder.Colour(v[0])); err != nil {
						return err
					}
				}
				if at := i(2); at > 0 {
					if err := w.AddStored(verifier.OpVoidBefore, [16]byte(k), at, i(3), 0); err != nil {
						return err
					}
				}
				moved++
				return nil
			})
		})
		if err == nil {
			err = w.Commit()
		} else {
			w.Abort()
		}
		if err != nil && !errors.Is(err, verifier.ErrTrustVersion) {
			return fmt.Errorf("migrate statements from schema 1: %w", err)
		}
	}
	err := s.update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{legacyRevoked, legacySubjects} {
			if err := tx.DeleteBucket(name); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		for _, k := range [][]byte{legacyStatusVersion, legacyStatusIssued} {
			if err := meta.Delete(k); err != nil {
				return err
			}
		}
		return putUint(meta, keySchema, schemaVersion)
	})
	if err != nil {
		return fmt.Errorf("migrate statements from schema 1: %w", err)
	}
	s.log.Info("statements moved from the bbolt file to their own files (schema 1 to 2)",
		"version", version, "entries", moved, "skipped_malformed", bad, "took", s.clock.Since(start).Round(time.Millisecond))
	return nil
}
