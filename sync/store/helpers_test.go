package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// openTest opens a store in a temporary directory (unless opts.Path is
// set) and, at cleanup, closes it and checks the file: bbolt's consistency
// check plus the store's own invariants.
func openTest(tb testing.TB, opts Options) *Store {
	tb.Helper()
	if opts.Path == "" {
		opts.Path = filepath.Join(tb.TempDir(), "wicket.db")
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(tb)
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = 2 * time.Second
	}
	s, err := Open(opts)
	if err != nil {
		tb.Fatalf("Open(%q) = %v", opts.Path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
		mustCheckFile(tb, s.path)
	})
	return s
}

// mustCheckFile opens the (closed) store file read-only and checks it.
func mustCheckFile(tb testing.TB, path string) {
	tb.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		tb.Errorf("check %s: open: %v", path, err)
		return
	}
	defer db.Close()
	if err := db.View(checkTx); err != nil {
		tb.Errorf("check %s: %v", path, err)
	}
}

// checkTx runs bbolt's consistency check and the store's invariants.
func checkTx(tx *bbolt.Tx) error {
	var errs []error
	for err := range tx.Check() {
		errs = append(errs, err)
	}
	errs = append(errs, invariants(tx)...)
	return errors.Join(errs...)
}

// invariants checks what every committed state of a store satisfies.
func invariants(tx *bbolt.Tx) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			fail("bucket %s missing", name)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	meta := tx.Bucket(bucketMeta)
	seq := getUint(meta, keySeq)
	if getUint(meta, keySchema) != schemaVersion {
		fail("schema %d", getUint(meta, keySchema))
	}
	if k := meta.Get(keyRecordKey); k != nil && len(k) < MinRecordKeyLen {
		fail("record key of %d bytes", len(k))
	}
	events := tx.Bucket(bucketEvents)
	var n, first, prev uint64
	_ = events.ForEach(func(k, v []byte) error {
		s := binary.BigEndian.Uint64(k)
		if n == 0 {
			first = s
		} else if s != prev+1 {
			fail("events: %d follows %d", s, prev)
		}
		var e Event
		if err := json.Unmarshal(v, &e); err != nil || e.Seq != s {
			fail("events: record %d: seq %d, err %v", s, e.Seq, err)
		}
		prev = s
		n++
		return nil
	})
	if n != getUint(meta, keyEventCount) {
		fail("events: %d records, counter %d", n, getUint(meta, keyEventCount))
	}
	if n > 0 && prev != seq {
		fail("events: last %d, seq counter %d", prev, seq)
	}
	var nOut uint64
	_ = tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
		s := binary.BigEndian.Uint64(k)
		nOut++
		if s > seq {
			fail("outbox: %d beyond seq %d", s, seq)
		}
		if n > 0 && s >= first {
			if ev := events.Get(k); !bytes.Equal(ev, v) {
				fail("outbox: record %d differs from the log", s)
			}
		}
		return nil
	})
	if nOut != getUint(meta, keyOutboxCount) {
		fail("outbox: %d records, counter %d", nOut, getUint(meta, keyOutboxCount))
	}
	_ = tx.Bucket(bucketPassback).ForEach(func(k, v []byte) error {
		if len(k) != 16 || len(v) != 8 {
			fail("passback: key %x: %d/%d bytes", k, len(k), len(v))
		}
		return nil
	})
	return errs
}

// testLogger logs through t.Log.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// logBuffer collects JSON log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the logged records as maps.
func (b *logBuffer) records(tb testing.TB) []map[string]any {
	tb.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b.buf.Bytes()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			tb.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func newJSONLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }
