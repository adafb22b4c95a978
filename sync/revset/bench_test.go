package revset

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/verifier"
)

// Benchmarks at 1M and 10M entries; 80M with WICKET_REVSET_LARGE=1.
// Fixtures are built once per process through the real snapshot path.

var (
	fixtureMu   sync.Mutex
	fixtureRoot string
	fixtures    = map[int]string{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureRoot != "" {
		os.RemoveAll(fixtureRoot)
	}
	os.Exit(code)
}

func large() bool { return os.Getenv("WICKET_REVSET_LARGE") == "1" }

func benchSizes() []int {
	s := []int{1_000_000, 10_000_000}
	if large() {
		s = append(s, 80_000_000)
	}
	return s
}

func sizeName(n int) string {
	if n%1_000_000 == 0 {
		return fmt.Sprintf("n=%dM", n/1_000_000)
	}
	return fmt.Sprintf("n=%d", n)
}

// entryFor is entry i of a fixture of the standard mix: 3/5 revocations,
// 1/5 colour and 1/5 void-before statements.
func entryFor(i int) verifier.Entry {
	now := t0.Unix()
	switch i % 5 {
	case 3:
		return verifier.Entry{Op: verifier.OpColour, Key: id('s', i), Time: now - int64(i%1000), Expires: now + 86400*30, Colour: decoder.Colour(1 + i%3)}
	case 4:
		return verifier.Entry{Op: verifier.OpVoidBefore, Key: id('s', i), Time: now - int64(i%1000), Expires: now + 86400*30}
	}
	return verifier.Entry{Op: verifier.OpRevoke, Key: id('v', i), Time: now, Expires: now + 86400*30 + int64(i%86400)}
}

// buildSnapshot writes an n-entry snapshot into dir and returns the time
// it took.
func buildSnapshot(tb testing.TB, dir string, n int, o Options) time.Duration {
	s := openSet(tb, dir, o)
	defer s.Close()
	start := time.Now()
	w := s.NewSnapshot(1, t0, t0)
	// Entries arrive in documents of 64k, as from the trust sync.
	es := make([]verifier.Entry, 0, 1<<16)
	for i := range n {
		es = append(es, entryFor(i))
		if len(es) == cap(es) || i == n-1 {
			if err := w.AddEntries(es); err != nil {
				tb.Fatal(err)
			}
			es = es[:0]
		}
	}
	if err := w.Commit(); err != nil {
		tb.Fatal(err)
	}
	return time.Since(start)
}

// openVerified opens a set and waits for the background check of its
// snapshot, so a benchmark measures the steady state (index built, no
// check reading the file on the other core).
func openVerified(b *testing.B, dir string, o Options) *Set {
	s := openSet(b, dir, o)
	for !s.Verified() {
		if len(s.Recovered()) > 0 {
			b.Fatalf("fixture damaged: %v", s.Recovered())
		}
		time.Sleep(time.Millisecond)
	}
	return s
}

// settle lets the machine finish what building a fixture left behind (the
// garbage of the build, write-back of its temporary files) before a
// benchmark measures latencies: a GC, a sync, a second of quiet.
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
	syscall.Sync()
	time.Sleep(time.Second)
}

// fixtureDir returns a directory holding an n-entry snapshot, built once.
func fixtureDir(tb testing.TB, n int) string {
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if d, ok := fixtures[n]; ok {
		return d
	}
	if fixtureRoot == "" {
		r, err := os.MkdirTemp("", "revset-bench-")
		if err != nil {
			tb.Fatal(err)
		}
		fixtureRoot = r
	}
	d := filepath.Join(fixtureRoot, sizeName(n))
	took := buildSnapshot(tb, d, n, Options{})
	tb.Logf("built %d-entry fixture in %v", n, took)
	settle()
	fixtures[n] = d
	return d
}

// cloneFixture links the immutable snapshot into a fresh directory, so a
// benchmark can apply deltas and merge without touching the fixture.
func cloneFixture(tb testing.TB, n int) string {
	src := fixtureDir(tb, n)
	dst := tb.TempDir()
	if err := os.Link(filepath.Join(src, SnapshotName), filepath.Join(dst, SnapshotName)); err != nil {
		copyFile(tb, filepath.Join(src, SnapshotName), filepath.Join(dst, SnapshotName))
	}
	return dst
}

func copyFile(tb testing.TB, from, to string) {
	in, err := os.Open(from)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
}

type query struct{ id, sub []byte }

// queries are random (id, subject) pairs; each is a hit with probability
// 1/2 independently.
func queries(n, count int) []query {
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	qs := make([]query, count)
	for i := range qs {
		j := rng.IntN(n)
		if rng.IntN(2) == 0 {
			qs[i].id = id('v', j-j%5) // a revocation of the fixture
		} else {
			qs[i].id = id('m', j)
		}
		k := rng.IntN(n)
		if rng.IntN(2) == 0 {
			qs[i].sub = id('s', k-k%5+3+k%2) // a subject with statements
		} else {
			qs[i].sub = id('m', k)
		}
	}
	return qs
}

// latencies collects per-operation durations for percentiles.
type latencies []time.Duration

func (l latencies) pct(p float64) float64 {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(p*float64(len(s))))].Nanoseconds())
}

func (l latencies) report(b *testing.B, prefix string) {
	b.ReportMetric(l.pct(0.50), prefix+"p50-ns")
	b.ReportMetric(l.pct(0.99), prefix+"p99-ns")
}

// BenchmarkLookup measures Standing(id, subject) as a decision calls it
// (two keyed hashes, two lookups), and StandingKeys on hashed keys, with
// mmap and with pread.
func BenchmarkLookup(b *testing.B) {
	for _, n := range benchSizes() {
		for _, mode := range []Mode{ModeMmap, ModePread} {
			mname := map[Mode]string{ModeMmap: "mmap", ModePread: "pread"}[mode]
			b.Run(sizeName(n)+"/"+mname, func(b *testing.B) {
				s := openVerified(b, fixtureDir(b, n), Options{Mode: mode, MergeRecords: -1})
				defer s.Close()
				qs := queries(n, 1<<16)
				type kq struct{ v, s uint64 }
				ks := make([]kq, len(qs))
				for i, q := range qs {
					ks[i] = kq{s.h.Voucher(q.id), s.h.Subject(q.sub)}
				}
				st := s.Stats()
				b.Run("ids", func(b *testing.B) {
					lat := make(latencies, 0, 1<<20)
					i := 0
					for b.Loop() {
						q := qs[i&(len(qs)-1)]
						t := time.Now()
						if _, err := s.Standing(q.id, q.sub); err != nil {
							b.Fatal(err)
						}
						if len(lat) < cap(lat) {
							lat = append(lat, time.Since(t))
						}
						i++
					}
					lat.report(b, "")
					b.ReportMetric(float64(st.FileBytes)/float64(n), "disk-B/entry")
				})
				b.Run("keys", func(b *testing.B) {
					lat := make(latencies, 0, 1<<20)
					i := 0
					for b.Loop() {
						q := ks[i&(len(ks)-1)]
						t := time.Now()
						if _, err := s.StandingKeys(q.v, q.s, true); err != nil {
							b.Fatal(err)
						}
						if len(lat) < cap(lat) {
							lat = append(lat, time.Since(t))
						}
						i++
					}
					lat.report(b, "")
					b.ReportMetric(float64(st.IndexBytes)/(1<<20), "index-MiB")
				})
				if mode != ModeMmap {
					return
				}
				// The two file lookups of StandingKeys in the seconds after
				// a start, before the background check has built the
				// index: interpolation search on the mapping.
				b.Run("keys-before-check", func(b *testing.B) {
					fl, err := openPath(filepath.Join(fixtureDir(b, n), SnapshotName), nil, ModeMmap, 0, true)
					if err != nil {
						b.Fatal(err)
					}
					defer fl.Close()
					lat := make(latencies, 0, 1<<20)
					var buf [8]Record
					i := 0
					for b.Loop() {
						q := ks[i&(len(ks)-1)]
						t := time.Now()
						fl.lookup(q.v, buf[:0])
						fl.lookup(q.s, buf[:0])
						if len(lat) < cap(lat) {
							lat = append(lat, time.Since(t))
						}
						i++
					}
					lat.report(b, "")
				})
			})
		}
	}
}

// delta returns a 100k-entry delta of new statements (same mix).
func delta(version uint64, n, k int) *verifier.Batch {
	d := &verifier.Batch{Version: version, Base: version - 1, IssuedAt: t0}
	d.Entries = make([]verifier.Entry, k)
	for j := range d.Entries {
		d.Entries[j] = entryFor(n + int(version)*k + j)
	}
	return d
}

// lookupWhile runs lookups on one goroutine until stop is set and returns
// the latencies of those that started and ended while active was set
// (nil active: all of them).
func lookupWhile(s *Set, qs []query, stop, active *atomic.Bool) latencies {
	lat := make(latencies, 0, 1<<20)
	for i := 0; !stop.Load(); i++ {
		q := qs[i&(len(qs)-1)]
		a := active == nil || active.Load()
		t := time.Now()
		s.Standing(q.id, q.sub)
		d := time.Since(t)
		if a && (active == nil || active.Load()) && len(lat) < cap(lat) {
			lat = append(lat, d)
		}
	}
	return lat
}

// BenchmarkApplyDelta100k applies 100k-entry deltas (hash, sort, log
// append + fsync, overlay merge) on top of the n-entry snapshot while one
// goroutine keeps looking up, and reports that goroutine's latency.
func BenchmarkApplyDelta100k(b *testing.B) {
	for _, n := range benchSizes()[:2] {
		b.Run(sizeName(n), func(b *testing.B) {
			s := openVerified(b, cloneFixture(b, n), Options{MergeRecords: -1})
			defer s.Close()
			qs := queries(n, 1<<16)
			var stop, active atomic.Bool
			var lat latencies
			done := make(chan struct{})
			go func() { lat = lookupWhile(s, qs, &stop, &active); close(done) }()
			v := uint64(1)
			for b.Loop() {
				b.StopTimer()
				d := delta(v+1, n, 100_000)
				b.StartTimer()
				active.Store(true)
				if err := s.ApplyBatch(d, t0); err != nil {
					b.Fatal(err)
				}
				active.Store(false)
				v++
			}
			stop.Store(true)
			<-done
			lat.report(b, "lookup-")
			b.ReportMetric(float64(len(lat))/float64(b.N), "lookups/apply")
		})
	}
}

// BenchmarkLookupDuringMerge applies a 100k delta, then merges it into a
// new n-entry file while one goroutine looks up, and reports the merge
// time and the lookup latency during it.
func BenchmarkLookupDuringMerge(b *testing.B) {
	sizes := benchSizes()
	if !large() {
		sizes = sizes[:2]
	}
	for _, n := range sizes {
		b.Run(sizeName(n), func(b *testing.B) {
			s := openVerified(b, cloneFixture(b, n), Options{MergeRecords: -1})
			defer s.Close()
			qs := queries(n, 1<<16)
			var all latencies
			v := uint64(1)
			for b.Loop() {
				b.StopTimer()
				if err := s.ApplyBatch(delta(v+1, n, 100_000), t0); err != nil {
					b.Fatal(err)
				}
				v++
				var stop atomic.Bool
				var lat latencies
				done := make(chan struct{})
				go func() { lat = lookupWhile(s, qs, &stop, nil); close(done) }()
				b.StartTimer()
				if err := s.Merge(t0); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				stop.Store(true)
				<-done
				all = append(all, lat...)
				b.StartTimer()
			}
			all.report(b, "lookup-")
			b.ReportMetric(all.pct(0.999), "lookup-p99.9-ns")
			b.ReportMetric(float64(len(all))/float64(b.N), "lookups/merge")
		})
	}
}

func benchBuild(b *testing.B, n int) {
	for b.Loop() {
		dir := b.TempDir()
		took := buildSnapshot(b, dir, n, Options{})
		fi, err := os.Stat(filepath.Join(dir, SnapshotName))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(fi.Size())/float64(n), "disk-B/entry")
		b.ReportMetric(took.Seconds(), "build-s")
		os.RemoveAll(dir)
	}
}

// BenchmarkBuild1M and BenchmarkBuild10M build a full snapshot from
// entries: keyed hash, external sort, write, fsync, rename, open.
func BenchmarkBuild1M(b *testing.B)  { benchBuild(b, 1_000_000) }
func BenchmarkBuild10M(b *testing.B) { benchBuild(b, 10_000_000) }

// TestLarge builds a 10M-entry snapshot (WICKET_REVSET_LARGE=1), checks
// lookups, applies a 100k delta, merges and reopens. It is meant to run
// on armv7 as well:
//
//	GOARCH=arm GOARM=7 go test -exec qemu-arm-static -run Large ./sync/revset
func TestLarge(t *testing.T) {
	if !large() {
		t.Skip("set WICKET_REVSET_LARGE=1")
	}
	const n = 10_000_000
	dir := t.TempDir()
	took := buildSnapshot(t, dir, n, Options{})
	t.Logf("build %d entries: %v (run records %d)", n, took, DefaultRunRecords)
	start := time.Now()
	s := openSet(t, dir, Options{MergeRecords: -1})
	t.Logf("open (header, size, map): %v; stats %+v", time.Since(start), s.Stats())
	if st := s.Stats(); st.FileRecords != n || st.FileBytes != HeaderSize+n*RecordSize {
		t.Fatalf("stats %+v", st)
	}
	check := func(what string) {
		rng := rand.New(rand.NewPCG(5, 5))
		start := time.Now()
		const k = 20_000
		for range k {
			i := rng.IntN(n)
			e := entryFor(i)
			var st verifier.Standing
			var err error
			switch e.Op {
			case verifier.OpRevoke:
				st, err = s.Standing(e.Key, nil)
				if err != nil || !st.Revoked {
					t.Fatalf("%s: entry %d not revoked: %v", what, i, err)
				}
			case verifier.OpColour:
				st, err = s.Standing(id('m', i), e.Key)
				if err != nil || st.Revoked || st.Subject.Colour != e.Colour || st.Subject.ColourAt.Unix() != e.Time {
					t.Fatalf("%s: entry %d: %+v %v", what, i, st, err)
				}
			case verifier.OpVoidBefore:
				st, err = s.Standing(id('m', i), e.Key)
				if err != nil || st.Subject.VoidBefore.Unix() != e.Time {
					t.Fatalf("%s: entry %d: %+v %v", what, i, st, err)
				}
			}
			if st, _ := s.Standing(id('m', i), id('m', i)); st != (verifier.Standing{}) {
				t.Fatalf("%s: miss %d: %+v", what, i, st)
			}
		}
		t.Logf("%s: %d hit + %d miss lookups, %v per Standing", what, k, k, time.Since(start)/(2*k))
	}
	if !s.Verified() {
		check("before the background check (interpolation search)")
	}
	for !s.Verified() {
		if len(s.Recovered()) > 0 || time.Since(start) > 30*time.Minute {
			t.Fatalf("background check: recovered %v after %v", s.Recovered(), time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("background check (checksum, order, index) done %v after open; stats %+v", time.Since(start), s.Stats())
	check("snapshot")
	d := delta(2, n, 100_000)
	start = time.Now()
	if err := s.ApplyBatch(d, t0); err != nil {
		t.Fatal(err)
	}
	t.Logf("apply 100k delta: %v", time.Since(start))
	start = time.Now()
	if err := s.Merge(t0); err != nil {
		t.Fatal(err)
	}
	t.Logf("merge into %d-entry file: %v", s.Stats().FileRecords, time.Since(start))
	check("merged")
	s.Close()
	s = openSet(t, dir, Options{RefuseCorrupt: true, MergeRecords: -1})
	defer s.Close()
	if got := s.Stats().FileRecords; got != n+100_000 {
		t.Fatalf("reopened: %d records", got)
	}
	e := d.Entries[0]
	if st, _ := s.Standing(e.Key, nil); e.Op == verifier.OpRevoke && !st.Revoked {
		t.Fatal("delta lost")
	}
}
