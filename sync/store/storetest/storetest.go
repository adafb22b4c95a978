// Package storetest gives tests real stores: Open opens one in a
// temporary directory and checks its file when the test ends (bbolt's
// consistency check and the store's invariants), and SmallDisk is a
// real file system that can be filled, so a store's commits fail with
// ENOSPC as on a full SD card, and can be emptied again.
package storetest

import (
	"path/filepath"
	"testing"
	"time"

	"wicket/sync/store"
)

// checkTimeout bounds the wait for the file's lock at cleanup: a store
// the test left open elsewhere fails the check instead of hanging it.
const checkTimeout = 5 * time.Second

// Open opens a store with opts, in a new temporary directory unless
// opts.Path is set, and fails the test if it cannot. At cleanup it closes
// the store (a test may close it earlier) and runs store.CheckFile on
// the file, failing the test on any damage or broken invariant.
func Open(tb testing.TB, opts store.Options) *store.Store {
	tb.Helper()
	if opts.Path == "" {
		opts.Path = filepath.Join(tb.TempDir(), "wicket.db")
	}
	s, err := store.Open(opts)
	if err != nil {
		tb.Fatalf("open store %s: %v", opts.Path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
		if err := store.CheckFile(opts.Path, checkTimeout); err != nil {
			tb.Error(err)
		}
	})
	return s
}
