package revset

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"wicket/sync/store"
	"wicket/verifier"
)

func pct(l []time.Duration, p float64) float64 {
	s := slices.Clone(l)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(p*float64(len(s))))].Nanoseconds())
}

// BenchmarkBboltBaseline measures today's layout (sync/store, one bbolt
// file, buckets "revoked" and "subjects" with 16-byte keys) at 1M entries:
// file size per entry, Standing latency over random hits and misses, and
// the time to apply a 100k-entry delta. Run with -benchtime 1x.
func BenchmarkBboltBaseline(b *testing.B) {
	const n = 1_000_000
	path := filepath.Join(b.TempDir(), "wicket.db")
	s, err := store.Open(store.Options{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	snap := &verifier.Batch{Version: 1, IssuedAt: t0, Entries: make([]verifier.Entry, n)}
	for i := range snap.Entries {
		snap.Entries[i] = entryFor(i)
	}
	start := time.Now()
	if err := s.ApplyBatch(snap, t0); err != nil {
		b.Fatal(err)
	}
	snapTook := time.Since(start)
	snap = nil
	fi, _ := os.Stat(path)
	rng := rand.New(rand.NewPCG(1, 2))
	type q struct{ id, sub []byte }
	qs := make([]q, 1<<16)
	for i := range qs {
		j, k := rng.IntN(n), rng.IntN(n)
		qs[i] = q{id('v', j-j%5), id('s', k-k%5+3+k%2)}
		if rng.IntN(2) == 0 {
			qs[i].id = id('m', j)
		}
		if rng.IntN(2) == 0 {
			qs[i].sub = id('m', k)
		}
	}
	lat := make([]time.Duration, 0, 1<<20)
	i := 0
	for b.Loop() {
		for range 200_000 {
			x := qs[i&(len(qs)-1)]
			t := time.Now()
			if _, err := s.Standing(x.id, x.sub); err != nil {
				b.Fatal(err)
			}
			if len(lat) < cap(lat) {
				lat = append(lat, time.Since(t))
			}
			i++
		}
	}
	d := &verifier.Batch{Version: 2, Base: 1, IssuedAt: t0, Entries: make([]verifier.Entry, 100_000)}
	for j := range d.Entries {
		d.Entries[j] = entryFor(n + j)
	}
	start = time.Now()
	if err := s.ApplyBatch(d, t0); err != nil {
		b.Fatal(err)
	}
	deltaTook := time.Since(start)
	fi2, _ := os.Stat(path)
	base := baseSize(b)
	b.ReportMetric(pct(lat, 0.5), "lookup-p50-ns")
	b.ReportMetric(pct(lat, 0.99), "lookup-p99-ns")
	b.ReportMetric(float64(fi.Size()-base)/n, "disk-B/entry")
	b.ReportMetric(float64(fi2.Size()-base)/(n+100_000), "disk-B/entry-after-delta")
	b.ReportMetric(snapTook.Seconds(), "snapshot-1M-s")
	b.ReportMetric(float64(deltaTook.Milliseconds()), "delta-100k-ms")
}

// baseSize is the size of an empty store file.
func baseSize(b *testing.B) int64 {
	path := filepath.Join(b.TempDir(), "empty.db")
	s, err := store.Open(store.Options{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	fi, _ := os.Stat(path)
	return fi.Size()
}
