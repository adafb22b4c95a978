package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// CheckFile opens the store file at path read-only, waiting up to timeout
// for a writer to let go of it, and runs bbolt's consistency check and
// the store's own invariants: every bucket present, the schema current,
// the access log numbered without gaps and matching its counter, every
// outbox record a copy of its log record, passback entries well formed.
// It returns every problem found, joined, or nil. It is for tests
// (storetest.Open runs it at cleanup) and inspection tools; the file must
// not be open for writing.
func CheckFile(path string, timeout time.Duration) error {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: timeout})
	if err != nil {
		return fmt.Errorf("check %s: open: %w", path, err)
	}
	defer db.Close()
	if err := db.View(checkTx); err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	return nil
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
