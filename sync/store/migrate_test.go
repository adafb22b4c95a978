package store

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.etcd.io/bbolt"

	"wicket/verifier"
)

// writeSchema1 writes a store file as the schema-1 layout kept a batch:
// buckets "revoked" and "subjects" keyed by verifier.EntryKey, the
// version and issue time in meta, merged as that layout merged them.
func writeSchema1(t *testing.T, path string, b *verifier.Batch, now time.Time) {
	t.Helper()
	revoked := map[[16]byte]int64{}
	type subj struct {
		colour                     byte
		at, until, void, voidUntil int64
	}
	subjects := map[[16]byte]*subj{}
	for _, e := range b.Entries {
		if e.Expires <= now.Unix() {
			continue
		}
		k := verifier.EntryKey(e.Op, e.Key)
		if e.Op == verifier.OpRevoke {
			revoked[k] = max(revoked[k], e.Expires)
			continue
		}
		s := subjects[k]
		if s == nil {
			s = &subj{}
			subjects[k] = s
		}
		switch {
		case e.Op == verifier.OpColour && e.Time > s.at:
			s.colour, s.at, s.until = byte(e.Colour), e.Time, e.Expires
		case e.Op == verifier.OpVoidBefore && e.Time > s.void:
			s.void, s.voidUntil = e.Time, e.Expires
		}
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, _ := tx.CreateBucket(bucketMeta)
		putUint(meta, keySchema, 1)
		putUint(meta, legacyStatusVersion, b.Version)
		putTime(meta, legacyStatusIssued, b.IssuedAt)
		rb, _ := tx.CreateBucket(legacyRevoked)
		for k, exp := range revoked {
			rb.Put(k[:], binary.BigEndian.AppendUint64(nil, uint64(exp)))
		}
		sb, _ := tx.CreateBucket(legacySubjects)
		for k, s := range subjects {
			v := []byte{s.colour}
			for _, x := range []int64{s.at, s.until, s.void, s.voidUntil} {
				v = binary.BigEndian.AppendUint64(v, uint64(x))
			}
			sb.Put(k[:], v)
		}
		rb.Put([]byte("short key"), []byte{1}) // malformed: skipped
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateSchema1 opens a schema-1 file: its statements move into the
// set, every answer stays the same, the buckets go; and after a crash
// between writing the set and dropping the buckets, the next Open only
// drops them. Nothing reads the wall clock: the batch's times and the
// store's clock are fixed.
func TestMigrateSchema1(t *testing.T) {
	rng := newRand(t)
	now := time.Unix(1_700_000_000, 0)
	clk := clockwork.NewFakeClockAt(now)
	b := randomBatch(rng, 7, 0, 400, now)
	mem := verifier.NewMemStatus()
	if err := mem.Apply(b, now); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, path string) {
		s := openTest(t, Options{Path: path, Clock: clk})
		sameStatus(t, "migrated", mem, s, 1600)
		err := s.db.View(func(tx *bbolt.Tx) error {
			if tx.Bucket(legacyRevoked) != nil || tx.Bucket(legacySubjects) != nil {
				t.Error("schema-1 buckets left")
			}
			meta := tx.Bucket(bucketMeta)
			if v := getUint(meta, keySchema); v != schemaVersion || meta.Get(legacyStatusVersion) != nil {
				t.Errorf("schema %d, status version key %v", v, meta.Get(legacyStatusVersion))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = openTest(t, Options{Path: path, Clock: clk}) // and once more: nothing to do
		sameStatus(t, "reopened", mem, s, 1600)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "wicket.db")
	writeSchema1(t, path, b, now)
	check(t, path)

	// The crash case: the set written, the bbolt file still schema 1.
	dir2 := t.TempDir()
	path2 := filepath.Join(dir2, "wicket.db")
	writeSchema1(t, path2, b, now)
	if err := os.Rename(path+".revset", path2+".revset"); err != nil {
		t.Fatal(err)
	}
	check(t, path2)
}

// TestMigrateDropsOnlyBeforeFloor: migration drops statements that expired
// before the trusted floor (the persisted floor, or the batch's issue time),
// never against the wall clock at the first start of this version, which
// may be set ahead. Here the wall clock is a month past a revocation's
// expiry, and nothing the gate trusts says that time has come.
func TestMigrateDropsOnlyBeforeFloor(t *testing.T) {
	issued := time.Now().Add(-40 * 24 * time.Hour).Truncate(time.Second)
	floor := issued.Add(24 * time.Hour)
	b := &verifier.Batch{Version: 3, IssuedAt: issued, Entries: []verifier.Entry{
		{Op: verifier.OpRevoke, Key: []byte("in force"), Time: issued.Unix(), Expires: issued.Add(10 * 24 * time.Hour).Unix()},
		{Op: verifier.OpRevoke, Key: []byte("expired"), Time: issued.Unix(), Expires: floor.Unix() - 1},
	}}
	path := filepath.Join(t.TempDir(), "wicket.db")
	writeSchema1(t, path, b, issued)
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { return putTime(tx.Bucket(bucketMeta), keyFloor, floor) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := openTest(t, Options{Path: path})
	for id, want := range map[string]bool{"in force": true, "expired": false} {
		if got, err := s.Revoked([]byte(id)); err != nil || got != want {
			t.Errorf("after migration: Revoked(%q) = %v, %v; want %v", id, got, err, want)
		}
	}
}
