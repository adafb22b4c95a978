package store

import (
	"errors"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"wicket/internal/clock"
)

// ErrCommit marks an error of the disk under a write: the transaction was
// built but could not be written or fsynced (an I/O error, a read-only
// remount, a full file system). Nothing of it is durable. Errors about the
// data itself (ErrEventTooLarge, ErrReadOnly) do not carry it.
var ErrCommit = errors.New("store cannot commit")

// ErrDiskFull marks a commit that failed because the file system holding
// the store is full (ENOSPC or EDQUOT). It always comes with ErrCommit.
var ErrDiskFull = errors.New("disk full")

// CommitHealth is what the last write transaction said about the disk.
type CommitHealth struct {
	// Err is the last commit failure, nil when the last commit succeeded
	// (or none was tried yet). A successful commit clears it.
	Err error
	// Since is when the current run of failures began; zero when Err is
	// nil.
	Since time.Time
	// Failures counts commit failures since Open.
	Failures uint64
}

// DiskFull reports whether the current failure is a full file system.
func (h CommitHealth) DiskFull() bool { return errors.Is(h.Err, ErrDiskFull) }

// commitState is the store's record of commit failures; its zero value
// means healthy.
type commitState struct {
	// clock says when a run of failures began; nil means the real clock.
	clock    clock.Clock
	failing  atomic.Pointer[CommitHealth]
	failures atomic.Uint64
}

// CommitHealth returns the state of the last write transaction. It never
// touches the disk.
func (s *Store) CommitHealth() CommitHealth {
	h := CommitHealth{Failures: s.commits.failures.Load()}
	if f := s.commits.failing.Load(); f != nil {
		h.Err, h.Since = f.Err, f.Since
	}
	return h
}

// noteCommit records the outcome of one commit (err nil on success) and
// returns err marked with ErrCommit, and ErrDiskFull where it applies.
func (s *commitState) noteCommit(err error) error {
	if err == nil {
		s.failing.Store(nil)
		return nil
	}
	marked := markCommit(err)
	s.failures.Add(1)
	since := clock.OrReal(s.clock).Now()
	if prev := s.failing.Load(); prev != nil {
		since = prev.Since
	}
	s.failing.Store(&CommitHealth{Err: marked, Since: since})
	return marked
}

// markCommit wraps a failed commit's error with ErrCommit, and with
// ErrDiskFull when the file system is full. bbolt formats some file
// errors with %s ("file resize error: ..."), losing the errno, so the
// kernel's message is matched too.
func markCommit(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		strings.Contains(err.Error(), syscall.ENOSPC.Error()) || strings.Contains(err.Error(), syscall.EDQUOT.Error()) {
		return errors.Join(ErrCommit, ErrDiskFull, err)
	}
	return errors.Join(ErrCommit, err)
}
