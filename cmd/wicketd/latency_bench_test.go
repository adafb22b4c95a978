package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
//
// WICKET_LATENCY_PASSBACK (a duration) sets policy.anti_passback, so that
// each allowed scan reads the store (store.LastAllowed) before its relay
// edge; the codes are all different, so none is denied.
//
// WICKET_LATENCY_STAGES=1 attributes the scans of this build over the
// goal (6.1 ms), and the three slowest: it runs it at log level debug with the Go runtime's GC
// trace, and logs for each such scan where its time went (the loop's
// "scan stages" line: the frame complete, the scan taken, the verifier's
// and the rules' decisions, the relay told to open), whether the store
// file grew while it ran (bbolt grows a file under 16 MiB to its memory
// map's size: a change is a remap), the GC cycles that ended meanwhile and
// the collector's acks published in the 200 ms before it.
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
	stages := os.Getenv("WICKET_LATENCY_STAGES") != ""
	acks := &ackLog{}
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
		if stages && i == 0 {
			editFile(b, cfg, "log: {level: info", "log: {level: debug")
		}
		if v := os.Getenv("WICKET_LATENCY_PASSBACK"); v != "" {
			if d, err := time.ParseDuration(v); err != nil || d <= 0 {
				b.Fatalf("WICKET_LATENCY_PASSBACK=%q: want a duration such as 30s", v)
			}
			editFile(b, cfg, "policy: {max_status_age: 0s", "policy: {max_status_age: 0s, anti_passback: "+v)
		}
		if i == 0 {
			for n := range rounds * scans * len(variants) {
				c := f.Claims(decoder.KindPrinted)
				c.ID = fmt.Appendf(nil, "latency-%06d", n)
				codes = append(codes, f.Issue(b, f.Ed, c))
			}
			if os.Getenv("WICKET_LATENCY_ACKS") != "" {
				broker = mqtttest.StartMosquitto(b).URL()
				ackingCollector(b, broker, ackDelay, acks)
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
	var traces []scanTrace
	for range rounds {
		for i, v := range variants {
			var tr *[]scanTrace
			if stages && i == 0 {
				tr = &traces
			}
			l, w := serialToRelay(b, v.bin, gates[i].cfg, codes[next:next+scans], gap, tr)
			lat[i], window[i] = append(lat[i], l...), append(window[i], w...)
			next += scans
		}
	}
	if stages {
		logStages(b, traces, acks)
	}
	b.Logf("code length %d characters; store under %s; acks within %v (0: no sync); %v after each relay OFF", len(codes[0]), root, ackDelay, gap)
	for i, v := range variants {
		db := filepath.Join(gates[i].dir, "wicket.db")
		if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
			b.Logf("%s: no store (not a gate: the measuring apparatus alone)", v.name)
		} else if broker != "" {
			// The acks reached the store: little is left in the outbox.
			st, err := store.OpenReadOnly(db, 5*time.Second)
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

// ackLog is when the benchmark's collector published each ack.
type ackLog struct {
	mu sync.Mutex
	at []time.Time
}

func (a *ackLog) add(t time.Time) {
	a.mu.Lock()
	a.at = append(a.at, t)
	a.mu.Unlock()
}

// within counts the acks published from from to to.
func (a *ackLog) within(from, to time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, t := range a.at {
		if !t.Before(from) && !t.After(to) {
			n++
		}
	}
	return n
}

// ackingCollector subscribes to every gate's records on broker and acks
// each batch after a delay drawn uniformly from 0 to most, noting when in
// acks.
func ackingCollector(b *testing.B, broker string, most time.Duration, acks *ackLog) {
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
		time.AfterFunc(rand.N(most+1), func() {
			acks.add(time.Now())
			c.Publish(topics.Ack(r.Gate), 1, false, ack)
		})
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
// committed (0 when it came first). With traces set, the gate runs with
// the GC trace and each scan's stages are appended to it (the gate must
// log at debug level).
func serialToRelay(b *testing.B, bin, cfg string, codes []string, gap time.Duration, traces *[]scanTrace) (lat, window []time.Duration) {
	b.Helper()
	cmd := exec.Command(bin, "run", "-config", cfg)
	var gcs []time.Time
	var mu sync.Mutex
	if traces != nil {
		cmd.Env = append(os.Environ(), "GODEBUG=gctrace=1")
	}
	g := startGate(b, cmd, cfg)
	defer g.stop(syscall.SIGTERM)
	if traces != nil {
		g.seen = func(l stampedLine) {
			if strings.HasPrefix(l.text, "gc ") {
				mu.Lock()
				gcs = append(gcs, l.at)
				mu.Unlock()
			}
		}
	}
	db := filepath.Join(filepath.Dir(cfg), "wicket.db")
	for _, code := range codes {
		// A person walks up: the daemon has been running for a gap before
		// the first scan too, not a millisecond (its start-up work, the
		// store check and the first connect, would hold the first scan by
		// a scheduling quantum or so).
		time.Sleep(gap)
		var t scanTrace
		if traces != nil {
			t.sizeBefore = fileSize(db)
		}
		sent := g.scan(code)
		at := g.await("turnstile: relay ON", `"msg":"decision"`, "turnstile: relay OFF")
		lat = append(lat, at[0].Sub(sent))
		window = append(window, max(at[1].Sub(at[0]), 0))
		if traces != nil {
			t.sizeAfter = fileSize(db)
			t.sent, t.on = sent, at[0]
			t.stages = g.awaitLine(`"msg":"scan stages"`).text
			mu.Lock()
			for _, c := range gcs {
				if !c.Before(sent) && !c.After(at[0]) {
					t.gcs++
				}
			}
			mu.Unlock()
			*traces = append(*traces, t)
		}
	}
	return lat, window
}

// scanTrace is what the benchmark saw of one scan with
// WICKET_LATENCY_STAGES.
type scanTrace struct {
	sent, on              time.Time // the write's return, the relay ON line read
	stages                string    // the loop's "scan stages" line
	sizeBefore, sizeAfter int64     // the store file's size before the write and after the ON line
	gcs                   int       // GC cycles that ended between
}

// fileSize is the size of the file at path, -1 when it can't be read.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}

// editFile replaces the first old in the file at path by new.
func editFile(tb testing.TB, path, old, new string) {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	out := strings.Replace(string(data), old, new, 1)
	if out == string(data) {
		tb.Fatalf("%s: no %q to replace", path, old)
	}
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// goal is the benchmark's goal for the p99: a quarter of a 280-character
// code's wire time at 115200 baud.
const goal = 6100 * time.Microsecond

// logStages logs where the time of each scan over the goal, and of the
// three slowest, went, and how often the store file grew while a scan
// ran and over the whole run.
func logStages(b *testing.B, traces []scanTrace, acks *ackLog) {
	grewDuring, grew := 0, 0
	for i, t := range traces {
		if t.sizeAfter != t.sizeBefore {
			grewDuring++
		}
		if i > 0 && t.sizeBefore != traces[i-1].sizeAfter {
			grew++
		}
	}
	b.Logf("this: the store file grew during %d of %d scans, and %d times between scans", grewDuring, len(traces), grew)
	order := make([]int, len(traces))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int {
		return cmp.Compare(traces[y].on.Sub(traces[y].sent), traces[x].on.Sub(traces[x].sent))
	})
	for n, i := range order {
		t := traces[i]
		lat := t.on.Sub(t.sent)
		if lat <= goal && n >= 3 {
			break
		}
		var st struct {
			Frame                          int64
			Taken, Verified, Ruled, Opened time.Duration
		}
		if err := json.Unmarshal([]byte(t.stages), &st); err != nil {
			b.Logf("scan %d: %.2f ms; stages unreadable: %v", i, ms(lat), err)
			continue
		}
		frame := time.Unix(0, st.Frame)
		opened := frame.Add(st.Opened)
		b.Logf("scan %d: %.2f ms: write→frame %.2f, frame→taken %.2f, →verified %.2f, →ruled %.2f, →opened %.2f, opened→ON read %.2f ms; file %d→%d bytes; GC cycles ended %d; acks published in the 200 ms before %d",
			i, ms(lat), ms(frame.Sub(t.sent)), ms(st.Taken), ms(st.Verified-st.Taken), ms(st.Ruled-st.Verified), ms(st.Opened-st.Ruled),
			ms(t.on.Sub(opened)), t.sizeBefore, t.sizeAfter, t.gcs, acks.within(t.sent.Add(-200*time.Millisecond), t.on))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// gateRun is a wicketd child with a serial scanner on a pseudo-terminal,
// its output lines stamped with when they were read.
type gateRun struct {
	tb      testing.TB
	cmd     *exec.Cmd
	cfg     string
	orig    []byte
	scanner *os.File
	lines   chan stampedLine
	// seen, if set, sees every line await reads.
	seen func(stampedLine)
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
	lines := g.awaitLines(wants...)
	at := make([]time.Time, len(lines))
	for i, l := range lines {
		at[i] = l.at
	}
	return at
}

// awaitLine reads lines until one holds want and returns it.
func (g *gateRun) awaitLine(want string) stampedLine {
	g.tb.Helper()
	return g.awaitLines(want)[0]
}

// awaitLines reads lines until each of wants was seen, in any order, and
// returns the first line holding each.
func (g *gateRun) awaitLines(wants ...string) []stampedLine {
	g.tb.Helper()
	got := make([]stampedLine, len(wants))
	left := len(wants)
	deadline := time.After(30 * time.Second)
	for left > 0 {
		select {
		case l, ok := <-g.lines:
			if !ok {
				g.tb.Fatalf("wicketd ended before %q", wants)
			}
			if g.seen != nil {
				g.seen(l)
			}
			for i, w := range wants {
				if got[i].at.IsZero() && strings.Contains(l.text, w) {
					got[i] = l
					left--
				}
			}
		case <-deadline:
			g.tb.Fatalf("no %q from wicketd within 30s", wants)
		}
	}
	return got
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
