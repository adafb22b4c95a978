package store

import (
	"errors"
	"testing"
	"time"
)

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
