package revset

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/verifier"
)

var (
	testKey = bytes.Repeat([]byte{0x5a}, 32)
	t0      = time.Unix(1_800_000_000, 0)
)

func openSet(tb testing.TB, dir string, o Options) *Set {
	tb.Helper()
	if o.Key == nil {
		o.Key = testKey
	}
	s, err := Open(dir, o)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return s
}

// id returns a distinct identifier of 16 bytes for n.
func id(prefix byte, n int) []byte {
	b := make([]byte, 16)
	b[0] = prefix
	binary.BigEndian.PutUint64(b[8:], uint64(n))
	return b
}

func eqStanding(a, b verifier.Standing) bool {
	return a.Revoked == b.Revoked && a.Subject.Colour == b.Subject.Colour &&
		a.Subject.ColourAt.Equal(b.Subject.ColourAt) && a.Subject.ColourUntil.Equal(b.Subject.ColourUntil) &&
		a.Subject.VoidBefore.Equal(b.Subject.VoidBefore)
}

func TestRecordLayout(t *testing.T) {
	r := Record{Key: 0x0102030405060708, Kind: KindColour, Colour: decoder.ColourRed, Time: 0x11223344, Expires: 0x55667788}
	var b [RecordSize]byte
	r.put(b[:])
	want := []byte{1, 2, 3, 4, 5, 6, 7, 8, 2, 3, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}
	if !bytes.Equal(b[:], want) {
		t.Fatalf("record bytes %x, want %x", b, want)
	}
	if got := getRecord(b[:]); got != r {
		t.Fatalf("round trip %+v, want %+v", got, r)
	}
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := openSet(t, dir, Options{})
	b := &verifier.Batch{Version: 3, IssuedAt: t0}
	for i := range 1000 {
		b.Entries = append(b.Entries, verifier.Entry{Op: verifier.OpRevoke, Key: id('v', i), Time: t0.Unix(), Expires: t0.Unix() + 3600})
	}
	b.Entries = append(b.Entries,
		verifier.Entry{Op: verifier.OpColour, Key: id('s', 1), Time: t0.Unix() - 10, Expires: t0.Unix() + 100, Colour: decoder.ColourRed},
		verifier.Entry{Op: verifier.OpVoidBefore, Key: id('s', 1), Time: t0.Unix() - 5, Expires: t0.Unix() + 200},
		verifier.Entry{Op: verifier.OpColour, Key: id('s', 2), Time: t0.Unix() - 10, Expires: t0.Unix() + 100, Colour: decoder.ColourYellow},
	)
	if err := s.ApplyBatch(b, t0); err != nil {
		t.Fatal(err)
	}
	check := func(s *Set) {
		t.Helper()
		for i := range 2000 {
			st, err := s.Standing(id('v', i), nil)
			if err != nil {
				t.Fatal(err)
			}
			if st.Revoked != (i < 1000) {
				t.Fatalf("id %d: revoked %v", i, st.Revoked)
			}
		}
		st, _ := s.Standing(id('x', 0), id('s', 1))
		if st.Revoked || st.Subject.Colour != decoder.ColourRed || st.Subject.ColourAt.Unix() != t0.Unix()-10 ||
			st.Subject.ColourUntil.Unix() != t0.Unix()+100 || st.Subject.VoidBefore.Unix() != t0.Unix()-5 {
			t.Fatalf("subject 1: %+v", st)
		}
		st, _ = s.Standing(id('x', 0), id('s', 2))
		if st.Subject.Colour != decoder.ColourYellow || !st.Subject.VoidBefore.IsZero() {
			t.Fatalf("subject 2: %+v", st)
		}
		st, _ = s.Standing(id('x', 0), id('s', 3))
		if st != (verifier.Standing{}) {
			t.Fatalf("unknown subject: %+v", st)
		}
		// A voucher id is not a subject: domains are separate.
		st, _ = s.Standing(id('s', 1), id('v', 1))
		if st != (verifier.Standing{}) {
			t.Fatalf("crossed domains: %+v", st)
		}
		if info := s.Info(); info.Version != 3 || !info.IssuedAt.Equal(t0) {
			t.Fatalf("info %+v", info)
		}
	}
	check(s)
	if st := s.Stats(); st.FileRecords != 1003 || st.FileBytes != HeaderSize+1003*RecordSize {
		t.Fatalf("stats %+v", st)
	}
	s.Close()
	s = openSet(t, dir, Options{Mode: ModePread})
	defer s.Close()
	if s.Stats().Mapped {
		t.Fatal("pread mode mapped the file")
	}
	check(s)
	if got := s.Recovered(); got != nil {
		t.Fatalf("recovered %v", got)
	}
}

// randomBatch makes entries over small pools so statements collide.
func randomBatch(rng *rand.Rand, version, base uint64, n int, now int64) *verifier.Batch {
	b := &verifier.Batch{Version: version, Base: base, IssuedAt: time.Unix(now, 0)}
	for range n {
		e := verifier.Entry{
			Op:      verifier.Op(1 + rng.IntN(3)),
			Time:    now - 5000 + rng.Int64N(10000),
			Expires: now - 50 + rng.Int64N(5000),
		}
		if rng.IntN(2) == 0 {
			e.Time = now - 5000 + rng.Int64N(20) // many ties
		}
		if e.Op == verifier.OpRevoke {
			e.Key = id('v', rng.IntN(300))
		} else {
			e.Key = id('s', rng.IntN(150))
		}
		if e.Op == verifier.OpColour {
			e.Colour = decoder.Colour(1 + rng.IntN(3))
		}
		b.Entries = append(b.Entries, e)
	}
	return b
}

func compareAll(t *testing.T, s *Set, m *verifier.MemStatus, step string) {
	t.Helper()
	for i := range 320 {
		vid, sub := id('v', i), id('s', i%160)
		got, err := s.Standing(vid, sub)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := m.Standing(vid, sub)
		if !eqStanding(got, want) {
			t.Fatalf("%s: Standing(v%d, s%d) = %+v, MemStatus says %+v", step, i, i%160, got, want)
		}
	}
	if s.Info() != m.Info() {
		t.Fatalf("%s: info %+v, MemStatus %+v", step, s.Info(), m.Info())
	}
}

// TestDifferential applies random snapshots and deltas to a Set and to
// verifier.MemStatus and compares every answer, with merges (explicit and
// in the background) and reopens in between.
func TestDifferential(t *testing.T) {
	for _, mode := range []Mode{ModeMmap, ModePread} {
		t.Run(fmt.Sprint("mode", mode), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(mode)))
			dir := t.TempDir()
			o := Options{Mode: mode, MergeRecords: 200, RunRecords: 64}
			s := openSet(t, dir, o)
			defer func() { s.Close() }()
			m := verifier.NewMemStatus()
			now := t0.Unix()
			var version uint64
			for round := range 60 {
				var b *verifier.Batch
				if round%20 == 0 {
					b = randomBatch(rng, version+1, 0, 500, now)
				} else {
					b = randomBatch(rng, version+1, version, 1+rng.IntN(80), now)
				}
				version++
				errM := m.Apply(b, time.Unix(now, 0))
				errS := s.ApplyBatch(b, time.Unix(now, 0))
				if (errM == nil) != (errS == nil) {
					t.Fatalf("round %d: MemStatus %v, Set %v", round, errM, errS)
				}
				// A stale and a gapped delta are refused by both.
				if err := s.ApplyBatch(&verifier.Batch{Version: version, Base: version - 1}, t0); !errors.Is(err, verifier.ErrTrustVersion) {
					t.Fatalf("stale batch: %v", err)
				}
				if err := s.ApplyBatch(&verifier.Batch{Version: version + 2, Base: version + 1}, t0); !errors.Is(err, verifier.ErrTrustGap) {
					t.Fatalf("gapped batch: %v", err)
				}
				compareAll(t, s, m, fmt.Sprintf("round %d", round))
				switch rng.IntN(5) {
				case 0:
					if err := s.Merge(time.Unix(now, 0)); err != nil {
						t.Fatal(err)
					}
					compareAll(t, s, m, fmt.Sprintf("round %d merged", round))
				case 1:
					if err := s.WaitMerge(); err != nil {
						t.Fatal(err)
					}
					s.Close()
					s = openSet(t, dir, o)
					compareAll(t, s, m, fmt.Sprintf("round %d reopened", round))
					// Again once the background check has run and the
					// filter is loaded.
					if err := s.WaitMerge(); err != nil {
						t.Fatal(err)
					}
					if s.Stats().FileRecords > 0 && s.Stats().FilterBytes == 0 {
						t.Fatalf("round %d: no filter after reopening", round)
					}
					compareAll(t, s, m, fmt.Sprintf("round %d reopened, filter loaded", round))
				}
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	dir := t.TempDir()
	s := openSet(t, dir, Options{MergeRecords: -1})
	defer s.Close()
	now := t0.Unix()
	b := &verifier.Batch{Version: 1, IssuedAt: t0, Entries: []verifier.Entry{
		{Op: verifier.OpRevoke, Key: id('v', 1), Time: now, Expires: now + 10},
		{Op: verifier.OpRevoke, Key: id('v', 2), Time: now, Expires: now + 100},
		{Op: verifier.OpRevoke, Key: id('v', 3), Time: now, Expires: now}, // expired on arrival
		{Op: verifier.OpColour, Key: id('s', 1), Time: now - 100, Expires: now + 1000, Colour: decoder.ColourRed},
	}}
	if err := s.ApplyBatch(b, t0); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Standing(id('v', 3), nil); st.Revoked {
		t.Fatal("entry expired on arrival was kept")
	}
	if got := s.Stats().MinExpires.Unix(); got != now+10 {
		t.Fatalf("MinExpires %d", got)
	}
	// A newer colour statement that expires early supersedes the older
	// one; once it expires, a merge forgets the subject's colour entirely.
	d := &verifier.Batch{Version: 2, Base: 1, IssuedAt: t0, Entries: []verifier.Entry{
		{Op: verifier.OpColour, Key: id('s', 1), Time: now - 50, Expires: now + 20, Colour: decoder.ColourGreen},
		{Op: verifier.OpRevoke, Key: id('v', 1), Time: now, Expires: now + 5}, // earlier expiry: the later one stays
	}}
	if err := s.ApplyBatch(d, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Merge(time.Unix(now+9, 0)); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Standing(id('v', 1), id('s', 1)); !st.Revoked || st.Subject.Colour != decoder.ColourGreen {
		t.Fatalf("before expiry: %+v", st)
	}
	if err := s.Merge(time.Unix(now+20, 0)); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Standing(id('v', 1), id('s', 1))
	if st.Revoked || st.Subject.Colour != decoder.ColourNone {
		t.Fatalf("after expiry: %+v", st)
	}
	if st, _ := s.Standing(id('v', 2), nil); !st.Revoked {
		t.Fatal("unexpired revocation dropped")
	}
	if got := s.Stats().FileRecords; got != 1 {
		t.Fatalf("file holds %d records, want 1", got)
	}
	// Nothing to do: no file written.
	if err := s.Merge(time.Unix(now+30, 0)); err != nil {
		t.Fatal(err)
	}
}

func TestOverlayPrecedence(t *testing.T) {
	s := openSet(t, t.TempDir(), Options{MergeRecords: -1})
	defer s.Close()
	now := t0.Unix()
	sub := id('s', 9)
	apply := func(v, base uint64, es ...verifier.Entry) {
		t.Helper()
		if err := s.ApplyBatch(&verifier.Batch{Version: v, Base: base, IssuedAt: t0, Entries: es}, t0); err != nil {
			t.Fatal(err)
		}
	}
	colour := func(at int64, c decoder.Colour) verifier.Entry {
		return verifier.Entry{Op: verifier.OpColour, Key: sub, Time: at, Expires: now + 1000, Colour: c}
	}
	apply(1, 0, colour(now-100, decoder.ColourRed))
	apply(2, 1, colour(now-200, decoder.ColourGreen)) // older: loses to the file
	apply(3, 2, colour(now-100, decoder.ColourGreen)) // tie: the earlier stays
	if st, _ := s.Standing(id('v', 0), sub); st.Subject.Colour != decoder.ColourRed {
		t.Fatalf("got %v, want red", st.Subject.Colour)
	}
	// Freeze the overlay by hand, as a running merge does, and add a live
	// layer on top: the newest statement wins across all three layers.
	s.mu.Lock()
	v := s.view.Load()
	s.view.Store(&view{file: v.file, frozen: v.live, info: v.info})
	s.mu.Unlock()
	apply(4, 3, colour(now-50, decoder.ColourYellow))
	if st, _ := s.Standing(id('v', 0), sub); st.Subject.Colour != decoder.ColourYellow {
		t.Fatalf("got %v, want yellow", st.Subject.Colour)
	}
	if err := s.Merge(t0); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Standing(id('v', 0), sub); st.Subject.Colour != decoder.ColourYellow || s.Stats().OverlayRecords != 0 {
		t.Fatalf("after merge: %v, overlay %d", st.Subject.Colour, s.Stats().OverlayRecords)
	}
}

// TestBuilderSpills builds the same snapshot with and without spilled
// runs and expects identical files.
func TestBuilderSpills(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	b := randomBatch(rng, 1, 0, 5000, t0.Unix())
	var files [][]byte
	for _, run := range []int{1 << 20, 997, 97} {
		dir := t.TempDir()
		s := openSet(t, dir, Options{RunRecords: run})
		if err := s.ApplyBatch(b, t0); err != nil {
			t.Fatal(err)
		}
		s.Close()
		data, err := os.ReadFile(filepath.Join(dir, SnapshotName))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, data)
		if left, _ := filepath.Glob(filepath.Join(dir, "revset.run-*")); len(left) > 0 {
			t.Fatalf("run files left: %v", left)
		}
	}
	if !bytes.Equal(files[0], files[1]) || !bytes.Equal(files[0], files[2]) {
		t.Fatal("spilled builds differ from the in-memory build")
	}
}

func TestMergeDuringLookups(t *testing.T) {
	dir := t.TempDir()
	s := openSet(t, dir, Options{MergeRecords: 500})
	defer s.Close()
	now := t0.Unix()
	snap := &verifier.Batch{Version: 1, IssuedAt: t0}
	for i := range 5000 {
		snap.Entries = append(snap.Entries, verifier.Entry{Op: verifier.OpRevoke, Key: id('v', i), Time: now, Expires: now + 3600})
	}
	if err := s.ApplyBatch(snap, t0); err != nil {
		t.Fatal(err)
	}
	// applied is the number of deltas visible; delta k revokes ids
	// 100000+k*100 .. +99. A reader that saw applied=k must find them all.
	var applied atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for !stop.Load() {
				k := applied.Load()
				i := rng.IntN(5000)
				if st, err := s.Standing(id('v', i), nil); err != nil || !st.Revoked {
					errc <- fmt.Errorf("snapshot id %d: %+v %v", i, st, err)
					return
				}
				if k > 0 {
					d := rng.Int64N(k)
					j := 100000 + int(d)*100 + rng.IntN(100)
					if st, err := s.Standing(id('v', j), nil); err != nil || !st.Revoked {
						errc <- fmt.Errorf("delta %d id %d: %+v %v", d, j, st, err)
						return
					}
				}
				if st, _ := s.Standing(id('w', i), nil); st.Revoked {
					errc <- fmt.Errorf("never revoked id %d reported revoked", i)
					return
				}
			}
		}()
	}
	for k := range 40 {
		d := &verifier.Batch{Version: uint64(k + 2), Base: uint64(k + 1), IssuedAt: t0}
		for j := range 100 {
			d.Entries = append(d.Entries, verifier.Entry{Op: verifier.OpRevoke, Key: id('v', 100000+k*100+j), Time: now, Expires: now + 3600})
		}
		if err := s.ApplyBatch(d, t0); err != nil {
			t.Fatal(err)
		}
		applied.Store(int64(k + 1))
		if k%10 == 9 {
			go s.Merge(t0)
		}
	}
	if err := s.WaitMerge(); err != nil {
		t.Fatal(err)
	}
	s.Merge(t0)
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	if st := s.Stats(); st.FileRecords != 5000+4000 || st.OverlayRecords != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// fixture writes a set with a snapshot and two deltas and returns its
// directory and the expected answers.
func fixture(t *testing.T) (string, func(*Set)) {
	dir := t.TempDir()
	s := openSet(t, dir, Options{MergeRecords: -1})
	rng := rand.New(rand.NewPCG(3, 3))
	m := verifier.NewMemStatus()
	for v := uint64(1); v <= 3; v++ {
		base := v - 1
		b := randomBatch(rng, v, base, 300, t0.Unix())
		if err := s.ApplyBatch(b, t0); err != nil {
			t.Fatal(err)
		}
		m.Apply(b, t0)
	}
	s.Close()
	return dir, func(s *Set) { t.Helper(); compareAll(t, s, m, "reopened") }
}

func TestCorruptFile(t *testing.T) {
	cases := map[string]func(t *testing.T, path string){
		"body byte": func(t *testing.T, p string) { flip(t, p, HeaderSize+5*RecordSize+3) },
		"header":    func(t *testing.T, p string) { flip(t, p, 20) },
		"magic":     func(t *testing.T, p string) { flip(t, p, 0) },
		"truncated": func(t *testing.T, p string) {
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()-7)
		},
		"empty": func(t *testing.T, p string) { os.Truncate(p, 0) },
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			dir, _ := fixture(t)
			damage(t, filepath.Join(dir, SnapshotName))
			if _, err := Open(dir, Options{Key: testKey, RefuseCorrupt: true}); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("RefuseCorrupt: %v", err)
			}
			if _, err := OpenFile(filepath.Join(dir, SnapshotName), nil, ModePread, 0); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("OpenFile: %v", err)
			}
			damaged := make(chan error, 1)
			s := openSet(t, dir, Options{OnDamage: func(err error) { damaged <- err }})
			defer s.Close()
			if name == "body byte" {
				// Header and size are sound: the set starts with the file
				// and drops it when the background check finds the damage.
				s.Standing(id('v', 1), id('s', 1))
				select {
				case err := <-damaged:
					if !errors.Is(err, ErrCorrupt) {
						t.Fatalf("OnDamage(%v)", err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("background check did not report the damage")
				}
			}
			if len(s.Recovered()) != 1 || s.Info().Version != 0 || s.Stats().FileRecords != 0 {
				t.Fatalf("recovered %v, info %+v", s.Recovered(), s.Info())
			}
			if st, err := s.Standing(id('v', 1), id('s', 1)); err != nil || st.Revoked || st.Subject.Colour != 0 {
				t.Fatalf("after the drop: %+v, %v", st, err)
			}
			// The gate re-provisions from the next snapshot.
			if err := s.ApplyBatch(&verifier.Batch{Version: 10, IssuedAt: t0}, t0); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("other key", func(t *testing.T) {
		dir, _ := fixture(t)
		other := bytes.Repeat([]byte{1}, 32)
		if _, err := Open(dir, Options{Key: other, RefuseCorrupt: true}); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unsorted", func(t *testing.T) {
		// A file whose checksums are right but whose records are out of
		// order would break binary search: refused too.
		dir := t.TempDir()
		p := filepath.Join(dir, SnapshotName)
		recs := []Record{{Key: 5, Kind: KindRevoke, Expires: 9}, {Key: 3, Kind: KindRevoke, Expires: 9}}
		body := make([]byte, 2*RecordSize)
		recs[0].put(body)
		recs[1].put(body[RecordSize:])
		h := Header{Count: 2, Version: 1, BodyCRC: crc32c(body)}
		os.WriteFile(p, append(h.encode(), body...), 0o600)
		if _, err := OpenFile(p, nil, ModeMmap, 0); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("got %v", err)
		}
	})
}

// TestLazyLookups checks the search used before a file is verified
// (interpolation on the mapping, no index) against the indexed one, for
// every key in a file and as many absent ones, and that a damaged,
// unsorted file still answers without faulting.
func TestLazyLookups(t *testing.T) {
	for _, n := range []int{1, 5, 100, 50_000} {
		dir := t.TempDir()
		s := openSet(t, dir, Options{MergeRecords: -1})
		rng := rand.New(rand.NewPCG(uint64(n), 7))
		w := s.NewSnapshot(1, t0, t0)
		for i := range n {
			e := verifier.Entry{Op: verifier.Op(1 + rng.IntN(3)), Key: id('k', i%(n/2+1)), Time: t0.Unix() - int64(rng.IntN(100)), Expires: t0.Unix() + 1000}
			if e.Op == verifier.OpColour {
				e.Colour = decoder.ColourYellow
			}
			if err := w.Add(&e); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		s.Close()
		path := filepath.Join(dir, SnapshotName)
		indexed, err := OpenFile(path, nil, ModeMmap, 0)
		if err != nil {
			t.Fatal(err)
		}
		lazy, err := openPath(path, nil, ModeMmap, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		if lazy.idx.Load() != nil {
			t.Fatal("lazy open built the index")
		}
		var keys []uint64
		indexed.all(func(r Record) error { keys = append(keys, r.Key, r.Key+1, r.Key-1); return nil })
		keys = append(keys, 0, 1<<64-1)
		for _, k := range keys {
			a, _ := indexed.lookup(k, nil)
			b, _ := lazy.lookup(k, nil)
			if !slices.Equal(a, b) {
				t.Fatalf("n=%d key %x: indexed %v, lazy %v", n, k, a, b)
			}
		}
		if err := lazy.verify(0, nil); err != nil || lazy.idx.Load() == nil {
			t.Fatalf("verify: %v", err)
		}
		indexed.Close()
		lazy.Close()
	}
	// Unsorted garbage: any answer, but no fault and no endless loop.
	p := filepath.Join(t.TempDir(), SnapshotName)
	rng := rand.New(rand.NewPCG(1, 1))
	const n = 10_000
	body := make([]byte, n*RecordSize)
	for i := range body {
		body[i] = byte(rng.Uint32())
	}
	h := Header{Count: n, Version: 1, BodyCRC: crc32c(body)}
	os.WriteFile(p, append(h.encode(), body...), 0o600)
	fl, err := openPath(p, nil, ModeMmap, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	for range 10_000 {
		if _, err := fl.lookup(rng.Uint64(), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := fl.verify(0, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("verify of garbage: %v", err)
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	f.ReadAt(b, off)
	b[0] ^= 0x40
	f.WriteAt(b, off)
}

// TestCrashDuringMerge leaves what a power cut during a merge or a delta
// leaves behind: a half-written temporary snapshot, a temporary log, a
// spilled run, and a torn last log frame. Open must return the state of
// the last completed step.
func TestCrashDuringMerge(t *testing.T) {
	dir, check := fixture(t)
	snap, _ := os.ReadFile(filepath.Join(dir, SnapshotName))
	os.WriteFile(filepath.Join(dir, SnapshotName+".tmp-123"), snap[:len(snap)/2], 0o600)
	os.WriteFile(filepath.Join(dir, LogName+".tmp-9"), []byte("WKREVLOG"), 0o600)
	os.WriteFile(filepath.Join(dir, "revset.run-4"), snap[:100], 0o600)
	// A torn frame: a full header and half the payload of a new delta.
	fr := encodeFrame(&frame{version: 4, base: 3, recs: []Record{{Key: 1, Kind: KindRevoke, Expires: 1 << 31}}})
	lf, _ := os.OpenFile(filepath.Join(dir, LogName), os.O_WRONLY|os.O_APPEND, 0)
	lf.Write(fr[:len(fr)-5])
	lf.Close()
	s := openSet(t, dir, Options{RefuseCorrupt: false})
	check(s)
	if s.Info().Version != 3 {
		t.Fatalf("version %d", s.Info().Version)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*"))
	runs, _ := filepath.Glob(filepath.Join(dir, "revset.run-*"))
	if len(left)+len(runs) != 0 {
		t.Fatalf("leftovers: %v %v", left, runs)
	}
	// The next delta follows version 3 and survives a reopen.
	if err := s.ApplyBatch(&verifier.Batch{Version: 4, Base: 3, IssuedAt: t0, Entries: []verifier.Entry{{Op: verifier.OpRevoke, Key: id('z', 1), Time: t0.Unix(), Expires: t0.Unix() + 60}}}, t0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openSet(t, dir, Options{RefuseCorrupt: true})
	defer s.Close()
	if st, _ := s.Standing(id('z', 1), nil); !st.Revoked || s.Info().Version != 4 {
		t.Fatalf("delta after recovery lost: %+v %+v", st, s.Info())
	}
}

// TestCrashBetweenRenameAndLog: the new snapshot is in place but the log
// still holds the frames it absorbed (the power went before the log was
// rewritten). They must be skipped, and later frames applied.
func TestCrashBetweenRenameAndLog(t *testing.T) {
	dir, check := fixture(t)
	oldLog, _ := os.ReadFile(filepath.Join(dir, LogName))
	s := openSet(t, dir, Options{MergeRecords: -1})
	if err := s.Merge(t0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.WriteFile(filepath.Join(dir, LogName), oldLog, 0o600)
	s = openSet(t, dir, Options{RefuseCorrupt: true})
	defer s.Close()
	check(s)
	if s.Stats().OverlayRecords != 0 {
		t.Fatalf("absorbed frames replayed: %+v", s.Stats())
	}
}

func TestSnapshotReplaces(t *testing.T) {
	dir, _ := fixture(t)
	s := openSet(t, dir, Options{})
	defer s.Close()
	w := s.NewSnapshot(9, t0, t0)
	for i := range 10 {
		if err := w.Add(&verifier.Entry{Op: verifier.OpRevoke, Key: id('n', i), Time: t0.Unix(), Expires: t0.Unix() + 60}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.FileRecords != 10 || st.OverlayRecords != 0 || st.Version != 9 {
		t.Fatalf("stats %+v", st)
	}
	w = s.NewSnapshot(9, t0, t0)
	if err := w.Commit(); !errors.Is(err, verifier.ErrTrustVersion) {
		t.Fatalf("same version twice: %v", err)
	}
	if err := s.ApplyBatch(&verifier.Batch{Version: 10, Base: 9, IssuedAt: t0, Entries: []verifier.Entry{{Op: verifier.OpRevoke, Key: id('n', 1), Time: 1 << 33, Expires: t0.Unix() + 60}}}, t0); err == nil {
		t.Fatal("statement time past 2106 accepted")
	}
}

func crc32c(b []byte) uint32 { return crc32Update(0, b) }

func TestIndexBits(t *testing.T) {
	for _, n := range []uint64{0, 1, 15, 16, 1000, 1 << 20, 10_000_000, 80_000_000} {
		b := indexBits(n, 0)
		if b > DefaultIndexBits || (n >= 16 && n>>b > 16) && b < DefaultIndexBits {
			t.Errorf("n=%d: %d bits", n, b)
		}
	}
	keys := []uint64{0, 1, 1 << 63, 1<<64 - 1}
	ib := newIndexBuilder(100, 0)
	slices.Sort(keys)
	for _, k := range keys {
		ib.add(k)
	}
	ib.finish()
	ix := &fileIndex{index: ib.index, shift: ib.shift}
	for i, k := range keys {
		lo, hi := ix.bucket(k)
		if uint32(i) < lo || uint32(i) >= hi {
			t.Errorf("key %x: bucket [%d,%d) misses %d", k, lo, hi, i)
		}
	}
}

func TestSortRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, n := range []int{0, 10, 5000, 70000} {
		rs := make([]Record, n)
		for i := range rs {
			rs[i] = Record{Key: rng.Uint64() >> uint(rng.IntN(64)), Kind: Kind(1 + rng.IntN(3)), seq: uint32(i)}
			if i > 0 && rng.IntN(4) == 0 {
				rs[i].Key = rs[rng.IntN(i)].Key
			}
		}
		want := slices.Clone(rs)
		slices.SortFunc(want, compareSeq)
		sortRecords(rs, nil)
		if !slices.Equal(rs, want) {
			t.Fatalf("n=%d: radix order differs", n)
		}
	}
}

// TestSnapshotParts: a snapshot added part by part in shuffled order,
// with runs spilled to disk, holds what the parts say read in order.
func TestSnapshotParts(t *testing.T) {
	for _, runRecords := range []int{0, 37} {
		rng := rand.New(rand.NewPCG(5, uint64(runRecords)))
		all := randomBatch(rng, 9, 0, 3000, t0.Unix())
		for i := range all.Entries {
			// Three distinct times: the newest statements about a subject
			// tie often, so the order of the parts decides.
			all.Entries[i].Time = t0.Unix() - 5000 + rng.Int64N(3)
		}
		m := verifier.NewMemStatus()
		if err := m.Apply(all, t0); err != nil {
			t.Fatal(err)
		}
		const parts = 7
		order := rng.Perm(parts)
		s := openSet(t, t.TempDir(), Options{MergeRecords: -1, RunRecords: runRecords})
		w := s.NewSnapshot(all.Version, all.IssuedAt, t0)
		per := (len(all.Entries) + parts - 1) / parts
		for _, p := range order {
			lo, hi := p*per, min((p+1)*per, len(all.Entries))
			if err := w.AddPart(uint32(p), all.Entries[lo:hi]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Add(&all.Entries[0]); !errors.Is(err, errMixed) {
			t.Fatalf("Add after AddPart: %v", err)
		}
		w.err = nil
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		compareAll(t, s, m, fmt.Sprintf("parts %v, runs of %d", order, runRecords))
		s.Close()
	}
}
