package revset

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"wicket/verifier"
)

// sortedKeys returns n random keys in order, with every tenth repeated
// (a subject with a colour and a void-before record).
func sortedKeys(rng *rand.Rand, n int) []uint64 {
	ks := make([]uint64, 0, n+n/10)
	for i := range n {
		k := rng.Uint64()
		ks = append(ks, k)
		if i%10 == 0 {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

func buildFilterOf(t *testing.T, ks []uint64, upper uint64) *filter {
	t.Helper()
	fb := newFilterBuilder(upper)
	for _, k := range ks {
		fb.add(k)
	}
	f, err := fb.finish()
	if err != nil {
		t.Fatalf("build of %d keys: %v", len(ks), err)
	}
	return f
}

// TestFilterExact checks that every key put in a filter is found, in
// memory and after a round trip through the file, at sizes from empty to
// several shards, and that the false-positive rate is the expected
// ~0.0015 % (2^-16).
func TestFilterExact(t *testing.T) {
	hdr := Header{Count: 7, Version: 3, IssuedAt: t0.Unix(), BodyCRC: 0xabcdef}
	for _, n := range []int{0, 1, 2, 3, 4, 5, 17, 1000, 65_536, 300_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(n), 9))
			ks := sortedKeys(rng, n)
			// 8 shards even for small sets, to test shards (some empty)
			// at every size.
			f := buildFilterOf(t, ks, 5*filterShardKeys)
			if len(f.shards) != 8 {
				t.Fatalf("%d shards", len(f.shards))
			}
			p := filepath.Join(t.TempDir(), FilterName)
			if err := writeFilter(p, f, &hdr); err != nil {
				t.Fatal(err)
			}
			g, err := readFilter(p, &hdr)
			if err != nil {
				t.Fatalf("readFilter: %v", err)
			}
			if g.bytes != f.bytes || g.bits != f.bits {
				t.Fatalf("read back %d bytes %d bits, wrote %d bytes %d bits", g.bytes, g.bits, f.bytes, f.bits)
			}
			for _, k := range ks {
				if !f.contains(k) || !g.contains(k) {
					t.Fatalf("key %x missing (in memory %v, read back %v)", k, f.contains(k), g.contains(k))
				}
			}
			fp := 0
			const probes = 200_000
			for range probes {
				k := rng.Uint64()
				if f.contains(k) != g.contains(k) {
					t.Fatalf("key %x: in memory %v, read back %v", k, f.contains(k), g.contains(k))
				}
				if f.contains(k) {
					fp++
				}
			}
			if fp > 20 {
				t.Fatalf("%d false positives in %d probes, want about 3", fp, probes)
			}
		})
	}
}

// TestFilterFileChecks damages a filter file in every way a disk or an
// interrupted write can and checks it is refused, never trusted.
func TestFilterFileChecks(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	ks := sortedKeys(rng, 5000)
	hdr := Header{Count: 5000, Version: 9, IssuedAt: t0.Unix(), BodyCRC: 42}
	f := buildFilterOf(t, ks, 200_000_000)
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := writeFilter(good, f, &hdr); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	other := hdr
	other.Version++
	if _, err := readFilter(good, &other); !errors.Is(err, ErrFilterStale) {
		t.Fatalf("filter of another snapshot: %v, want ErrFilterStale", err)
	}
	p := filepath.Join(dir, "bad")
	// Every byte of the header and of the first shard heads, and bytes
	// spread over the fingerprints.
	var offs []int
	for i := range filterHeaderSize + 3*shardHeadSize {
		offs = append(offs, i)
	}
	for i := filterHeaderSize; i < len(data); i += 997 {
		offs = append(offs, i)
	}
	for _, off := range offs {
		b := slices.Clone(data)
		b[off] ^= 0x10
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		g, err := readFilter(p, &hdr)
		if g != nil || err == nil || !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrFilterStale) {
			t.Fatalf("byte %d flipped: %v", off, err)
		}
	}
	for _, n := range []int{0, 10, filterHeaderSize, filterHeaderSize + 5, len(data) - 1} {
		if err := os.WriteFile(p, data[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := readFilter(p, &hdr); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut to %d bytes: %v", n, err)
		}
	}
	if err := os.WriteFile(p, append(slices.Clone(data), 0), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readFilter(p, &hdr); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("one byte appended: %v", err)
	}
}

// TestFilterOutOfOrder: keys out of order (a damaged snapshot) make the
// build fail instead of giving a filter that misses keys.
func TestFilterOutOfOrder(t *testing.T) {
	fb := newFilterBuilder(1 << 30)
	fb.add(1 << 63)
	fb.add(1)
	if _, err := fb.finish(); err == nil {
		t.Fatal("a filter from keys out of order")
	}
}

// filterFixture builds an n-entry snapshot of the standard mix in a new
// directory, with its filter file.
func filterFixture(t *testing.T, n int) string {
	dir := t.TempDir()
	buildSnapshot(t, dir, n, Options{})
	if _, err := os.Stat(filepath.Join(dir, FilterName)); err != nil {
		t.Fatalf("no filter file after the snapshot: %v", err)
	}
	return dir
}

// openReady opens a set and waits for the background work after Open
// (the check of the snapshot, the filter's load or build).
func openReady(t *testing.T, dir string, o Options) *Set {
	s := openSet(t, dir, o)
	if err := s.WaitMerge(); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFilterDifferential compares a set with the filter with the same
// set without it on a million entries (100,000 under the race detector,
// which makes the build 20 times slower): every statement of the
// snapshot, random absent keys, and the overlay of a delta, before and
// after a merge; and counts how many absent keys the filter lets through
// to the file.
func TestFilterDifferential(t *testing.T) {
	n := 1_000_000
	if raceEnabled {
		n = 100_000
	}
	dir := filterFixture(t, n)
	plainDir := t.TempDir()
	if err := os.Link(filepath.Join(dir, SnapshotName), filepath.Join(plainDir, SnapshotName)); err != nil {
		copyFile(t, filepath.Join(dir, SnapshotName), filepath.Join(plainDir, SnapshotName))
	}
	s := openReady(t, dir, Options{MergeRecords: -1})
	defer s.Close()
	plain := openReady(t, plainDir, Options{MergeRecords: -1, NoFilter: true})
	defer plain.Close()
	st := s.Stats()
	if st.FilterBytes == 0 || plain.Stats().FilterBytes != 0 {
		t.Fatalf("filter bytes %d with, %d without", st.FilterBytes, plain.Stats().FilterBytes)
	}
	if bpe := float64(st.FilterBytes) / float64(n); bpe > 2.4 {
		t.Fatalf("filter %.2f bytes per entry", bpe)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	compare := func(what string, vid, sub []byte) verifier.Standing {
		t.Helper()
		got, err := s.Standing(vid, sub)
		if err != nil {
			t.Fatal(err)
		}
		want, err := plain.Standing(vid, sub)
		if err != nil {
			t.Fatal(err)
		}
		if !eqStanding(got, want) {
			t.Fatalf("%s: Standing(%x, %x) = %+v with the filter, %+v without", what, vid, sub, got, want)
		}
		return got
	}
	check := func(what string, extra int) {
		t.Helper()
		hits, k := 0, n/20
		for range k {
			i := rng.IntN(n + extra)
			e := entryFor(i)
			if e.Op == verifier.OpRevoke {
				if st := compare(what+" present", e.Key, id('m', i)); st.Revoked {
					hits++
				}
			} else if st := compare(what+" present", id('m', i), e.Key); st.Subject != (verifier.Standing{}).Subject {
				hits++
			}
			compare(what+" absent", id('m', rng.Int()), id('m', rng.Int()))
		}
		if hits != k {
			t.Fatalf("%s: %d of %d statements found", what, hits, k)
		}
	}
	check("snapshot", 0)
	passed := 0
	f := s.view.Load().file
	for range 1_000_000 {
		if f.flt.Load().contains(rng.Uint64()) {
			passed++
		}
	}
	t.Logf("filter %.3f bytes/entry, %d shards; %.4f%% of absent keys reach the file", float64(st.FilterBytes)/float64(n), len(f.flt.Load().shards), 100*float64(passed)/1_000_000)
	if passed > 60 {
		t.Fatalf("%d of 1000000 absent keys pass the filter, want about 15", passed)
	}
	d := delta(2, n, 20_000)
	for _, set := range []*Set{s, plain} {
		if err := set.ApplyBatch(d, t0); err != nil {
			t.Fatal(err)
		}
	}
	// The delta's entries are entryFor(n+40000 ...): present only in the
	// overlay.
	for j := range d.Entries {
		e := d.Entries[j]
		if e.Op == verifier.OpRevoke {
			if st := compare("overlay", e.Key, nil); !st.Revoked {
				t.Fatalf("overlay revocation %d not found", j)
			}
		} else {
			compare("overlay", id('m', j), e.Key)
		}
	}
	if err := s.Merge(t0); err != nil {
		t.Fatal(err)
	}
	if s.Stats().FilterBytes <= st.FilterBytes {
		t.Fatalf("filter of the merged file: %d bytes, before %d", s.Stats().FilterBytes, st.FilterBytes)
	}
	for j := range d.Entries {
		e := d.Entries[j]
		compare("merged", e.Key, e.Key)
	}
	check("merged", 0)
}

// TestFilterRecovery: a missing, damaged or stale filter file (one of an
// earlier snapshot) is never used; the set answers from the file until
// the filter is rebuilt, and saves the rebuilt one.
func TestFilterRecovery(t *testing.T) {
	dir, _ := fixture(t)
	fp := filepath.Join(dir, FilterName)
	old, err := os.ReadFile(fp)
	if err != nil {
		t.Fatal(err)
	}
	// A later snapshot with other entries makes old stale.
	s := openReady(t, dir, Options{MergeRecords: -1})
	var entries []verifier.Entry
	for i := range 2000 {
		entries = append(entries, entryFor(i))
	}
	if err := s.ApplyBatch(&verifier.Batch{Version: 10, IssuedAt: t0, Entries: entries}, t0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	current, err := os.ReadFile(fp)
	if err != nil {
		t.Fatal(err)
	}
	checkNew := func(s *Set) {
		t.Helper()
		for i := range 2000 {
			e := entryFor(i)
			var st verifier.Standing
			if e.Op == verifier.OpRevoke {
				st, _ = s.Standing(e.Key, nil)
				if !st.Revoked {
					t.Fatalf("revocation %d not found", i)
				}
			} else if st, _ = s.Standing(id('m', i), e.Key); st.Subject == (verifier.Standing{}).Subject {
				t.Fatalf("statement %d not found", i)
			}
		}
	}
	damaged := slices.Clone(current)
	damaged[len(damaged)/2] ^= 1
	for name, write := range map[string]func() error{
		"missing": func() error { return os.Remove(fp) },
		"damaged": func() error { return os.WriteFile(fp, damaged, 0o600) },
		"stale":   func() error { return os.WriteFile(fp, old, 0o600) },
		"cut":     func() error { return os.WriteFile(fp, current[:100], 0o600) },
		"leftover": func() error {
			return os.WriteFile(filepath.Join(dir, FilterName+".tmp-123"), damaged, 0o600)
		},
	} {
		if err := write(); err != nil {
			t.Fatal(err)
		}
		s := openSet(t, dir, Options{MergeRecords: -1})
		checkNew(s) // before, during or after the rebuild
		if err := s.WaitMerge(); err != nil {
			t.Fatal(err)
		}
		if s.Stats().FilterBytes == 0 {
			t.Fatalf("%s: no filter after the rebuild", name)
		}
		checkNew(s)
		s.Close()
		got, err := os.ReadFile(fp)
		if err != nil || !slices.Equal(got, current) {
			t.Fatalf("%s: filter file not rebuilt as it was (%d bytes, %v)", name, len(got), err)
		}
		if m, _ := filepath.Glob(filepath.Join(dir, FilterName+".tmp-*")); len(m) != 0 {
			t.Fatalf("%s: leftovers %v", name, m)
		}
	}
}
