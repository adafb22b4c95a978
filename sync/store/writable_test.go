package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestWritable: a store says without waiting whether a write can begin:
// yes while open, ErrReadOnly when opened read-only, ErrClosed after
// Close.
func TestWritable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wicket.db")
	s := openTest(t, Options{Path: path})
	if err := s.Writable(); err != nil {
		t.Fatalf("Writable() of an open store = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Writable(); !errors.Is(err, ErrClosed) {
		t.Errorf("Writable() after Close = %v; want ErrClosed", err)
	}
	r, err := OpenReadOnly(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Writable(); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Writable() of a read-only store = %v; want ErrReadOnly", err)
	}
}
