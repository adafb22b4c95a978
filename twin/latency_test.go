package twin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// uartProbe is a guest program, built by the test for the board's
// architecture: it polls the PL011's receive count in
// /proc/tty/driver/ttyAMA and one gpio-sim line, and prints each change
// with the monotonic time in microseconds since its start ("T rx N",
// "T gpio V"). Both are read by the guest in one loop, on one clock: the
// last byte of a code reaching the UART and the relay edge need no
// alignment of host and guest time.
const uartProbe = `package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

func main() {
	chip := flag.String("chip", "", "gpio-sim chip directory")
	line := flag.Int("line", 17, "gpio-sim line")
	dur := flag.Duration("for", time.Minute, "how long")
	every := flag.Duration("every", 100*time.Microsecond, "poll interval")
	flag.Parse()
	gf, err := os.Open(filepath.Join(*chip, fmt.Sprintf("sim_gpio%d", *line), "value"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pf, err := os.Open("/proc/tty/driver/ttyAMA")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	buf, vb := make([]byte, 4096), make([]byte, 4)
	lastRx, lastV := int64(-1), byte('x')
	start := time.Now()
	for time.Since(start) < *dur {
		n, _ := pf.ReadAt(buf, 0)
		rx := int64(-1)
		if i := bytes.Index(buf[:n], []byte("0: ")); i >= 0 {
			if j := bytes.Index(buf[i:n], []byte(" rx:")); j >= 0 {
				f := buf[i+j+4 : n]
				if k := bytes.IndexAny(f, " \n"); k >= 0 {
					f = f[:k]
				}
				rx, _ = strconv.ParseInt(string(f), 10, 64)
			}
		}
		k, _ := gf.ReadAt(vb, 0)
		now := time.Since(start).Microseconds()
		wrote := false
		if rx != lastRx {
			fmt.Fprintf(w, "%d rx %d\n", now, rx)
			lastRx, wrote = rx, true
		}
		if k > 0 && vb[0] != lastV {
			fmt.Fprintf(w, "%d gpio %c\n", now, vb[0])
			lastV, wrote = vb[0], true
		}
		if wrote {
			w.Flush()
		}
		time.Sleep(*every)
	}
}
`

// TestTwinLatency measures scan to relay on the board twin: from the last
// byte of a code reaching the guest's UART to the relay's GPIO edge, both
// seen by the probe in the guest. The root disk's overlay goes in
// TWIN_LATENCY_DISK_DIR (a scripts/latfs mount: every guest flush, an
// fdatasync of the image file under cache=none, then takes an SD card's
// flush latency; see docs/BENCHMARKS.md), or the test's temporary
// directory; TWIN_DRIVE_OPTS adds -drive options such as throttling. With
// TWIN_LATENCY_BASE (a wicketd binary of another build for the guest's
// architecture) it alternates that binary with the package's, round by
// round: TWIN_LATENCY_ROUNDS (2) rounds of TWIN_LATENCY_SCANS (15) scans.
func TestTwinLatency(t *testing.T) {
	img, deb := os.Getenv("TWIN_IMG"), os.Getenv("TWIN_DEB")
	if img == "" || deb == "" {
		t.Skip("board twin: TWIN_IMG and TWIN_DEB not set")
	}
	rounds, scans := envCount(t, "TWIN_LATENCY_ROUNDS", 2), envCount(t, "TWIN_LATENCY_SCANS", 15)
	work := t.TempDir()
	stickDir := filepath.Join(work, "stick")
	if err := os.MkdirAll(stickDir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, ctl := wicketctl(t, work)
	authority(t, ctl, work, stickDir)
	variants := []string{"this"}
	if base := os.Getenv("TWIN_LATENCY_BASE"); base != "" {
		data, err := os.ReadFile(base)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(stickDir, "wicketd-base"), data, 0o755); err != nil {
			t.Fatal(err)
		}
		variants = append(variants, "base")
	}
	codes := moreCodes(t, work, rounds*scans*len(variants))
	buildProbe(t, work, stickDir)
	stick := makeStick(t, work, stickDir, deb)
	diskDir := work
	if d := os.Getenv("TWIN_LATENCY_DISK_DIR"); d != "" {
		diskDir = d
	}
	disk := filepath.Join(diskDir, fmt.Sprintf("latency-%d.qcow2", os.Getpid()))
	t.Cleanup(func() { os.Remove(disk) })
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", filepath.Join(img, "root.img"), disk)
	t.Logf("root disk %s, options %q", disk, os.Getenv("TWIN_DRIVE_OPTS"))

	b := boot(t, img, disk, stick)
	defer b.kill()
	chip := strings.TrimSpace(b.must(cmdTimeout, "ls -d /sys/devices/platform/gpio-sim.*/gpiochip*"))
	install(t, b, "")
	b.must(cmdTimeout, "cp /usr/bin/wicketd /root/wicketd-this")
	lat := map[string][]time.Duration{}
	next := 0
	for r := range rounds {
		for _, v := range variants {
			bin := "/root/wicketd-this"
			if v == "base" {
				bin = "/mnt/wicketd-base"
			}
			n0 := len(b.journalLines())
			b.must(3*time.Minute, "install -m 0755 "+bin+" /usr/bin/wicketd && systemctl restart wicketd")
			if !waitJournalSince(b, n0, "device connected", 3*time.Minute) {
				t.Fatalf("round %d %s: wicketd did not connect the scanner", r, v)
			}
			lat[v] = append(lat[v], probeScans(t, b, chip, codes[next:next+scans])...)
			next += scans
		}
	}
	for _, v := range variants {
		s := slices.Clone(lat[v])
		slices.Sort(s)
		p := func(q int) float64 { return float64(s[(len(s)-1)*q/100].Microseconds()) / 1000 }
		t.Logf("%s: %d scans, last byte at the UART to relay edge: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms",
			v, len(s), p(50), p(90), p(99), p(100))
	}
}

func envCount(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a count", name, s)
	}
	return n
}

// moreCodes issues n green printed vouchers of distinct holders with the
// authority's tools in work (see authority).
func moreCodes(t *testing.T, work string, n int) []string {
	var out []string
	for i := range n {
		cmd := exec.Command(filepath.Join(work, "wicketctl"), "issue", "-key", "gx.key", "-issuer", "GX", "-kind", "printed",
			"-id-number", fmt.Sprintf("4501001990020%05d", i), "-pseudonym-secret", "pseudo.secret")
		cmd.Dir = work
		code, err := cmd.Output()
		if err != nil {
			t.Fatalf("wicketctl issue: %v", err)
		}
		out = append(out, strings.TrimSpace(string(code)))
	}
	return out
}

// buildProbe builds uartProbe for the guest into dir as "uartwatch".
func buildProbe(t *testing.T, work, dir string) {
	src := filepath.Join(work, "uartwatch")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(uartProbe), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module uartwatch\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	goarch, goarm := "arm64", ""
	if os.Getenv("TWIN_ARCH") == "armhf" {
		goarch, goarm = "arm", "7"
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "uartwatch"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "GOARM="+goarm, "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the UART probe: %v\n%s", err, out)
	}
}

// waitJournalSince waits until a journal line streamed after the first n
// contains s.
func waitJournalSince(b *board, n int, s string, limit time.Duration) bool {
	return journalLineSince(b, n, s, limit) != ""
}

// journalLineSince waits until a journal line streamed after the first n
// contains s, and returns it ("" after limit).
func journalLineSince(b *board, n int, s string, limit time.Duration) string {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		if ls := b.journalLines(); len(ls) > n {
			if i := slices.IndexFunc(ls[n:], func(l string) bool { return strings.Contains(l, s) }); i >= 0 {
				return ls[n+i]
			}
		}
		select {
		case <-ctx.Done():
			return ""
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// probeScans scans each code once, after the previous one's decision and
// pulse, with the probe running in the guest, and returns per code the
// time from its last byte (CR) reaching the UART to the relay's ON edge.
func probeScans(t *testing.T, b *board, chip string, codes []string) []time.Duration {
	pid := strings.TrimSpace(b.must(cmdTimeout, fmt.Sprintf(
		"setsid /mnt/uartwatch -chip %s -line %d -for 30m >/tmp/uart.edges 2>&1 </dev/null & echo $!", chip, relayLine)))
	b.must(cmdTimeout, "until [ $(wc -l </tmp/uart.edges) -ge 2 ]; do sleep 0.1; done")
	allowed := 0
	for k, code := range codes {
		n0 := len(b.journalLines())
		b.scanCode(code)
		l := journalLineSince(b, n0, `"msg":"decision"`, 2*time.Minute)
		switch {
		case l == "":
			t.Fatalf("scan %d: no decision logged", k)
		case strings.Contains(l, `"allow":true`):
			allowed++
		default:
			t.Logf("scan %d denied, not measured: %s", k, l)
		}
		time.Sleep(pulse + 700*time.Millisecond) // the pulse ends and the passage is recorded
	}
	b.must(cmdTimeout, "kill "+pid)
	out := b.must(cmdTimeout, "cat /tmp/uart.edges")
	type sample struct {
		at   time.Duration
		kind string
		v    string
	}
	var ss []sample
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("uartwatch: bad line %q", l)
		}
		us, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			t.Fatalf("uartwatch: bad line %q", l)
		}
		ss = append(ss, sample{time.Duration(us) * time.Microsecond, f[1], f[2]})
	}
	// The k-th relay ON edge is the k-th allowed code's; its last byte is
	// the last change of the receive count before that edge.
	var lat []time.Duration
	edges := 0
	lastRx, lastAt := int64(-1), time.Duration(-1)
	prevRx := int64(-1)
	for _, x := range ss {
		switch {
		case x.kind == "rx":
			n, err := strconv.ParseInt(x.v, 10, 64)
			if err != nil || n < 0 {
				t.Fatalf("uartwatch: no receive count: %v", x)
			}
			if prevRx < 0 {
				prevRx = n
			}
			lastRx, lastAt = n, x.at
		case x.kind == "gpio" && x.v == string(relayOn):
			k := edges
			if k >= allowed || lastAt < 0 {
				t.Fatalf("relay edge %d at %v with %d codes allowed, last byte at %v:\n%s", k, x.at, allowed, lastAt, out)
			}
			got, want := lastRx-prevRx, int64(len(codes[0])+1)
			prevRx = lastRx
			edges++
			if got < want {
				// The probe read the count, was held off, then saw the
				// edge: its last sample is not the code's last byte.
				t.Logf("edge %d: the UART received %d bytes since the previous edge, less than a code and its CR (%d): not measured", k, got, want)
				continue
			}
			lat = append(lat, x.at-lastAt)
		}
	}
	if edges != allowed {
		t.Fatalf("%d relay edges for %d allowed scans:\n%s", edges, allowed, out)
	}
	return lat
}
