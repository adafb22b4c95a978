package store

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"wicket/verifier"
)

// The crash test runs TestCrashChild in a child process (the test binary
// itself), SIGKILLs it at a random moment and checks what it left. SIGKILL
// stops the process between any two instructions, but the kernel still
// writes the page cache out, so this tests the transaction logic, not the
// disk's honouring of fsync.

const (
	crashEnv        = "WICKET_CRASH_CHILD"
	crashCyclesEnv  = "WICKET_CRASH_CYCLES"
	crashExecEnv    = "WICKET_CRASH_EXEC" // runs the child under this program, e.g. qemu-arm-static
	crashMaxEvents  = 200
	crashMaxOutbox  = 100
	crashBatchSize  = 1000
	crashBatchEvery = 25 // appends between batches
)

var crashCycles = flag.Int("crash.cycles", 0, "kill-and-reopen cycles of TestCrash (default 30, 5 with -short; also "+crashCyclesEnv+")")

var crashNow = time.Unix(1_700_000_000, 0)

func crashOptions(path string) Options {
	return Options{Path: path, MaxEvents: crashMaxEvents, MaxOutbox: crashMaxOutbox, LockTimeout: 10 * time.Second}
}

// crashBatch is a snapshot whose contents follow from its version.
func crashBatch(version uint64) *verifier.Batch {
	b := &verifier.Batch{Version: version, IssuedAt: crashNow}
	for i := range crashBatchSize {
		b.Entries = append(b.Entries, verifier.Entry{
			Op: verifier.OpRevoke, Key: crashID(version, i), Time: crashNow.Unix(), Expires: crashNow.Unix() + 3600,
		})
	}
	return b
}

func crashID(version uint64, i int) []byte { return fmt.Appendf(nil, "crash-%d-%d", version, i) }

// TestCrashChild is the child of TestCrash: it appends forever, installs a
// batch now and then, and prints what committed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("runs only as the child process of TestCrash")
	}
	fail := func(format string, args ...any) {
		fmt.Printf("fail "+format+"\n", args...)
		os.Exit(2)
	}
	s, err := Open(crashOptions(path))
	if err != nil {
		fail("open: %v", err)
	}
	if r := s.Recovered(); r != "" {
		fail("recovered: file moved to %s", r)
	}
	fmt.Println("open")
	version := s.Info().Version
	for i := 0; ; i++ {
		if i%crashBatchEvery == 0 {
			version++
			if err := s.ApplyBatch(crashBatch(version), crashNow); err != nil {
				fail("apply batch: %v", err)
			}
			fmt.Printf("batch %d\n", version)
		}
		ev := Event{Type: TypeDecision, At: time.Now(), Gate: "g1", Venue: "north", Allow: true, Voucher: strconv.Itoa(i % 20)}
		seq, err := s.Append(&ev, time.Second)
		if err != nil {
			fail("append: %v", err)
		}
		fmt.Printf("seq %d\n", seq)
		if i%10 == 9 {
			if _, err := s.Ack(seq - 5); err != nil {
				fail("ack: %v", err)
			}
		}
	}
}

func crashCycleCount(t *testing.T) int {
	if *crashCycles > 0 {
		return *crashCycles
	}
	if v := os.Getenv(crashCyclesEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive number", crashCyclesEnv, v)
		}
		return n
	}
	if testing.Short() {
		return 5
	}
	return 30
}

// childRun is what one child printed before it died.
type childRun struct {
	opened  bool
	seqs    []uint64
	batches []uint64
}

// runCrashChild starts a child and kills it after it printed killAfter
// commits (immediately for a negative killAfter), then reads every line it
// printed before dying.
func runCrashChild(t *testing.T, path string, killAfter int) childRun {
	t.Helper()
	args := []string{os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=5m"}
	if emu := os.Getenv(crashExecEnv); emu != "" {
		args = append([]string{emu}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); errors.Is(err, syscall.ENOEXEC) {
		t.Skipf("cannot re-execute the test binary (under user-mode emulation set %s): %v", crashExecEnv, err)
	} else if err != nil {
		t.Fatalf("start child: %v", err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			_ = cmd.Process.Kill()
		}
	}
	defer func() {
		kill()
		_ = cmd.Wait()
	}()
	if killAfter < 0 {
		kill()
	}
	var run childRun
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		word, arg, _ := strings.Cut(line, " ")
		switch word {
		case "fail":
			t.Fatalf("child: %s\n%s", line, stderr.String())
		case "open":
			run.opened = true
		case "seq", "batch":
			n, err := strconv.ParseUint(arg, 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", line)
			}
			if word == "seq" {
				run.seqs = append(run.seqs, n)
			} else {
				run.batches = append(run.batches, n)
			}
		}
		if len(run.seqs)+len(run.batches) > killAfter {
			kill()
		}
	}
	if err := cmd.Wait(); !killed || err == nil {
		t.Fatalf("child ended by itself (%v):\n%s", err, stderr.String())
	}
	return run
}

func TestCrash(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("this is the child")
	}
	cycles := crashCycleCount(t)
	rng := newRand(t)
	path := filepath.Join(t.TempDir(), "crash.db")
	var lastSeq, lastBatch uint64
	start := time.Now()
	for cycle := range cycles {
		killAfter := rng.IntN(80) - 8 // sometimes before the child opens the store
		run := runCrashChild(t, path, killAfter)

		s := openTest(t, crashOptions(path))
		if r := s.Recovered(); r != "" {
			t.Fatalf("cycle %d: Open after SIGKILL moved the file to %s", cycle, r)
		}
		if err := s.db.View(checkTx); err != nil {
			t.Fatalf("cycle %d: check after SIGKILL: %v", cycle, err)
		}
		st, err := s.Stats()
		if err != nil {
			t.Fatal(err)
		}
		// Seqs printed are committed, increase strictly across children,
		// and at most one more (committed, not yet printed) exists.
		prev := lastSeq
		for _, q := range run.seqs {
			if q != prev+1 {
				t.Fatalf("cycle %d: child printed seq %d after %d", cycle, q, prev)
			}
			prev = q
		}
		if st.LastSeq != prev && st.LastSeq != prev+1 {
			t.Fatalf("cycle %d: last seq %d; child printed up to %d", cycle, st.LastSeq, prev)
		}
		if want := int(min(st.LastSeq, crashMaxEvents)); st.Events != want {
			t.Fatalf("cycle %d: %d events; want %d", cycle, st.Events, want)
		}
		first := st.LastSeq - uint64(st.Events) + 1
		for _, q := range run.seqs {
			if q < first {
				continue
			}
			evs, err := s.Events(q-1, 1)
			if err != nil || len(evs) != 1 || evs[0].Seq != q {
				t.Fatalf("cycle %d: committed seq %d: Events = %+v, %v", cycle, q, evs, err)
			}
		}
		out, err := s.Outbox(0, MaxPage)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range out {
			if e.Seq < first {
				t.Fatalf("cycle %d: outbox holds %d, below the log's first %d", cycle, e.Seq, first)
			}
		}
		// Batches install whole or not at all.
		pb := lastBatch
		if n := len(run.batches); n > 0 {
			pb = run.batches[n-1]
		}
		v := s.Info().Version
		if v != pb && v != pb+1 {
			t.Fatalf("cycle %d: installed batch %d; child printed up to %d", cycle, v, pb)
		}
		if v > 0 {
			if n := st.Status.FileRecords + uint64(st.Status.OverlayRecords); n != crashBatchSize {
				t.Fatalf("cycle %d: %d statements; batch %d has %d", cycle, n, v, crashBatchSize)
			}
			for _, i := range []int{0, crashBatchSize - 1} {
				if ok, _ := s.Revoked(crashID(v, i)); !ok {
					t.Fatalf("cycle %d: batch %d entry %d missing", cycle, v, i)
				}
			}
		}
		lastSeq, lastBatch = st.LastSeq, v
		s.Close()
	}
	t.Logf("%d kill cycles in %v; %d events committed, batch %d installed", cycles, time.Since(start), lastSeq, lastBatch)
}
