package main

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/sync/store"
)

// TestPowerCutWindow measures the window in which a power cut loses the
// record of an opened passage (docs/design.md, "Relay before fsync"). The
// gate's store is on latfs -volatile (scripts/latfs: SD-card-class flush
// latency, and nothing survives that was not fsynced); WICKET_LATFS names
// its binary, and the test is skipped without it. Each cycle scans one to
// three valid codes and cuts the power a random 0-60 ms after the relay's
// ON line of the last one: latfs and wicketd are killed (SIGKILL, latfs
// first), and the store is opened from what reached the backing disk.
//
// Every cycle must find the store sound, every record the gate reported
// committed (its decision log line), and at most one opened passage
// without a record: the last, cut before its commit returned. Passage
// outcomes are written beside the next scan, before its record: each
// must refer to a recorded decision, and every recorded decision but the
// last must have its outcome (a decision's record is durable only after
// the previous outcome). The log
// gives the ON-to-committed times of the scans before the cuts (the
// window) and the cut delays that lost a record and that did not.
func TestPowerCutWindow(t *testing.T) {
	bin := os.Getenv("WICKET_LATFS")
	if bin == "" {
		t.Skip("WICKET_LATFS not set: build scripts/latfs and name its binary")
	}
	skipUnlessSelfExec(t)
	cycles := envInt("WICKET_POWERCUT_CYCLES", 10)
	var window, lostAt, keptAt []time.Duration
	for cycle := range cycles {
		w, cut, lost := powerCutCycle(t, bin, cycle)
		window = append(window, w...)
		if lost {
			lostAt = append(lostAt, cut)
		} else {
			keptAt = append(keptAt, cut)
		}
	}
	slices.Sort(window)
	slices.Sort(lostAt)
	slices.Sort(keptAt)
	ms := func(d []time.Duration) string {
		var s []string
		for _, x := range d {
			s = append(s, fmt.Sprintf("%.1f", float64(x.Microseconds())/1000))
		}
		return "[" + strings.Join(s, " ") + "] ms"
	}
	t.Logf("%d cuts: %d lost the last passage's record (cut %s after its relay ON), %d kept it (cut %s after)",
		cycles, len(lostAt), ms(lostAt), len(keptAt), ms(keptAt))
	if len(window) > 0 {
		t.Logf("relay ON to record committed, %d scans before the cuts: p50 %s, max %s", len(window),
			ms(window[len(window)/2:len(window)/2+1]), ms(window[len(window)-1:]))
	}
}

// powerCutCycle runs one gate on a fresh latfs mount until a power cut and
// checks what the disk kept. It returns the ON-to-committed times of the
// scans before the last, how long after the last relay ON the cut came,
// and whether that passage's record was lost.
func powerCutCycle(t *testing.T, bin string, cycle int) ([]time.Duration, time.Duration, bool) {
	back, err := os.MkdirTemp("", "powercut-disk-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(back)
	mnt, err := os.MkdirTemp("", "powercut-mnt-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(mnt)
	fs := exec.Command(bin, "-volatile", back, mnt)
	fs.Stderr = os.Stderr
	if err := fs.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		fs.Process.Kill()
		fs.Wait()
		syscall.Unmount(mnt, syscall.MNT_DETACH)
	}()
	for start := time.Now(); !mounted(mnt); time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Skipf("latfs did not mount %s (needs root and /dev/fuse)", mnt)
		}
	}
	cfg, f := gateFiles(t, mnt)
	n := 1 + rand.IntN(3)
	g := startGate(t, selfExec("run", "-config", cfg), cfg)
	var window []time.Duration
	var on time.Time
	for i := range n {
		c := f.Claims(decoder.KindPrinted)
		c.ID = fmt.Appendf(nil, "powercut-%03d-%d", cycle, i)
		g.scan(f.Issue(t, f.Ed, c))
		if i < n-1 {
			at := g.await("turnstile: relay ON", `"msg":"decision"`, "turnstile: relay OFF")
			window = append(window, at[1].Sub(at[0]))
			time.Sleep(300 * time.Millisecond)
			continue
		}
		on = g.await("turnstile: relay ON")[0]
	}
	time.Sleep(time.Duration(rand.Int64N(int64(60 * time.Millisecond))))
	fs.Process.Kill() // the power cut: what latfs held is gone
	g.cmd.Process.Kill()
	cut := time.Since(on)
	fs.Wait()
	g.cmd.Wait()
	reported := n - 1
	for _, l := range g.rest() {
		if strings.Contains(l.text, `"msg":"decision"`) {
			reported++
		}
	}
	syscall.Unmount(mnt, syscall.MNT_DETACH)

	st, err := store.Open(store.Options{Path: filepath.Join(back, "wicket.db"), LockTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("cycle %d: open the store after the cut: %v", cycle, err)
	}
	defer st.Close()
	if moved := st.Recovered(); moved != "" {
		t.Fatalf("cycle %d: store damaged by the cut, moved to %s", cycle, moved)
	}
	allowed, outcomes := 0, 0
	decided := map[uint64]bool{}
	for _, e := range allEvents(t, st) {
		switch {
		case e.Type == store.TypeDecision && e.Allow:
			allowed++
			decided[e.Seq] = true
		case e.Type == "passage":
			outcomes++
			if !decided[e.Ref] {
				t.Errorf("cycle %d: passage outcome %d refers to %d, not a recorded decision before it", cycle, e.Seq, e.Ref)
			}
		}
	}
	if outcomes < allowed-1 {
		t.Errorf("cycle %d: %d allowed decisions recorded, %d passage outcomes; want at least %d", cycle, allowed, outcomes, allowed-1)
	}
	switch {
	case allowed < reported:
		t.Fatalf("cycle %d: %d decisions reported committed, %d in the store after the cut", cycle, reported, allowed)
	case allowed < n-1 || allowed > n:
		t.Fatalf("cycle %d: %d passages opened, %d allowed records after the cut; want %d or %d", cycle, n, allowed, n-1, n)
	}
	t.Logf("cycle %d: %d passages opened, %d reported committed, %d recorded, %d outcomes recorded; cut %v after the last relay ON",
		cycle, n, reported, allowed, outcomes, cut.Round(100*time.Microsecond))
	return window, cut, allowed < n
}

// mounted reports whether a file system is mounted on dir.
func mounted(dir string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	return err == nil && strings.Contains(string(data), " "+dir+" ")
}
