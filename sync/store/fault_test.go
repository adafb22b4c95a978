package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"wicket/sync/store/storetest"
)

// TestFullDiskCommit fills a real file system under the store: commits
// fail marked ErrCommit and ErrDiskFull, CommitHealth says so until a
// commit succeeds after space is freed, and nothing half-written remains.
func TestFullDiskCommit(t *testing.T) {
	disk := storetest.SmallDisk(t, 4<<20)
	s := openTest(t, Options{Path: filepath.Join(disk.Dir, "wicket.db")})
	if _, err := s.Append(&Event{Type: TypeDecision, At: time.Now(), Reason: "valid", Allow: true}, 0); err != nil {
		t.Fatalf("Append before the disk is full: %v", err)
	}
	if h := s.CommitHealth(); h.Err != nil {
		t.Fatalf("CommitHealth() = %v on a healthy disk", h.Err)
	}
	disk.Fill(t)
	var err error
	big := Event{Type: TypeDecision, Reason: "valid", Detail: string(make([]byte, 2000))}
	for i := 0; i < 10000 && err == nil; i++ {
		ev := big
		ev.At = time.Now()
		_, err = s.Append(&ev, 0)
	}
	if !errors.Is(err, ErrCommit) || !errors.Is(err, ErrDiskFull) {
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
	seq, err := s.Append(&Event{Type: TypeDecision, At: time.Now(), Reason: "valid", Allow: true}, 0)
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

// TestDataErrorIsNotCommitFailure: an event refused for its own content
// does not say the disk is failing.
func TestDataErrorIsNotCommitFailure(t *testing.T) {
	s := openTest(t, Options{})
	_, err := s.Append(&Event{Type: TypeDecision, At: time.Now(), Detail: string(make([]byte, maxEventBytes+1))}, 0)
	if !errors.Is(err, ErrEventTooLarge) || errors.Is(err, ErrCommit) {
		t.Fatalf("Append(too large) = %v; want ErrEventTooLarge without ErrCommit", err)
	}
	if h := s.CommitHealth(); h.Err != nil || h.Failures != 0 {
		t.Fatalf("CommitHealth() = %+v; want healthy", h)
	}
}
