package store

import (
	"errors"
	"fmt"
	"time"

	"wicket/sync/revset"
	"wicket/verifier"
)

// The revocation and override statements live in a revset.Set in their
// own directory beside the bbolt file (Options.StatusDir): at fleet scale
// (tens of millions of entries) bbolt's per-key overhead and its single
// memory map do not fit a 32-bit board. See docs/revocations.md.

// ApplyBatch installs a verified batch, with the same rules as
// verifier.MemStatus.Apply: the version must pass
// verifier.CheckBatchVersion; a snapshot replaces every statement, a delta
// merges on top (the newest statement about a subject wins, a revocation
// keeps its latest expiry); entries already expired at floor are skipped.
// On error nothing changes. A delta is fsynced once; lookups run on
// throughout.
//
// floor must be a time known to have passed (the trusted clock's floor),
// never the wall clock: a gate whose clock is ahead would otherwise drop
// statements still in force, and they would not come back until the next
// snapshot.
func (s *Store) ApplyBatch(b *verifier.Batch, floor time.Time) error {
	if s.readOnly {
		return ErrReadOnly
	}
	if err := s.rs.ApplyBatch(b, floor); err != nil {
		if b != nil {
			return fmt.Errorf("apply batch %d: %w", b.Version, err)
		}
		return err
	}
	return nil
}

// SnapshotWriter builds a snapshot published in several documents; see
// NewSnapshot.
type SnapshotWriter = revset.SnapshotWriter

// NewSnapshot starts a snapshot of the given version whose entries come
// in parts (SnapshotWriter.AddPart) or in order; nothing changes until
// its Commit, which checks the version against the installed one. Entries
// expired at floor (as for ApplyBatch) are skipped.
func (s *Store) NewSnapshot(version uint64, issuedAt, floor time.Time) (*SnapshotWriter, error) {
	if s.readOnly {
		return nil, ErrReadOnly
	}
	return s.rs.NewSnapshot(version, issuedAt, floor), nil
}

// Revoked reports whether the voucher id is revoked (until a merge drops
// the entry after it expires).
func (s *Store) Revoked(id []byte) (bool, error) {
	st, err := s.Standing(id, nil)
	return st.Revoked, err
}

// Standing implements verifier.Status: the voucher's revocation and its
// subject's statements. A nil sub skips the subject. It never waits for a
// writer.
func (s *Store) Standing(id, sub []byte) (verifier.Standing, error) {
	if s.rs == nil {
		return verifier.Standing{}, errNoStatus
	}
	st, err := s.rs.Standing(id, sub)
	if err != nil {
		return verifier.Standing{}, fmt.Errorf("revocation lookup: %w", err)
	}
	return st, nil
}

// Subject returns the colour and void statements about a subject
// pseudonym.
func (s *Store) Subject(sub []byte) (verifier.SubjectState, error) {
	st, err := s.Standing(nil, sub)
	return st.Subject, err
}

// errNoStatus: a read-only store does not open the statements.
var errNoStatus = errors.New("store opened read-only: statements not loaded")

// Info implements verifier.Status from memory: the installed batch version
// and issue time, zero when none.
func (s *Store) Info() verifier.StatusInfo {
	if s.rs == nil {
		return s.peekInfo
	}
	return s.rs.Info()
}

// CompactStatus merges the deltas applied since the last snapshot into a
// new snapshot file and drops statements that expired at or before floor,
// a time known to have passed (as for ApplyBatch). It runs while lookups
// and deltas go on; run it periodically (the set also merges by itself
// when its overlay grows large).
func (s *Store) CompactStatus(floor time.Time) error {
	if s.readOnly {
		return ErrReadOnly
	}
	if err := s.rs.Merge(floor); err != nil {
		return fmt.Errorf("compact statements: %w", err)
	}
	return nil
}

// StatusStats describes the statements' files.
func (s *Store) StatusStats() revset.Stats {
	if s.rs == nil {
		return s.peek
	}
	return s.rs.Stats()
}
