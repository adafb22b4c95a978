package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/decoder"
	"wicket/sync/mqtttest"
	"wicket/sync/store"
	"wicket/sync/wire"
	"wicket/sync/wire/wiretest"
)

// BenchmarkSerialToRelay measures a gate from the last byte of a code
// written to its serial scanner (a pseudo-terminal) to the simulated
// relay's ON line on its standard output, one allowed code at a time, with
// the store in WICKET_LATENCY_DIR (a slowed file system, for SD-card-class
// storage; see docs/BENCHMARKS.md) or a temporary directory.
//
// It runs wicketd built from this package (or the binary
// WICKET_LATENCY_BIN names), and alternates it, round by round, with the
// binary WICKET_LATENCY_BASE names (another build, for a before/after
// comparison) when set. WICKET_LATENCY_ROUNDS (default 3)
// rounds of WICKET_LATENCY_SCANS (default 40) scans per variant; each
// variant keeps its own gate directory across rounds.
//
// WICKET_LATENCY_ACKS (a duration, e.g. 400ms) turns on fleet sync to a
// Mosquitto the benchmark starts, with a collector that acks each
// records batch after a delay drawn uniformly from 0 to that duration,
// as a live collector does within a few hundred milliseconds: each ack
// is a write transaction of the gate's store (AckRange) that a scan may
// meet. WICKET_LATENCY_GAP (default 300ms) is the wait after each relay
// OFF before the next code: the gate takes the next scan only once the
// previous one's records are written, so a gap shorter than that writing
// (a commit behind an ack, in the flush tail) puts it in the next scan's
// figure.
func BenchmarkSerialToRelay(b *testing.B) {
	this := os.Getenv("WICKET_LATENCY_BIN")
	if this == "" {
		this = buildCmd(b, "wicketd")
	}
	variants := []struct{ name, bin string }{{"this", this}}
	if base := os.Getenv("WICKET_LATENCY_BASE"); base != "" {
		variants = append(variants, struct{ name, bin string }{"base", base})
	}
	root := os.Getenv("WICKET_LATENCY_DIR")
	if root == "" {
		root = b.TempDir()
	}
	rounds, scans := envInt("WICKET_LATENCY_ROUNDS", 3), envInt("WICKET_LATENCY_SCANS", 40)
	var ackDelay time.Duration
	if v := os.Getenv("WICKET_LATENCY_ACKS"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			b.Fatalf("WICKET_LATENCY_ACKS=%q: want a duration such as 400ms", v)
		}
		ackDelay = d
	}
	gap := 300 * time.Millisecond
	if v := os.Getenv("WICKET_LATENCY_GAP"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			b.Fatalf("WICKET_LATENCY_GAP=%q: want a duration such as 1s", v)
		}
		gap = d
	}
	broker := ""
	type gateDir struct{ dir, cfg string }
	gates := make([]gateDir, len(variants))
	var codes []string
	for i, v := range variants {
		dir, err := os.MkdirTemp(root, "latency-"+v.name+"-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		cfg, f := gateFiles(b, dir)
		gates[i] = gateDir{dir, cfg}
		if i == 0 {
			for n := range rounds * scans * len(variants) {
				c := f.Claims(decoder.KindPrinted)
				c.ID = fmt.Appendf(nil, "latency-%06d", n)
				codes = append(codes, f.Issue(b, f.Ed, c))
			}
			if os.Getenv("WICKET_LATENCY_ACKS") != "" {
				broker = mqtttest.StartMosquitto(b).URL()
				ackingCollector(b, broker, ackDelay)
			}
		} else {
			// Every gate trusts the same root: copy the first one's keys.
			for _, name := range []string{"root.pub", "keyset.cose"} {
				data, err := os.ReadFile(filepath.Join(gates[0].dir, name))
				if err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
					b.Fatal(err)
				}
			}
		}
		if broker != "" {
			// Every variant is the same enrolled gate, one at a time.
			syncCfg := "sync: {enabled: true, fleet: " + latencyFleet + ", broker: \"" + broker + "\", " +
				enrolGate(b, f.Root, broker, latencyFleet, "CRASH-G1", dir) + "}\n"
			if i > 0 {
				syncCfg = "sync: {enabled: true, fleet: " + latencyFleet + ", broker: \"" + broker + "\", identity_key: " +
					strconv.Quote(wiretest.IdentityFile(b, dir)) + "}\n"
			}
			appendFile(b, cfg, syncCfg)
		}
	}
	lat := make([][]time.Duration, len(variants))
	window := make([][]time.Duration, len(variants))
	// One measurement however large b.N: the scans are the repetitions.
	next := 0
	for range rounds {
		for i, v := range variants {
			l, w := serialToRelay(b, v.bin, gates[i].cfg, codes[next:next+scans], gap)
			lat[i], window[i] = append(lat[i], l...), append(window[i], w...)
			next += scans
		}
	}
	b.Logf("code length %d characters; store under %s; acks within %v (0: no sync); %v after each relay OFF", len(codes[0]), root, ackDelay, gap)
	for i, v := range variants {
		if broker != "" {
			// The acks reached the store: little is left in the outbox.
			st, err := store.OpenReadOnly(filepath.Join(gates[i].dir, "wicket.db"), 5*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			c, err := st.Counters()
			st.Close()
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("%s: %d records in the outbox after the run (acked: the rest)", v.name, c.Outbox)
		}
		p := percentiles(lat[i])
		b.Logf("%s: %d scans: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms", v.name, len(lat[i]), p(50), p(90), p(99), p(100))
		b.ReportMetric(p(50), v.name+"-p50-ms")
		b.ReportMetric(p(99), v.name+"-p99-ms")
		w := percentiles(window[i])
		b.Logf("%s: relay ON to the decision's line (its commit ended; 0 when it came first): p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms",
			v.name, w(50), w(90), w(99), w(100))
	}
}

// latencyFleet is the fleet of the benchmark's gates and collector.
const latencyFleet = "latency"

// ackingCollector subscribes to every gate's records on broker and acks
// each batch after a delay drawn uniformly from 0 to most.
func ackingCollector(b *testing.B, broker string, most time.Duration) {
	topics := wire.Topics{Fleet: latencyFleet}
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("latency-collector"))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("collector: connect: %v", tok.Error())
	}
	b.Cleanup(func() { cl.Disconnect(100) })
	tok := cl.Subscribe(topics.AllRecords(), 1, func(c mqtt.Client, m mqtt.Message) {
		r, err := wiretest.OpenRecords(latencyFleet, m.Payload())
		if err != nil || len(r.Records) == 0 {
			return
		}
		ack := wiretest.Ack(latencyFleet, r.Gate, r.Records[0].Seq, r.Records[len(r.Records)-1].Seq)
		time.AfterFunc(rand.N(most+1), func() { c.Publish(topics.Ack(r.Gate), 1, false, ack) })
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("collector: subscribe: %v", tok.Error())
	}
}

// appendFile appends text to the file at path.
func appendFile(tb testing.TB, path, text string) {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// percentiles returns the q-th percentile of d in milliseconds.
func percentiles(d []time.Duration) func(q int) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return func(q int) float64 { return float64(s[(len(s)-1)*q/100].Microseconds()) / 1000 }
}

// stampedLine is a line of a child's output and when it was read.
type stampedLine struct {
	text string
	at   time.Time
}

// serialToRelay runs the wicketd binary bin on cfg with a serial scanner,
// scans each code once (as one write, ending in CR, gap after the
// previous relay OFF) and returns, per code, the time from
// the write's return to reading the relay's ON line, and from that line to
// the decision's log line, which the gate writes once the record is
// committed (0 when it came first).
func serialToRelay(b *testing.B, bin, cfg string, codes []string, gap time.Duration) (lat, window []time.Duration) {
	b.Helper()
	g := startGate(b, exec.Command(bin, "run", "-config", cfg), cfg)
	defer g.stop(syscall.SIGTERM)
	for _, code := range codes {
		sent := g.scan(code)
		at := g.await("turnstile: relay ON", `"msg":"decision"`, "turnstile: relay OFF")
		lat = append(lat, at[0].Sub(sent))
		window = append(window, max(at[1].Sub(at[0]), 0))
		// A person walks on.
		time.Sleep(gap)
	}
	return lat, window
}

// gateRun is a wicketd child with a serial scanner on a pseudo-terminal,
// its output lines stamped with when they were read.
type gateRun struct {
	tb      testing.TB
	cmd     *exec.Cmd
	cfg     string
	orig    []byte
	scanner *os.File
	lines   chan stampedLine
}

// startGate points cfg's scanner at a new pseudo-terminal (stop puts the
// config back), starts cmd in cfg's directory and waits until the scanner
// is connected.
func startGate(tb testing.TB, cmd *exec.Cmd, cfg string) *gateRun {
	tb.Helper()
	orig, err := os.ReadFile(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	g := &gateRun{tb: tb, cmd: cmd, cfg: cfg, orig: orig, scanner: serialScanner(tb, cfg), lines: make(chan stampedLine, 1024)}
	cmd.Dir = filepath.Dir(cfg)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, r := range []io.Reader{stdout, stderr} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				g.lines <- stampedLine{sc.Text(), time.Now()}
			}
		}()
	}
	go func() { wg.Wait(); close(g.lines) }()
	g.await(`"msg":"device connected"`)
	return g
}

// scan writes code and a CR in one write and returns when the write
// returned: the last byte is on the line.
func (g *gateRun) scan(code string) time.Time {
	if _, err := g.scanner.WriteString(code + "\r"); err != nil {
		g.tb.Fatal(err)
	}
	return time.Now()
}

// await reads lines until each of wants was seen, in any order, and
// returns when each was read.
func (g *gateRun) await(wants ...string) []time.Time {
	g.tb.Helper()
	at := make([]time.Time, len(wants))
	left := len(wants)
	deadline := time.After(30 * time.Second)
	for left > 0 {
		select {
		case l, ok := <-g.lines:
			if !ok {
				g.tb.Fatalf("wicketd ended before %q", wants)
			}
			for i, w := range wants {
				if at[i].IsZero() && strings.Contains(l.text, w) {
					at[i] = l.at
					left--
				}
			}
		case <-deadline:
			g.tb.Fatalf("no %q from wicketd within 30s", wants)
		}
	}
	return at
}

// rest returns the lines not read yet, until the child's output ends.
func (g *gateRun) rest() []stampedLine {
	var out []stampedLine
	for l := range g.lines {
		out = append(out, l)
	}
	return out
}

// stop signals the child, waits for it and puts the config back.
func (g *gateRun) stop(sig syscall.Signal) {
	g.cmd.Process.Signal(sig)
	g.cmd.Wait()
	os.WriteFile(g.cfg, g.orig, 0o644)
}
