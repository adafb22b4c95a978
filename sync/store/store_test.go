package store

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"wicket/verifier"
)

func TestOptionsValidate(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		opts Options
		want string // substring of the error; "" for success
	}{
		{"ok", Options{Path: filepath.Join(dir, "a.db")}, ""},
		{"no path", Options{}, "Path is empty"},
		{"negative lock timeout", Options{Path: filepath.Join(dir, "b.db"), LockTimeout: -1}, "LockTimeout"},
		{"negative max events", Options{Path: filepath.Join(dir, "c.db"), MaxEvents: -1}, "MaxEvents"},
		{"negative max outbox", Options{Path: filepath.Join(dir, "d.db"), MaxOutbox: -1}, "MaxOutbox"},
		{"short record key", Options{Path: filepath.Join(dir, "e.db"), RecordKey: make([]byte, 31)}, "RecordKey is 31 bytes"},
		{"record key", Options{Path: filepath.Join(dir, "f.db"), RecordKey: make([]byte, 32)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(tt.opts)
			if err == nil {
				defer s.Close()
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Open(%+v) = %v; want success", tt.opts, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Open(%+v) = %v; want error containing %q", tt.opts, err, tt.want)
			}
		})
	}
}

func TestCloseTwice(t *testing.T) {
	s := openTest(t, Options{})
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v; want nil", err)
	}
	if _, err := s.Append(&Event{Type: TypeSystem, At: time.Now()}, 0); err == nil {
		t.Fatal("Append after Close succeeded")
	}
}

func TestReopenKeepsState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wicket.db")
	s := openTest(t, Options{Path: path})
	now := time.Unix(1_700_000_000, 0)
	for range 3 {
		if _, err := s.Append(&Event{Type: TypeSystem, At: now}, 0); err != nil {
			t.Fatal(err)
		}
	}
	b := &verifier.Batch{Version: 7, IssuedAt: now, Entries: []verifier.Entry{{Op: verifier.OpRevoke, Key: []byte("voucher-0001"), Time: 1, Expires: now.Unix() + 60}}}
	if err := s.ApplyBatch(b, now); err != nil {
		t.Fatal(err)
	}
	if err := s.RaiseFloor(now); err != nil {
		t.Fatal(err)
	}
	hash := s.HashID([]byte("voucher-0001"))
	s.Close()

	s = openTest(t, Options{Path: path})
	if got := s.HashID([]byte("voucher-0001")); got != hash {
		t.Errorf("HashID after reopen = %s; want %s (the generated record key must persist)", got, hash)
	}
	if got := s.Info(); got.Version != 7 || !got.IssuedAt.Equal(now) {
		t.Errorf("Info() after reopen = %+v; want version 7 issued %v", got, now)
	}
	if got := s.Floor(); !got.Equal(now) {
		t.Errorf("Floor() after reopen = %v; want %v", got, now)
	}
	if ok, err := s.Revoked([]byte("voucher-0001")); !ok || err != nil {
		t.Errorf("Revoked after reopen = %v, %v; want true", ok, err)
	}
	seq, err := s.Append(&Event{Type: TypeSystem, At: now}, 0)
	if err != nil || seq != 4 {
		t.Errorf("Append after reopen = %d, %v; want 4", seq, err)
	}
}

func TestRecordKeyOption(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	a := openTest(t, Options{RecordKey: key})
	b := openTest(t, Options{RecordKey: key})
	c := openTest(t, Options{})
	id := []byte("voucher-0001")
	if a.HashID(id) != b.HashID(id) {
		t.Errorf("HashID differs between stores with the same RecordKey")
	}
	if a.HashID(id) == c.HashID(id) {
		t.Errorf("HashID equal with a generated key")
	}
	if a.HashID(id) == a.HashSubject(id) {
		t.Errorf("HashID and HashSubject agree; want separate domains")
	}
	if got := a.HashID(id); len(got) != 32 {
		t.Errorf("HashID = %q; want 32 hex digits", got)
	}
}

func TestFloor(t *testing.T) {
	s := openTest(t, Options{})
	if got := s.Floor(); !got.IsZero() {
		t.Fatalf("Floor() of a new store = %v; want zero", got)
	}
	t1 := time.Unix(1_700_000_000, 0)
	steps := []struct {
		raise time.Time
		want  time.Time
	}{
		{t1, t1},
		{t1.Add(-time.Hour), t1},
		{time.Time{}, t1},
		{t1.Add(time.Second), t1.Add(time.Second)},
	}
	for _, st := range steps {
		if err := s.RaiseFloor(st.raise); err != nil {
			t.Fatalf("RaiseFloor(%v) = %v", st.raise, err)
		}
		if got := s.Floor(); !got.Equal(st.want) {
			t.Errorf("after RaiseFloor(%v): Floor() = %v; want %v", st.raise, got, st.want)
		}
	}
}

func TestTrustDoc(t *testing.T) {
	s := openTest(t, Options{})
	if raw, v, err := s.TrustDoc(TrustKeySet); raw != nil || v != 0 || err != nil {
		t.Fatalf("TrustDoc of a new store = %q, %d, %v; want nil, 0, nil", raw, v, err)
	}
	steps := []struct {
		version uint64
		raw     string
		stale   bool
		wantV   uint64
		wantRaw string
	}{
		{0, "zero", true, 0, ""},
		{3, "three", false, 3, "three"},
		{3, "again", true, 3, "three"},
		{2, "older", true, 3, "three"},
		{4, "four", false, 4, "four"},
	}
	for _, st := range steps {
		err := s.PutTrustDoc(TrustKeySet, st.version, []byte(st.raw))
		if st.stale != errors.Is(err, ErrStaleVersion) || (!st.stale && err != nil) {
			t.Errorf("PutTrustDoc(%d) = %v; want stale %v", st.version, err, st.stale)
		}
		raw, v, err := s.TrustDoc(TrustKeySet)
		if err != nil || v != st.wantV || string(raw) != st.wantRaw {
			t.Errorf("after PutTrustDoc(%d): TrustDoc = %q, %d, %v; want %q, %d", st.version, raw, v, err, st.wantRaw, st.wantV)
		}
	}
	if raw, v, _ := s.TrustDoc("other"); raw != nil || v != 0 {
		t.Errorf("TrustDoc(other) = %q, %d; want nothing", raw, v)
	}
	st, err := s.Stats()
	if err != nil || st.KeySetVersion != 4 {
		t.Errorf("Stats().KeySetVersion = %d, %v; want 4", st.KeySetVersion, err)
	}
}

func TestStats(t *testing.T) {
	s := openTest(t, Options{MaxOutbox: 2})
	now := time.Unix(1_700_000_000, 0)
	for range 3 {
		if _, err := s.Append(&Event{Type: TypeSystem, At: now}, 0); err != nil {
			t.Fatal(err)
		}
	}
	b := &verifier.Batch{Version: 2, IssuedAt: now, Entries: []verifier.Entry{
		{Op: verifier.OpRevoke, Key: []byte("voucher-0001"), Time: 1, Expires: now.Unix() + 60},
		{Op: verifier.OpRevoke, Key: []byte("voucher-0002"), Time: 1, Expires: now.Unix() + 60},
		{Op: verifier.OpColour, Key: []byte("subject-0001"), Time: 1, Expires: now.Unix() + 60, Colour: 2},
	}}
	if err := s.ApplyBatch(b, now); err != nil {
		t.Fatal(err)
	}
	if err := s.RaiseFloor(now); err != nil {
		t.Fatal(err)
	}
	got, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Events: 3, Outbox: 2, LastSeq: 3, Dropped: 1, StatusVersion: 2, StatusIssued: now, Floor: now}
	if got.FileSize <= 0 {
		t.Errorf("Stats().FileSize = %d; want > 0", got.FileSize)
	}
	if st := got.Status; st.Version != 2 || st.FileRecords != 3 || st.FileBytes <= 0 {
		t.Errorf("Stats().Status = %+v; want version 2 with 3 records in its file", st)
	}
	got.FileSize, got.Status = 0, want.Status
	if !got.StatusIssued.Equal(want.StatusIssued) || !got.Floor.Equal(want.Floor) {
		t.Errorf("Stats() times = %v, %v; want %v", got.StatusIssued, got.Floor, now)
	}
	got.StatusIssued, got.Floor = want.StatusIssued, want.Floor
	if got != want {
		t.Errorf("Stats() = %+v; want %+v", got, want)
	}
}

func TestLockTimeout(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wicket.db")
	s := openTest(t, Options{Path: path})
	start := time.Now()
	_, err := Open(Options{Path: path, LockTimeout: 100 * time.Millisecond, Logger: testLogger(t)})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v; want ErrLocked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Open took %v; want about the lock timeout", d)
	}
	if _, err := OpenReadOnly(path, 100*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Errorf("OpenReadOnly while a writer holds the file = %v; want ErrLocked", err)
	}
	assertNoCorruptFiles(t, dir)
	if _, err := s.Append(&Event{Type: TypeSystem, At: time.Now()}, 0); err != nil {
		t.Errorf("first store after a refused second Open: Append = %v", err)
	}
}

func assertNoCorruptFiles(t *testing.T, dir string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.corrupt-*"))
	if len(m) != 0 {
		t.Errorf("files moved aside: %v; want none", m)
	}
}

func TestReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wicket.db")
	s := openTest(t, Options{Path: path})
	now := time.Unix(1_700_000_000, 0)
	if _, err := s.Append(&Event{Type: TypeSystem, At: now, Detail: "boot"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.RaiseFloor(now); err != nil {
		t.Fatal(err)
	}
	hash := s.HashID([]byte("voucher-0001"))
	s.Close()

	r1, err := OpenReadOnly(path, time.Second)
	if err != nil {
		t.Fatalf("OpenReadOnly = %v", err)
	}
	defer r1.Close()
	r2, err := OpenReadOnly(path, time.Second)
	if err != nil {
		t.Fatalf("second OpenReadOnly = %v; readers share the file", err)
	}
	defer r2.Close()
	evs, err := r1.Events(0, 10)
	if err != nil || len(evs) != 1 || evs[0].Detail != "boot" {
		t.Errorf("read-only Events = %+v, %v; want the boot event", evs, err)
	}
	if got := r1.Floor(); !got.Equal(now) {
		t.Errorf("read-only Floor = %v; want %v", got, now)
	}
	if got := r1.HashID([]byte("voucher-0001")); got != hash {
		t.Errorf("read-only HashID = %s; want %s", got, hash)
	}
	if _, err := r1.Append(&Event{Type: TypeSystem, At: now}, 0); !errors.Is(err, ErrReadOnly) {
		t.Errorf("read-only Append = %v; want ErrReadOnly", err)
	}
	if err := r1.RaiseFloor(now.Add(time.Hour)); !errors.Is(err, ErrReadOnly) {
		t.Errorf("read-only RaiseFloor = %v; want ErrReadOnly", err)
	}
	if _, err := Open(Options{Path: path, LockTimeout: 50 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Errorf("Open while readers hold the file = %v; want ErrLocked", err)
	}
}

func TestOpenReadOnlyMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.db")
	if _, err := OpenReadOnly(path, time.Second); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenReadOnly(missing) = %v; want not-exist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenReadOnly created %s", path)
	}
}

// populate fills a store with events and statements and closes it.
// It returns the last seq and the HashID of "voucher-0001".
func populate(t *testing.T, path string) (uint64, string) {
	t.Helper()
	s, err := Open(Options{Path: path, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Unix(1_700_000_000, 0)
	var last uint64
	for i := range 300 {
		ev := &Event{Type: TypeDecision, At: now.Add(time.Duration(i) * time.Second), Allow: true, Voucher: s.HashID([]byte{byte(i)}), Warnings: []string{strings.Repeat("w", 100)}}
		if last, err = s.Append(ev, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ApplyBatch(randomBatch(newRand(t), 1, 0, 2000, now), now); err != nil {
		t.Fatal(err)
	}
	return last, s.HashID([]byte("voucher-0001"))
}

// keyFate is what recovery does with the damaged file's record key.
type keyFate int

const (
	lost   keyFate = iota // unreadable: a new key
	kept                  // salvaged
	either                // depends on where the damage fell
)

func TestCorruption(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, data []byte, f fileFacts) []byte
		key     keyFate
	}{
		{"garbage over everything", func(t *testing.T, data []byte, _ fileFacts) []byte {
			fillRandom(newRand(t), data)
			return data
		}, lost},
		{"zeroed meta pages", func(t *testing.T, data []byte, _ fileFacts) []byte {
			clear(data[:2*4096])
			return data
		}, lost},
		{"garbage over the data pages", func(t *testing.T, data []byte, _ fileFacts) []byte {
			fillRandom(newRand(t), data[2*4096:])
			return data
		}, lost},
		{"truncated mid-page", func(t *testing.T, data []byte, _ fileFacts) []byte {
			return data[:len(data)/2+1000]
		}, either},
		{"last used page cut mid-page", func(t *testing.T, data []byte, f fileFacts) []byte {
			return data[:f.used-100]
		}, either},
		{"garbage over the events root page", func(t *testing.T, data []byte, f fileFacts) []byte {
			fillRandom(newRand(t), data[f.eventsRoot*f.pageSize:][:f.pageSize])
			return data
		}, kept},
		{"events root page zeroed", func(t *testing.T, data []byte, f fileFacts) []byte {
			clear(data[f.eventsRoot*f.pageSize:][:f.pageSize])
			return data
		}, kept},
		{"truncated inside the meta pages", func(t *testing.T, data []byte, _ fileFacts) []byte {
			return data[:5000]
		}, lost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "wicket.db")
			lastSeq, hash := populate(t, path)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			bad := tt.corrupt(t, data, facts(t, path))
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}

			logs := &logBuffer{}
			s := openTest(t, Options{Path: path, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
			moved := s.Recovered()
			if moved == "" || !strings.HasPrefix(moved, path+".corrupt-") {
				t.Fatalf("Recovered() = %q; want %s.corrupt-<unixtime>", moved, path)
			}
			if got, err := os.ReadFile(moved); err != nil || !bytes.Equal(got, bad) {
				t.Errorf("moved file %s: %d bytes, err %v; want the corrupt file unchanged", moved, len(got), err)
			}
			var loud bool
			for _, r := range logs.records(t) {
				if r["level"] == "ERROR" && r["moved_to"] == moved && r["err"] != nil {
					loud = true
					t.Logf("logged: %v: %v", r["msg"], r["err"])
				}
			}
			if !loud {
				t.Errorf("no Error log naming %s and the error; got %v", moved, logs.records(t))
			}
			st, err := s.Stats()
			if err != nil || st.Events != 0 {
				t.Errorf("fresh store Stats = %+v, %v; want no events", st, err)
			}
			// The statements have files of their own: they outlive the
			// damaged bbolt file, so the gate keeps its revocations.
			if s.Info().Version != 1 || st.Status.FileRecords == 0 {
				t.Errorf("statements after recovery: %+v, %+v; want batch 1 kept", s.Info(), st.Status)
			}
			if same := s.HashID([]byte("voucher-0001")) == hash; tt.key != either && same != (tt.key == kept) {
				t.Errorf("record key salvaged: %v; want %v", same, tt.key == kept)
			}
			seq, err := s.Append(&Event{Type: TypeSystem, At: time.Now(), Detail: "recovered"}, 0)
			if err != nil || seq <= lastSeq {
				t.Errorf("Append after recovery = %d, %v; want a seq above the lost file's %d", seq, err, lastSeq)
			}
		})
	}
}

// fileFacts locate things in a store file for targeted damage.
type fileFacts struct {
	used       int // bytes the pages occupy; the file may be longer
	pageSize   int
	eventsRoot int // page id of the events bucket's root
}

func facts(t *testing.T, path string) fileFacts {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f := fileFacts{pageSize: db.Info().PageSize}
	_ = db.View(func(tx *bbolt.Tx) error {
		f.used = int(tx.Size())
		f.eventsRoot = int(tx.Bucket(bucketEvents).Root())
		return nil
	})
	if f.eventsRoot < 2 {
		t.Fatalf("events bucket is inline (root %d); populate more", f.eventsRoot)
	}
	return f
}

func TestCorruptionNameTaken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wicket.db")
	now := time.Unix(1_700_000_000, 0)
	first := path + ".corrupt-1700000000"
	if err := os.WriteFile(first, []byte("earlier"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := moveAside(path, now)
	if err != nil || got != first+"-2" {
		t.Fatalf("moveAside = %q, %v; want %q", got, err, first+"-2")
	}
	if b, _ := os.ReadFile(first); string(b) != "earlier" {
		t.Errorf("earlier moved file overwritten: %q", b)
	}
}

func TestCounters(t *testing.T) {
	s := openTest(t, Options{MaxOutbox: 1000})
	for range 3 {
		mustAppend(t, s, &Event{Type: TypeSystem, At: t0}, 0)
	}
	if _, err := s.Ack(1); err != nil {
		t.Fatal(err)
	}
	c, err := s.Counters()
	st, err2 := s.Stats()
	if err != nil || err2 != nil {
		t.Fatal(err, err2)
	}
	want := Counters{Events: 3, Outbox: 2, LastSeq: st.LastSeq}
	if c != want || st.Events != c.Events || st.Outbox != c.Outbox || st.Dropped != c.Dropped {
		t.Errorf("Counters = %+v, Stats = %+v; want %+v and agreement", c, st, want)
	}
}

// TestBackgroundCheck: with BackgroundCheck, Open of a file whose data
// pages are damaged returns at once; the check then reports the damage
// and leaves the marker, and the next Open checks in full, moves the file
// aside and removes the marker. A sound file passes without a report.
func TestBackgroundCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wicket.db")
	populate(t, path)
	s := openTest(t, Options{Path: path, BackgroundCheck: true, OnDamage: func(err error) { t.Errorf("sound file: OnDamage(%v)", err) }})
	s.WaitCheck()
	s.Close()
	if _, err := os.Stat(checkMarker(path)); !os.IsNotExist(err) {
		t.Fatalf("marker after a sound check: %v", err)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := facts(t, path)
	fillRandom(newRand(t), data[f.eventsRoot*f.pageSize:][:f.pageSize])
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	damaged := make(chan error, 1)
	s = openTest(t, Options{Path: path, BackgroundCheck: true, OnDamage: func(err error) { damaged <- err }})
	if s.Recovered() != "" {
		t.Fatalf("Open checked in full: moved to %s", s.Recovered())
	}
	select {
	case err := <-damaged:
		t.Logf("background check: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("background check did not report the damage")
	}
	s.Close()
	if _, err := os.Stat(checkMarker(path)); err != nil {
		t.Fatalf("no marker after damage: %v", err)
	}
	s = openTest(t, Options{Path: path, BackgroundCheck: true, OnDamage: func(err error) { t.Errorf("recovered file: OnDamage(%v)", err) }})
	if s.Recovered() == "" {
		t.Fatal("the next Open did not recover the damaged file")
	}
	if _, err := os.Stat(checkMarker(path)); !os.IsNotExist(err) {
		t.Fatalf("marker left after recovery: %v", err)
	}
	if s.Info().Version != 1 {
		t.Errorf("statements after recovery: %+v; want batch 1 kept", s.Info())
	}
}

// TestBackgroundCheckWithWriters: commits made while the background check
// runs are not taken for damage (bbolt's freelist check, which compares
// with the live freelist, must not run then).
func TestBackgroundCheckWithWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wicket.db")
	populate(t, path)
	now := time.Unix(1_700_000_000, 0)
	for round := range 20 {
		s := openTest(t, Options{Path: path, BackgroundCheck: true, OnDamage: func(err error) { t.Errorf("round %d: OnDamage(%v)", round, err) }})
		for i := range 20 {
			if _, err := s.Append(&Event{Type: TypeSystem, At: now.Add(time.Duration(i) * time.Second)}, 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RaiseFloor(now.Add(time.Duration(round) * time.Hour)); err != nil {
			t.Fatal(err)
		}
		s.WaitCheck()
		s.Close()
		if _, err := os.Stat(checkMarker(path)); !os.IsNotExist(err) {
			t.Fatalf("round %d: marker written: %v", round, err)
		}
	}
}

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
