package revset

import (
	"bufio"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Lookups on a large set under a memory limit, as on a 512 MB board:
// scripts/revset-512m.sh builds the fixture (TestLimitedFixture, outside
// the limit), then runs BenchmarkLookupUnderLimit inside a memory cgroup
// with the page cache dropped. Both are skipped without
// WICKET_REVSET_DIR. Environment:
//
//	WICKET_REVSET_DIR      the fixture directory (kept between runs)
//	WICKET_REVSET_N        entries (80,000,000)
//	WICKET_REVSET_LOOKUPS  lookups of the mix (2,000,000; a twentieth
//	                       without the filter)
//	WICKET_REVSET_REBUILD  1: remove the filter file first, so Open
//	                       rebuilds it under the limit

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func limitedDir(tb testing.TB) (string, int) {
	dir := os.Getenv("WICKET_REVSET_DIR")
	if dir == "" {
		tb.Skip("set WICKET_REVSET_DIR (see scripts/revset-512m.sh)")
	}
	return dir, envInt("WICKET_REVSET_N", 80_000_000)
}

// fixtureRecords reads the record count from the header of the snapshot
// in dir (0 if there is none).
func fixtureRecords(dir string) uint64 {
	f, err := os.Open(filepath.Join(dir, SnapshotName))
	if err != nil {
		return 0
	}
	defer f.Close()
	h := make([]byte, HeaderSize)
	if _, err := f.Read(h); err != nil {
		return 0
	}
	hdr, err := decodeHeader(h)
	if err != nil {
		return 0
	}
	return hdr.Count
}

// TestLimitedFixture builds the n-entry fixture of the standard mix in
// WICKET_REVSET_DIR unless it is there already.
func TestLimitedFixture(t *testing.T) {
	dir, n := limitedDir(t)
	if fixtureRecords(dir) == uint64(n) {
		t.Logf("%s holds %d records", dir, n)
		return
	}
	os.RemoveAll(dir)
	took := buildSnapshot(t, dir, n, Options{})
	fi, err := os.Stat(filepath.Join(dir, FilterName))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %d entries in %v; filter file %d bytes (%.3f per entry)", n, took, fi.Size(), float64(fi.Size())/float64(n))
}

// procStatus reads the resident memory of this process, in bytes:
// RssAnon, RssFile, VmHWM.
func procStatus() map[string]float64 {
	m := map[string]float64{}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		fs := strings.Fields(v)
		if !ok || len(fs) != 2 || fs[1] != "kB" {
			continue
		}
		if x, err := strconv.ParseFloat(fs[0], 64); err == nil {
			m[k] = x * 1024
		}
	}
	return m
}

// cgroupMemory reads this process's memory cgroup, in bytes, under the
// cgroup v2 names: max, current, peak, anon, file (v1: limit_in_bytes,
// usage_in_bytes, max_usage_in_bytes, rss, cache).
func cgroupMemory() map[string]float64 {
	m := map[string]float64{}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return m
	}
	// read takes the named single-number files of the cgroup directory d
	// and the named lines of its memory.stat.
	read := func(d string, files, stat map[string]string) {
		for k, f := range files {
			b, err := os.ReadFile(filepath.Join(d, f))
			if x, perr := strconv.ParseFloat(strings.TrimSpace(string(b)), 64); err == nil && perr == nil {
				m[k] = x
			}
		}
		b, err := os.ReadFile(filepath.Join(d, "memory.stat"))
		if err != nil {
			return
		}
		for _, l := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(l, " ")
			if to, ok := stat[k]; ok {
				if x, err := strconv.ParseFloat(v, 64); err == nil {
					m[to] = x
				}
			}
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		switch {
		case len(parts) != 3:
		case parts[1] == "memory":
			read("/sys/fs/cgroup/memory"+parts[2],
				map[string]string{"max": "memory.limit_in_bytes", "current": "memory.usage_in_bytes", "peak": "memory.max_usage_in_bytes"},
				map[string]string{"rss": "anon", "cache": "file"})
			return m
		case parts[0] == "0" && parts[1] == "":
			read("/sys/fs/cgroup"+parts[2],
				map[string]string{"max": "memory.max", "current": "memory.current", "peak": "memory.peak"},
				map[string]string{"anon": "anon", "file": "file"})
		}
	}
	return m
}

// majorFaults returns the process's major page faults so far (-1 if
// unknown).
func majorFaults() int {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return -1
	}
	// Fields after the command, which is in parentheses: state is the
	// first, majflt the tenth.
	i := strings.LastIndexByte(string(b), ')')
	fs := strings.Fields(string(b[i+1:]))
	if len(fs) < 10 {
		return -1
	}
	n, err := strconv.Atoi(fs[9])
	if err != nil {
		return -1
	}
	return n
}

// dropCaches drops the page cache (root only) and reports whether it did.
func dropCaches() bool {
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0) == nil
}

// BenchmarkLookupUnderLimit opens the fixture (with the filter, then
// without), drops the page cache, and measures Standing(id, subject) on
// a gate's mix: 99.9 % of the vouchers and subjects unknown, 0.1 % a
// revoked voucher, each answer checked. It then measures revoked
// vouchers alone after dropping the page cache again: the cost of a hit
// that reads the disk; and unknown ones alone (no lookup then waits for
// the disk while other processes take the CPU and its caches). Memory is read after Open's background work, a
// GC and the drop.
func BenchmarkLookupUnderLimit(b *testing.B) {
	dir, n := limitedDir(b)
	if got := fixtureRecords(dir); got != uint64(n) {
		b.Fatalf("%s holds %d records, want %d: run TestLimitedFixture first", dir, got, n)
	}
	cg := cgroupMemory()
	b.Logf("cgroup memory limit %.0f MiB; GOMAXPROCS %d", cg["max"]/(1<<20), runtime.GOMAXPROCS(0))
	for _, withFilter := range []bool{true, false} {
		name := map[bool]string{true: "filter", false: "nofilter"}[withFilter]
		lookups := envInt("WICKET_REVSET_LOOKUPS", 2_000_000)
		if !withFilter {
			lookups /= 20
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				lookupUnderLimit(b, dir, n, lookups, withFilter)
			}
		})
	}
}

func lookupUnderLimit(b *testing.B, dir string, n, lookups int, withFilter bool) {
	const MiB = 1 << 20
	if withFilter && os.Getenv("WICKET_REVSET_REBUILD") == "1" {
		os.Remove(filepath.Join(dir, FilterName))
	}
	runtime.GC()
	debug.FreeOSMemory()
	base := procStatus()
	if !dropCaches() {
		b.Log("page cache not dropped (needs root)")
	}
	start := time.Now()
	s, err := Open(dir, Options{Key: testKey, MergeRecords: -1, NoFilter: !withFilter})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	opened := time.Since(start)
	if err := s.WaitMerge(); err != nil {
		b.Fatal(err)
	}
	ready := time.Since(start)
	st := s.Stats()
	if withFilter && st.FilterBytes == 0 {
		b.Fatal("no filter after Open's background work")
	}
	hwm := procStatus()["VmHWM"]
	runtime.GC()
	debug.FreeOSMemory()
	dropCaches()
	mem, cgm := procStatus(), cgroupMemory()
	b.Logf("Open %v, check and filter ready %v; filter %.1f MiB, index %.1f MiB", opened, ready, float64(st.FilterBytes)/MiB, float64(st.IndexBytes)/MiB)
	b.Logf("process: RssAnon %.1f MiB (%.1f before Open), RssFile %.1f MiB, VmHWM %.1f MiB (peak of the process so far); cgroup: current %.1f MiB, anon %.1f, file %.1f, peak %.1f",
		mem["RssAnon"]/MiB, base["RssAnon"]/MiB, mem["RssFile"]/MiB, hwm/MiB, cgm["current"]/MiB, cgm["anon"]/MiB, cgm["file"]/MiB, cgm["peak"]/MiB)
	b.ReportMetric((mem["RssAnon"]-base["RssAnon"])/float64(n), "set-anon-B/entry")
	b.ReportMetric(cgm["anon"]/float64(n), "cgroup-anon-B/entry")
	b.ReportMetric(float64(st.FilterBytes+st.IndexBytes)/float64(n), "filter+index-B/entry")
	b.ReportMetric(ready.Seconds(), "ready-s")

	var vid, sub [16]byte
	set := func(p *[16]byte, prefix byte, i int) {
		p[0] = prefix
		binary.BigEndian.PutUint64(p[8:], uint64(i))
	}
	rng := rand.New(rand.NewPCG(uint64(n), 80))
	revoked := func() int { return rng.IntN(n/5)*5 + rng.IntN(3) } // entryFor: i%5 < 3 revoke
	misses := make(latencies, 0, lookups)
	hits := make(latencies, 0, lookups/500+16)
	for i := range lookups {
		hit := rng.IntN(1000) == 0
		if hit {
			set(&vid, 'v', revoked())
		} else {
			set(&vid, 'm', rng.Int())
		}
		set(&sub, 'm', rng.Int())
		t := time.Now()
		got, err := s.Standing(vid[:], sub[:])
		d := time.Since(t)
		if err != nil || got.Revoked != hit {
			b.Fatalf("lookup %d: revoked %v, want %v (%v)", i, got.Revoked, hit, err)
		}
		if hit {
			hits = append(hits, d)
		} else {
			misses = append(misses, d)
		}
	}
	after := procStatus()
	all := append(slices.Clone(misses), hits...)
	b.ReportMetric(all.pct(0.50), "p50-ns")
	b.ReportMetric(all.pct(0.99), "p99-ns")
	b.ReportMetric(all.pct(0.999), "p99.9-ns")
	b.ReportMetric(misses.pct(0.99), "miss-p99-ns")
	b.ReportMetric(hits.pct(0.50), "hit-p50-ns")
	b.ReportMetric(hits.pct(0.99), "hit-p99-ns")
	b.ReportMetric(float64(len(hits)), "hits")
	b.Logf("%d lookups (%d hits): RssAnon %.1f MiB, RssFile %.1f MiB after them", lookups, len(hits), after["RssAnon"]/MiB, after["RssFile"]/MiB)

	// Misses alone: no lookup blocks on the disk, so none runs on caches
	// that another process filled meanwhile. Major page faults meanwhile
	// (the program's own code read back after reclaim) are counted.
	flt0 := majorFaults()
	for i := range misses {
		set(&vid, 'm', rng.Int())
		set(&sub, 'm', rng.Int())
		t := time.Now()
		got, err := s.Standing(vid[:], sub[:])
		misses[i] = time.Since(t)
		if err != nil || got.Revoked {
			b.Fatalf("miss %d: %+v %v", i, got, err)
		}
	}
	b.ReportMetric(misses.pct(0.50), "miss-only-p50-ns")
	b.ReportMetric(misses.pct(0.99), "miss-only-p99-ns")
	b.ReportMetric(misses.pct(0.999), "miss-only-p99.9-ns")
	b.ReportMetric(float64(majorFaults()-flt0), "miss-only-majflt")

	// Hits alone, from a cold page cache: each reads the disk.
	dropCaches()
	cold := make(latencies, 0, 2000)
	for i := range cap(cold) {
		set(&vid, 'v', revoked())
		t := time.Now()
		got, err := s.Standing(vid[:], nil)
		d := time.Since(t)
		if err != nil || !got.Revoked {
			b.Fatalf("cold hit %d: %+v %v", i, got, err)
		}
		cold = append(cold, d)
	}
	b.ReportMetric(cold.pct(0.50), "cold-hit-p50-ns")
	b.ReportMetric(cold.pct(0.99), "cold-hit-p99-ns")
}
