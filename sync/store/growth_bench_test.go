package store

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkReadDuringGrowth times the anti-passback read (LastAllowed, a
// read transaction, the one store access before an allowed scan's relay
// edge) while a writer appends records to a new store until its file
// has grown (and bbolt has remapped it) from 32 KiB to 512 KiB. bbolt
// holds every read transaction while a commit remaps the file; the
// benchmark reports the slowest read that overlapped a commit that grew
// the file, the reads' p50, p99 and maximum, and how many reads took a
// major page fault (a page of the map read back from the file, where the
// page cache did not hold it: on a FUSE mount such as latfs, whose
// kernel side drops a file's cached pages when its attributes change).
// The store is in WICKET_STORE_BENCH_DIR or a temporary directory; run
// it with -benchtime 1x. Linux only (per-thread page-fault counts).
func BenchmarkReadDuringGrowth(b *testing.B) {
	root := os.Getenv("WICKET_STORE_BENCH_DIR")
	if root == "" {
		root = b.TempDir()
	}
	dir, err := os.MkdirTemp(root, "growth-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "wicket.db")
	s := openTest(b, Options{Path: path})
	type read struct {
		start     time.Time
		took      time.Duration
		majFaults int64
	}
	var mu sync.Mutex
	var reads []read
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var before, after syscall.Rusage
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = syscall.Getrusage(rusageThread, &before)
			start := time.Now()
			if _, _, err := s.LastAllowed("V1", "voucher"); err != nil {
				b.Error(err)
				return
			}
			took := time.Since(start)
			_ = syscall.Getrusage(rusageThread, &after)
			mu.Lock()
			reads = append(reads, read{start, took, int64(after.Majflt - before.Majflt)})
			mu.Unlock()
			time.Sleep(200 * time.Microsecond)
		}
	})
	type growth struct {
		start, end time.Time
		from, to   int64
	}
	var grew []growth
	size := statSize(path)
	for i := 0; size < 512<<10; i++ {
		ev := Event{Type: TypeDecision, At: time.Now(), Gate: "G1", Venue: "V1", Allow: true, Reason: "ok", Voucher: fmt.Sprintf("%064d", i)}
		start := time.Now()
		if _, err := s.Append(&ev, time.Hour); err != nil {
			b.Fatal(err)
		}
		end := time.Now()
		if n := statSize(path); n != size {
			grew = append(grew, growth{start, end, size, n})
			size = n
		}
	}
	close(stop)
	wg.Wait()
	var worstDuring time.Duration
	for _, g := range grew {
		var worst time.Duration
		for _, r := range reads {
			if r.start.Before(g.end) && r.start.Add(r.took).After(g.start) {
				worst = max(worst, r.took)
			}
		}
		worstDuring = max(worstDuring, worst)
		b.Logf("file %d → %d bytes in a commit of %.2f ms: slowest read beside it %.3f ms", g.from, g.to, msOf(g.end.Sub(g.start)), msOf(worst))
	}
	var took []time.Duration
	faulted, slow, slowFaulted := 0, 0, 0
	for _, r := range reads {
		took = append(took, r.took)
		if r.majFaults > 0 {
			faulted++
		}
		if r.took > time.Millisecond {
			slow++
			if r.majFaults > 0 {
				slowFaulted++
			}
		}
	}
	slices.Sort(took)
	q := func(p int) float64 { return msOf(took[(len(took)-1)*p/1000]) }
	b.Logf("%d reads: p50 %.3f ms, p99 %.3f ms, max %.3f ms; %d took a major page fault; %d over 1 ms, %d of them with a major fault",
		len(took), q(500), q(990), q(1000), faulted, slow, slowFaulted)
	b.ReportMetric(msOf(worstDuring), "read-beside-growth-max-ms")
	b.ReportMetric(q(990), "read-p99-ms")
}

// rusageThread is RUSAGE_THREAD: the calling thread's resource usage.
const rusageThread = 1

func statSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
