package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"wicket/decoder"
	"wicket/sync/store"
	"wicket/sync/store/storetest"
	"wicket/verifier"
)

// readySizes are the revocation counts BenchmarkStartToReady starts with:
// none and 10 million (WICKET_READY_SIZES overrides, comma-separated).
func readySizes() []int {
	if s := os.Getenv("WICKET_READY_SIZES"); s != "" {
		var out []int
		for _, f := range strings.Split(s, ",") {
			if n, err := strconv.Atoi(f); err == nil && n >= 0 {
				out = append(out, n)
			}
		}
		return out
	}
	return []int{0, 10_000_000}
}

// BenchmarkStartToReady starts wicketd (built from this package, with a
// serial scanner on a pseudo-terminal and the simulated turnstile) on a store holding n
// revocation/override statements and measures the time from exec to
// READY=1 on NOTIFY_SOCKET, then the resident memory once the gate has
// been idle for two seconds (the background check of the statements'
// file has finished by then). The file was just written, so it is in the
// page cache: a warm start; see docs/revocations.md for a cold one.
func BenchmarkStartToReady(b *testing.B) {
	bin := buildCmd(b, "wicketd")
	for _, n := range readySizes() {
		// One store per size, for the warm and the cold starts.
		dir := b.TempDir()
		cfg, _ := gateFiles(b, dir)
		serialScanner(b, cfg)
		fillStatements(b, filepath.Join(dir, "wicket.db"), n)
		// The fill's garbage must not be collected while the child starts.
		runtime.GC()
		debug.FreeOSMemory()
		for _, cold := range []bool{false, true} {
			name := fmt.Sprintf("%dM", n/1_000_000)
			if cold {
				name += "-cold"
			}
			b.Run(name, func(b *testing.B) { benchStart(b, bin, dir, cfg, cold) })
		}
	}
}

// benchStart measures starts of the gate in dir; cold drops the page cache
// before each start (root only: skipped otherwise), as after a power-up.
func benchStart(b *testing.B, bin, dir, cfg string, cold bool) {
	if cold {
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
			b.Skipf("cannot drop the page cache: %v", err)
		}
	}
	var ready, rss []float64
	for b.Loop() {
		if cold {
			b.StopTimer()
			exec.Command("sync").Run()
			os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0)
			b.StartTimer()
		}
		took, kb := startOnce(b, bin, dir, cfg)
		ready = append(ready, float64(took.Microseconds())/1000)
		rss = append(rss, float64(kb)/1024)
	}
	b.ReportMetric(median(ready), "ready-ms")
	b.ReportMetric(slices.Max(ready), "ready-max-ms")
	b.ReportMetric(median(rss), "idle-rss-MiB")
}

// serialScanner points the config's scanner at the far end of a
// pseudo-terminal, as a gate with a serial barcode scanner, and returns
// the near end, where the scanner's bytes are written; the terminal stays
// open until the test or benchmark ends.
func serialScanner(b testing.TB, cfg string) *os.File {
	master, tty, err := pty.Open()
	if err != nil {
		b.Skipf("no pseudo-terminal: %v", err)
	}
	b.Cleanup(func() { master.Close(); tty.Close() })
	raw, err := os.ReadFile(cfg)
	if err != nil {
		b.Fatal(err)
	}
	const stdin = "scanner: {type: stdin, hold_off: 0s}"
	if !strings.Contains(string(raw), stdin) {
		b.Fatalf("config has no %q", stdin)
	}
	serial := fmt.Sprintf("scanner: {type: serial, device: %s, baud: 9600, hold_off: 0s}", tty.Name())
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(raw), stdin, serial, 1)), 0o644); err != nil {
		b.Fatal(err)
	}
	return master
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// fillStatements installs a snapshot of n statements, the mix of the
// revset benchmarks: 3/5 revocations, 1/5 colour, 1/5 void-before.
func fillStatements(b *testing.B, path string, n int) {
	st := storetest.Open(b, store.Options{Path: path})
	defer st.Close()
	now := time.Now()
	w, err := st.NewSnapshot(1, now.Add(-time.Minute), now)
	if err != nil {
		b.Fatal(err)
	}
	es := make([]verifier.Entry, 0, 1<<16)
	for i := range n {
		key := []byte(fmt.Sprintf("entry-%010d", i))
		e := verifier.Entry{Op: verifier.OpRevoke, Key: key, Time: now.Unix() - 60, Expires: now.Unix() + 86400*30}
		switch i % 5 {
		case 3:
			e.Op, e.Colour = verifier.OpColour, decoder.ColourYellow
		case 4:
			e.Op = verifier.OpVoidBefore
		}
		if es = append(es, e); len(es) == cap(es) {
			if err := w.AddEntries(es); err != nil {
				b.Fatal(err)
			}
			es = es[:0]
		}
	}
	if err := w.AddEntries(es); err != nil {
		b.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		b.Fatal(err)
	}
}

// startOnce runs wicketd until READY=1 and two idle seconds, reads its
// resident memory, and stops it with SIGTERM.
func startOnce(b *testing.B, bin, dir, cfg string) (time.Duration, int) {
	sock := filepath.Join(dir, "notify.sock")
	os.Remove(sock)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	cmd := exec.Command(bin, "run", "-config", cfg)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	defer stdin.Close()
	if lf := os.Getenv("WICKET_READY_LOG"); lf != "" {
		f, _ := os.OpenFile(lf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		cmd.Stderr, cmd.Stdout = f, f
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		n, err := conn.Read(buf)
		if err != nil {
			b.Fatalf("no READY=1: %v", err)
		}
		if strings.Contains(string(buf[:n]), "READY=1") {
			break
		}
	}
	took := time.Since(start)
	b.StopTimer()
	time.Sleep(2 * time.Second)
	kb := vmRSS(b, cmd.Process.Pid)
	b.StartTimer()
	return took, kb
}

// vmRSS reads a process's resident set in KiB.
func vmRSS(b *testing.B, pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(v)[0])
			return kb
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
