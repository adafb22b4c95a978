package store_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"wicket/sync/store"
	"wicket/sync/store/storetest"
)

// TestFullDiskCommit fills a real file system under the store: commits
// fail marked ErrCommit and ErrDiskFull, CommitHealth says so until a
// commit succeeds after space is freed, and nothing half-written remains.
func TestFullDiskCommit(t *testing.T) {
	disk := storetest.SmallDisk(t, 4<<20)
	s := storetest.Open(t, store.Options{Path: filepath.Join(disk.Dir, "wicket.db")})
	if _, err := s.Append(&store.Event{Type: store.TypeDecision, At: time.Now(), Reason: "valid", Allow: true}, 0); err != nil {
		t.Fatalf("Append before the disk is full: %v", err)
	}
	if h := s.CommitHealth(); h.Err != nil {
		t.Fatalf("CommitHealth() = %v on a healthy disk", h.Err)
	}
	disk.Fill(t)
	var err error
	big := store.Event{Type: store.TypeDecision, Reason: "valid", Detail: string(make([]byte, 2000))}
	for i := 0; i < 10000 && err == nil; i++ {
		ev := big
		ev.At = time.Now()
		_, err = s.Append(&ev, 0)
	}
	if !errors.Is(err, store.ErrCommit) || !errors.Is(err, store.ErrDiskFull) {
		t.Fatalf("Append on a full disk = %v; want ErrCommit and ErrDiskFull", err)
	}
	h := s.CommitHealth()
	if !h.DiskFull() || h.Since.IsZero() || h.Failures == 0 {
		t.Fatalf("CommitHealth() = %+v; want a disk-full failure", h)
	}
	c, cerr := s.Counters()
	if cerr != nil {
		t.Fatal(cerr)
	}
	disk.Free(t)
	seq, err := s.Append(&store.Event{Type: store.TypeDecision, At: time.Now(), Reason: "valid", Allow: true}, 0)
	if err != nil {
		t.Fatalf("Append after space was freed: %v", err)
	}
	if seq != c.LastSeq+1 {
		t.Fatalf("seq after recovery = %d; want %d (no gap, no reuse)", seq, c.LastSeq+1)
	}
	if h := s.CommitHealth(); h.Err != nil || h.Failures == 0 {
		t.Fatalf("CommitHealth() after recovery = %+v; want no error and the failures counted", h)
	}
}

// TestPrepareCommitFullDisk: a Commit that fails on a full file system is
// marked ErrCommit, recorded for CommitHealth, and leaves nothing.
func TestPrepareCommitFullDisk(t *testing.T) {
	disk := storetest.SmallDisk(t, 4<<20)
	s := storetest.Open(t, store.Options{Path: filepath.Join(disk.Dir, "wicket.db")})
	disk.Fill(t)
	big := store.Event{Type: store.TypeDecision, Reason: "valid", Detail: string(make([]byte, 2000))}
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		ev := big
		ev.At = time.Now()
		var p *store.Pending
		if p, err = s.Prepare(&ev, 0); err != nil {
			t.Fatalf("Prepare on a full disk = %v; want the failure at Commit", err)
		}
		err = p.Commit()
	}
	if !errors.Is(err, store.ErrCommit) || !errors.Is(err, store.ErrDiskFull) {
		t.Fatalf("Commit on a full disk = %v; want ErrCommit and ErrDiskFull", err)
	}
	if h := s.CommitHealth(); !h.DiskFull() {
		t.Fatalf("CommitHealth() = %+v; want a disk-full failure", h)
	}
	c, err := s.Counters()
	if err != nil {
		t.Fatal(err)
	}
	disk.Free(t)
	ev := store.Event{Type: store.TypeSystem, At: time.Now()}
	seq, err := s.Append(&ev, 0)
	if err != nil {
		t.Fatalf("Append after space was freed: %v", err)
	}
	if seq != c.LastSeq+1 {
		t.Fatalf("seq after the failed Commit = %d; want %d", seq, c.LastSeq+1)
	}
}
