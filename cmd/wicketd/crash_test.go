package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/internal/testkit"
	"wicket/sync/store"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// TestMain lets the test binary act as wicketd, so the crash test runs the
// real daemon in a child process on every architecture, qemu included.
func TestMain(m *testing.M) {
	if os.Getenv("WICKETD_EXEC") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := dispatch(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// gateFiles writes root.pub, a key set signed now, and a config for a gate
// with a stdin scanner and a simulated turnstile; it returns the config
// path and a fixture whose Ed key the key set trusts.
func gateFiles(t testing.TB, dir string) (string, *verifiertest.Fixture) {
	t.Helper()
	f := verifiertest.New(t)
	now := time.Now()
	der, err := x509.MarshalPKIXPublicKey(verifiertest.EdKey(1).Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "root.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	k := f.IssuerKey(f.EdPub)
	k.NotBefore, k.NotAfter = now.Add(-24*time.Hour), now.Add(365*24*time.Hour)
	ks, err := verifier.KeySetSpec{Version: 1, IssuedAt: now.Add(-time.Minute), Keys: []verifier.IssuerKey{k}}.Sign(f.Root)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keyset.cose"), ks, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := `gate: {id: CRASH-G1, venue: CRASH-V1}
trust: {root_keys: [root.pub], key_set: keyset.cose}
policy: {max_status_age: 0s}
store: {path: wicket.db}
scanner: {type: stdin, hold_off: 0s}
turnstile: {backend: sim, pulse_width: 50ms, open_timeout: 1s}
log: {level: info, format: json}
`
	path := filepath.Join(dir, "wicketd.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	f.Clock.Set(now)
	return path, f
}

// allEvents reads the whole access log of a store.
func allEvents(t testing.TB, st *store.Store) []store.Event {
	t.Helper()
	var evs []store.Event
	for after := uint64(0); ; {
		page, err := st.Events(after, store.MaxPage)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return evs
		}
		evs = append(evs, page...)
		after = page[len(page)-1].Seq
	}
}

// crashCycles is how many SIGKILL cycles the test runs:
// WICKET_CRASH_CYCLES, or 8 in the ordinary test run.
func crashCycles() int {
	if n, err := strconv.Atoi(os.Getenv("WICKET_CRASH_CYCLES")); err == nil && n > 0 {
		return n
	}
	return 8
}

// TestCrashCycles kills wicketd with SIGKILL at random moments while it
// decides a stream of scans, then checks after each kill that the store
// opens without recovery (bbolt's consistency check passes), that every
// event wicketd logged as committed is there exactly once with no gaps,
// and that the next start locks the relay before anything else.
func TestCrashCycles(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	skipUnlessSelfExec(t)
	dir := t.TempDir()
	cfg, f := gateFiles(t, dir)
	var codes []string
	// Mostly yellow codes: denied at once (no turnstile wait) but fully
	// verified and always logged, so kills land among many commits; one in
	// 128 opens the simulated turnstile.
	for i := range 128 {
		c := f.Claims(decoder.KindPrinted)
		c.ID = fmt.Appendf(nil, "crash-voucher-%04d", i)
		if i != 0 {
			c.Voucher.Colour = decoder.ColourYellow
		}
		codes = append(codes, f.Issue(t, f.Ed, c))
	}
	cycles := crashCycles()
	total := 0
	for cycle := range cycles {
		committed, narration := runAndKill(t, cfg, codes, time.Duration(rand.IntN(600))*time.Millisecond)
		if !strings.HasPrefix(narration, "turnstile: start: relay OFF (lock)") {
			t.Fatalf("cycle %d: the first thing the turnstile did was not locking:\n%s", cycle, narration)
		}
		st, err := store.Open(store.Options{Path: filepath.Join(dir, "wicket.db"), LockTimeout: 5 * time.Second,
			MaxEvents: 1_000_000, MaxOutbox: 200_000, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("cycle %d: reopen after SIGKILL: %v", cycle, err)
		}
		if moved := st.Recovered(); moved != "" {
			t.Fatalf("cycle %d: store was corrupt after SIGKILL, moved to %s", cycle, moved)
		}
		evs := allEvents(t, st)
		st.Close()
		have := map[uint64]int{}
		var last uint64
		for _, e := range evs {
			have[e.Seq]++
			if e.Seq <= last {
				t.Fatalf("cycle %d: seq %d after %d", cycle, e.Seq, last)
			}
			last = e.Seq
		}
		for _, s := range committed {
			if have[s] != 1 {
				t.Fatalf("cycle %d: committed event %d found %d times", cycle, s, have[s])
			}
		}
		total += len(committed)
	}
	t.Logf("%d SIGKILL cycles, %d committed decisions checked, none lost or duplicated", cycles, total)
}

// runAndKill starts wicketd, streams codes to it, SIGKILLs it after the
// delay (counted from READY), and returns the seqs it logged as committed
// and the simulated hardware's narration.
func runAndKill(t *testing.T, cfg string, codes []string, delay time.Duration) ([]uint64, string) {
	t.Helper()
	cmd := selfExec("run", "-config", cfg)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	narration := &testkit.Buffer{}
	cmd.Stdout = narration
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := 0; ; i++ {
			if _, err := io.WriteString(stdin, codes[i%len(codes)]+"\n"); err != nil {
				return
			}
		}
	}()
	var committed []uint64
	ready := make(chan struct{})
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			var line struct {
				Msg string
				Seq uint64
			}
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			switch line.Msg {
			case "ready":
				once.Do(func() { close(ready) })
			case "decision", "ALERT":
				committed = append(committed, line.Seq)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("wicketd did not become ready")
	}
	timer := time.NewTimer(delay)
	<-timer.C
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	stdin.Close()
	<-logDone
	return committed, narration.String()
}

// selfExec runs this test binary as wicketd with the given arguments,
// under the program in WICKET_CRASH_EXEC if set (qemu-arm-static, where
// the kernel cannot run the binary by itself).
func selfExec(args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if emu := os.Getenv("WICKET_CRASH_EXEC"); emu != "" {
		cmd = exec.Command(emu, append([]string{os.Args[0]}, args...)...)
	} else {
		cmd = exec.Command(os.Args[0], args...)
	}
	cmd.Env = append(os.Environ(), "WICKETD_EXEC=1")
	return cmd
}

// skipUnlessSelfExec skips a test that runs wicketd as a child process
// where this test binary cannot be run again (qemu-user without binfmt).
func skipUnlessSelfExec(t testing.TB) {
	t.Helper()
	if out, err := selfExec("version").CombinedOutput(); err != nil {
		t.Skipf("cannot run this test binary as a child process (under qemu-user without binfmt?): %v %s", err, out)
	}
}
