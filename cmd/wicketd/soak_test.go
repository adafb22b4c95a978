package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"wicket/decoder"
	"wicket/internal/testkit"
	"wicket/sync/collector"
	"wicket/sync/mqtttest"
	"wicket/sync/store"
	"wicket/sync/store/storetest"
	"wicket/sync/wire/wiretest"
	"wicket/verifier/verifiertest"
)

// The soak test's load and limits. The limits are stated here, with
// their reasons, and repeated in the report.
const (
	// soakRate is the scanner's rate: 20 codes a second, far above a
	// real gate's (one person every 1.5 s or so).
	soakRate = 20
	// soakSampleEvery is how often /metrics is sampled.
	soakSampleEvery = 10 * time.Second
	// soakMaxWarmUp bounds the warm-up after which the baseline is taken:
	// the heap, the bbolt mmap, the broker session and the collector's
	// connection pool reach their working size in the first minute.
	soakMaxWarmUp = 2 * time.Minute
	// soakMaxCompare is the span of the first and the last windows whose
	// p99 are compared (18 windows of 10 s: about 360 allowed scans, so the
	// p99 is the 4th slowest, not the single slowest).
	soakMaxCompare = 3 * time.Minute
	// soakAnonGrowth and soakAnonSlack bound the growth of anonymous
	// resident memory (heap, stacks, runtime) from the end of the warm-up
	// to the end: the larger of +20% and +8 MiB. 8 MiB is two Go heap
	// arenas' worth of GC-timing jitter at this heap size; 20% is the
	// usual soak tolerance. A leak of one small object per scan (36,000
	// scans in 30 minutes) at 256 bytes each would already pass 8 MiB.
	soakAnonGrowth = 0.20
	soakAnonSlack  = 8 << 20
	// soakGoroutineSlack is how many more goroutines than after the
	// warm-up the daemon may have at the end: HTTP connections of the
	// sampler and in-flight MQTT tokens come and go.
	soakGoroutineSlack = 10
	// soakP99Growth bounds the p99 of the last windows against the first.
	soakP99Growth = 0.20
)

// soakSample is one scrape of the daemon's /metrics plus what the test
// reads about the child process directly.
type soakSample struct {
	elapsed    time.Duration
	fed        uint64  // codes written to the scanner
	decisions  float64 // sum of wicket_decisions_total
	allowed    float64
	rss        float64 // process_resident_memory_bytes
	goroutines float64 // go_goroutines
	outbox     float64
	les        []float64 // wicket_scan_to_relay_seconds bucket bounds
	buckets    []float64 // cumulative counts per bound
	rssAnon    uint64    // /proc/PID/status RssAnon
	rssFile    uint64    // /proc/PID/status RssFile
	dbSize     int64
}

// TestSoak runs wicketd with fleet sync for WICKET_SOAK (a duration: 30m
// for the release soak, 2m to try it) at soakRate scans a second and
// checks that resident memory and goroutines stay flat, that the p99
// scan-to-relay latency does not grow, that every record reaches
// PostgreSQL exactly once and that wicketd stops cleanly on SIGTERM.
// WICKET_SOAK_REPORT names a markdown file for the report. Without
// WICKET_SOAK the test is skipped: ordinary runs have no timed soak.
func TestSoak(t *testing.T) {
	spec := os.Getenv("WICKET_SOAK")
	if spec == "" {
		t.Skip("set WICKET_SOAK to a duration (e.g. 30m) to run the soak test")
	}
	dur, err := time.ParseDuration(spec)
	if err != nil || dur < 40*time.Second {
		t.Fatalf("WICKET_SOAK=%q: want a duration of at least 40s", spec)
	}
	skipUnlessSelfExec(t)
	warmUp := min(soakMaxWarmUp, dur/4)
	compare := min(soakMaxCompare, dur/4)
	loadStart := readFileTrim("/proc/loadavg")

	// Broker, PostgreSQL database, collector.
	b := mqtttest.StartMosquitto(t)
	pool := soakDatabase(t)
	collLog := testkit.Buffer{Max: 64 << 10}
	dir := t.TempDir()
	cfgPath, f := gateFiles(t, dir)
	identity := enrolGate(t, f.Root, b.URL(), "soak", "SOAK-G1", dir)
	coll, err := collector.New(collector.Config{Broker: b.URL(), Fleet: "soak", ClientID: "soak-collector",
		ID: wiretest.CollectorID, Key: wiretest.CollectorKey, Roots: f.Roots(), Roster: wiretest.Roster(t, f.Root, 1, "SOAK-G1")},
		collector.NewWriter(pool, slog.New(slog.NewTextHandler(&collLog, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		slog.New(slog.NewTextHandler(&collLog, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	collCtx, collStop := context.WithCancel(context.Background())
	collDone := make(chan error, 1)
	go func() { collDone <- coll.Run(collCtx) }()
	defer func() {
		collStop()
		<-collDone
	}()

	// The gate: key files from gateFiles, then the soak's own config.
	addr := freeLoopbackAddr(t)
	cfg := fmt.Sprintf(`gate: {id: SOAK-G1, venue: SOAK-V1}
trust: {root_keys: [root.pub], key_set: keyset.cose}
policy: {max_status_age: 0s, anti_passback: 5m}
store: {path: wicket.db}
scanner: {type: stdin, hold_off: 3s}
turnstile: {backend: sim, pulse_width: 50ms, open_timeout: 1s}
sync: {enabled: true, fleet: soak, broker: %q, status_every: 10s, ack_timeout: 10s, reconnect_min: 100ms, reconnect_max: 2s, %s}
http: {metrics: {addr: %q}}
log: {level: info, format: json}
`, b.URL(), identity, addr)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	codes := soakCodes(t, f, dur)

	cmd := selfExec("run", "-config", cfgPath)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	logs := newSoakLogs()
	ready := make(chan struct{})
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		logs.read(stderr, ready)
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("wicketd did not become ready; log:\n%s", logs.problems())
	}
	base := "http://" + addr
	client := &http.Client{Timeout: 5 * time.Second}
	if err := waitHealthy(client, base, 10*time.Second); err != nil {
		t.Fatalf("wicketd /healthz: %v; log:\n%s", err, logs.problems())
	}

	// Feed the scanner at soakRate on an absolute schedule: a slow write
	// (the daemon not reading) delays later codes, and the schedule then
	// catches up, so the average rate holds; the worst delay is reported.
	var fed atomic.Uint64
	var maxLag atomic.Int64
	feedCtx, feedStop := context.WithCancel(context.Background())
	feedDone := make(chan error, 1)
	start := time.Now()
	go func() {
		w := bufio.NewWriter(stdin)
		interval := time.Second / soakRate
		for i := 0; ; i++ {
			due := start.Add(time.Duration(i) * interval)
			if d := time.Until(due); d > 0 {
				select {
				case <-feedCtx.Done():
					feedDone <- nil
					return
				case <-time.After(d):
				}
			} else if feedCtx.Err() != nil {
				feedDone <- nil
				return
			}
			if lag := time.Since(due); int64(lag) > maxLag.Load() {
				maxLag.Store(int64(lag))
			}
			w.WriteString(codes.at(i))
			w.WriteByte('\n')
			if err := w.Flush(); err != nil {
				feedDone <- err
				return
			}
			fed.Add(1)
		}
	}()

	// Sample every soakSampleEvery, the first at once (the histogram's
	// baseline).
	var samples []soakSample
	sample := func() {
		s, err := scrapeSoak(client, base)
		if err != nil {
			t.Errorf("sample at %v: %v", time.Since(start).Round(time.Second), err)
			return
		}
		s.elapsed = time.Since(start)
		s.fed = fed.Load()
		s.rssAnon, s.rssFile = procRSS(cmd.Process.Pid)
		if st, err := os.Stat(filepath.Join(dir, "wicket.db")); err == nil {
			s.dbSize = st.Size()
		}
		samples = append(samples, s)
		if len(samples)%6 == 1 {
			t.Logf("%6s fed %6d decisions %6.0f rss %6.1f MiB (anon %5.1f) goroutines %3.0f outbox %4.0f",
				s.elapsed.Round(time.Second), s.fed, s.decisions, s.rss/(1<<20), float64(s.rssAnon)/(1<<20), s.goroutines, s.outbox)
		}
	}
	sample()
	tick := time.NewTicker(soakSampleEvery)
	for time.Since(start) < dur-time.Second {
		select {
		case <-tick.C:
			sample()
		case err := <-feedDone:
			tick.Stop()
			t.Fatalf("feeding the scanner stopped after %d codes: %v; log:\n%s", fed.Load(), err, logs.problems())
		}
	}
	tick.Stop()
	feedStop()
	if err := <-feedDone; err != nil {
		t.Errorf("feeding the scanner: %v", err)
	}
	feedTime := time.Since(start)

	// Let sync drain: the outbox gauge (refreshed every 2 s) at 0 twice,
	// 3 s apart, and the PostgreSQL count still.
	drainStart := time.Now()
	var lastPG int64 = -1
	zeros := 0
	for time.Since(drainStart) < 90*time.Second {
		s, err := scrapeSoak(client, base)
		n := pgCount(t, pool)
		if err == nil && s.outbox == 0 && n == lastPG {
			zeros++
		} else {
			zeros = 0
		}
		lastPG = n
		if zeros >= 2 {
			break
		}
		time.Sleep(3 * time.Second)
	}
	drainTime := time.Since(drainStart)
	final, err := scrapeSoak(client, base)
	if err != nil {
		t.Fatalf("final scrape: %v", err)
	}
	final.elapsed, final.fed = time.Since(start), fed.Load()
	final.rssAnon, final.rssFile = procRSS(cmd.Process.Pid)

	// SIGTERM: a clean exit, promptly.
	stdin.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	termAt := time.Now()
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	var exitErr error
	select {
	case exitErr = <-waitErr:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		exitErr = errors.New("still running 30 s after SIGTERM; killed")
		<-waitErr
	}
	exited = true
	stopTime := time.Since(termAt)
	<-logDone

	// Records: the store against PostgreSQL.
	st := storetest.Open(t, store.Options{Path: filepath.Join(dir, "wicket.db"), LockTimeout: 5 * time.Second,
		MaxEvents: 1_000_000, MaxOutbox: 200_000, Logger: slog.New(slog.DiscardHandler)})
	evs := allEvents(t, st)
	pending, err := st.Outbox(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	counters, _ := st.Counters()
	st.Close()
	pgSeqs := pgSequences(t, pool)
	unsent := map[uint64]bool{}
	for _, e := range pending {
		unsent[e.Seq] = true
	}
	var missing, extra, wantInPG int
	storeSeqs := map[uint64]bool{}
	types := map[string]int{}
	for _, e := range evs {
		storeSeqs[e.Seq] = true
		key := e.Type
		if e.Type == "decision" {
			key += ":" + e.Reason
		}
		types[key]++
		if unsent[e.Seq] {
			continue
		}
		wantInPG++
		if !pgSeqs[e.Seq] {
			missing++
		}
	}
	for s := range pgSeqs {
		if !storeSeqs[s] {
			extra++
		}
	}
	var unsentKinds []string
	for _, e := range pending {
		unsentKinds = append(unsentKinds, e.Type+":"+e.Reason)
	}

	// The checks.
	var failures []string
	fail := func(format string, args ...any) { failures = append(failures, fmt.Sprintf(format, args...)) }
	after := func(d time.Duration) *soakSample {
		for i := range samples {
			if samples[i].elapsed >= d-time.Second {
				return &samples[i]
			}
		}
		return &samples[len(samples)-1]
	}
	base0 := samples[0]
	warm := after(warmUp)
	last := samples[len(samples)-1]
	if len(samples) < 4 || warm == &samples[len(samples)-1] {
		t.Fatalf("only %d samples: too few for the checks", len(samples))
	}
	anonLimit := uint64(math.Max(float64(warm.rssAnon)*(1+soakAnonGrowth), float64(warm.rssAnon)+soakAnonSlack))
	if last.rssAnon > anonLimit {
		fail("anonymous RSS grew from %.1f MiB after warm-up to %.1f MiB at the end; limit %.1f MiB",
			mib(warm.rssAnon), mib(last.rssAnon), mib(anonLimit))
	}
	// process_resident_memory_bytes also counts the store's mmapped file
	// pages, which grow with the access log by design (36,000 scans keep
	// adding events; nothing is pruned below store.max_events): its limit
	// is the anonymous one plus the store file's growth since warm-up.
	rssLimit := math.Max(warm.rss*(1+soakAnonGrowth), warm.rss+soakAnonSlack) + float64(max(0, last.dbSize-warm.dbSize))
	if last.rss > rssLimit {
		fail("process_resident_memory_bytes grew from %.1f MiB after warm-up to %.1f MiB at the end; limit %.1f MiB (+20%%/8 MiB plus %.1f MiB store growth)",
			warm.rss/(1<<20), last.rss/(1<<20), rssLimit/(1<<20), float64(last.dbSize-warm.dbSize)/(1<<20))
	}
	if last.goroutines > warm.goroutines+soakGoroutineSlack {
		fail("goroutines grew from %.0f after warm-up to %.0f at the end; limit +%d", warm.goroutines, last.goroutines, soakGoroutineSlack)
	}
	firstFrom, firstTo := after(warmUp), after(warmUp+compare)
	lastFrom := after(last.elapsed - compare)
	p99First, nFirst := quantileBound(firstFrom, firstTo, 0.99)
	p99Last, nLast := quantileBound(lastFrom, &last, 0.99)
	switch {
	case nFirst < 50 || nLast < 50:
		fail("too few allowed scans for a p99: %d in the first windows, %d in the last", nFirst, nLast)
	case p99Last > p99First*(1+soakP99Growth):
		fail("p99 scan-to-relay of the last %v is ≤ %s s; of the first %v after warm-up ≤ %s s: more than +20%%",
			compare, fmtBound(p99Last), compare, fmtBound(p99First))
	}
	if missing != 0 || extra != 0 || int64(len(pgSeqs)) != int64(wantInPG) {
		fail("PostgreSQL holds %d records of the gate; the store %d events of which %d never left (%v): %d missing, %d unknown",
			len(pgSeqs), len(evs), len(pending), unsentKinds, missing, extra)
	}
	if len(pending) > 1 || (len(pending) == 1 && pending[0].Reason != "stop") {
		fail("records left in the outbox after the drain: %v (only the stop event, logged after sync ended, may stay)", unsentKinds)
	}
	if exitErr != nil {
		fail("wicketd after SIGTERM: %v", exitErr)
	}
	if counters.Dropped != 0 {
		fail("%d records dropped from the outbox", counters.Dropped)
	}
	decided := last.decisions - base0.decisions
	if want := float64(last.fed-base0.fed) * 0.95; decided < want {
		fail("%.0f decisions for %d codes fed: the daemon fell behind or the hold-off swallowed codes", decided, last.fed-base0.fed)
	}

	rep := soakReport{
		dur: dur, feedTime: feedTime, warmUp: warmUp, compare: compare, samples: samples, final: final,
		warm: *warm, p99First: p99First, p99Last: p99Last, nFirst: nFirst, nLast: nLast,
		anonLimit: anonLimit, rssLimit: rssLimit, pgRecords: len(pgSeqs), storeEvents: len(evs), unsent: unsentKinds,
		types: types, maxLag: time.Duration(maxLag.Load()), drainTime: drainTime, stopTime: stopTime, exitErr: exitErr,
		loadStart: loadStart, loadEnd: readFileTrim("/proc/loadavg"), logs: logs, collLog: collLog.String(), failures: failures,
	}
	text := rep.markdown()
	if path := os.Getenv("WICKET_SOAK_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Errorf("write report: %v", err)
		}
	}
	t.Log("\n" + text)
	for _, f := range failures {
		t.Error(f)
	}
}

// soakCodeSet is what the scanner is fed, by position: per second of 20
// slots, two fresh green vouchers of different holders (allowed), one
// voucher allowed 5 s earlier presented again (past the 3 s hold-off,
// denied by anti-passback), two garbage lines, a red voucher every tenth
// second (an alert) and yellow vouchers (denied) from a pool large enough
// that the hold-off never sees one twice within its window.
type soakCodeSet struct {
	allow   []string
	yellow  []string
	red     []string
	garbage []string
}

func (c *soakCodeSet) at(i int) string {
	sec, slot := i/soakRate, i%soakRate
	switch {
	case slot == 0 || slot == 10:
		return c.allow[(2*sec+slot/10)%len(c.allow)]
	case slot == 5 && sec >= 5:
		return c.allow[(2*(sec-5))%len(c.allow)]
	case slot == 3 || slot == 13:
		return c.garbage[(2*sec+slot/10)%len(c.garbage)]
	case slot == 17 && sec%10 == 0:
		return c.red[(sec/10)%len(c.red)]
	}
	return c.yellow[i%len(c.yellow)]
}

func soakCodes(t *testing.T, fx *verifiertest.Fixture, dur time.Duration) *soakCodeSet {
	t.Helper()
	issue := func(prefix string, i int, colour decoder.Colour) string {
		c := fx.Claims(decoder.KindPrinted)
		c.ID = fmt.Appendf(nil, "soak-%s-%06d", prefix, i)
		c.Voucher.Subject = fmt.Appendf(nil, "soak-holder-%s-%06d", prefix, i)
		c.Voucher.Colour = colour
		return fx.Issue(t, fx.Ed, c)
	}
	cs := &soakCodeSet{}
	// More than the run needs: an allowed voucher is never shown
	// fresh twice.
	n := 2*int(dur/time.Second) + 2*soakRate
	for i := range n {
		cs.allow = append(cs.allow, issue("green", i, decoder.ColourGreen))
	}
	for i := range 400 {
		cs.yellow = append(cs.yellow, issue("yellow", i, decoder.ColourYellow))
	}
	for i := range 20 {
		cs.red = append(cs.red, issue("red", i, decoder.ColourRed))
	}
	for i := range 100 {
		var b [24]byte
		rand.Read(b[:])
		switch i % 3 {
		case 0:
			cs.garbage = append(cs.garbage, "WK1:"+strings.ToUpper(hex.EncodeToString(b[:])))
		case 1:
			cs.garbage = append(cs.garbage, "HC1:"+hex.EncodeToString(b[:]))
		default:
			cs.garbage = append(cs.garbage, "https://example.com/ticket?"+hex.EncodeToString(b[:8]))
		}
	}
	return cs
}

// soakDatabase creates an empty, migrated PostgreSQL database for the
// soak's collector, dropped when the test ends.
func soakDatabase(t *testing.T) *pgxpool.Pool {
	t.Helper()
	admin := os.Getenv("WICKET_TEST_PG")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("PostgreSQL for the soak unreachable (user postgres, trust auth on 127.0.0.1:5432, or WICKET_TEST_PG): %v", err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "wicket_soak_" + hex.EncodeToString(b[:])
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(admin)
	u.Path = "/" + name
	pool, err := pgxpool.New(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, admin); err == nil {
			conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			conn.Close(ctx)
		}
	})
	if err := collector.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

func pgCount(t *testing.T, pool *pgxpool.Pool) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int64
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM wicket_records WHERE gate = 'SOAK-G1'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func pgSequences(t *testing.T, pool *pgxpool.Pool) map[uint64]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := pool.Query(ctx, "SELECT seq FROM wicket_records WHERE gate = 'SOAK-G1'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[uint64]bool{}
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out[uint64(s)] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func waitHealthy(c *http.Client, base string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := c.Get(base + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scrapeSoak reads the series the soak watches from /metrics.
func scrapeSoak(c *http.Client, base string) (soakSample, error) {
	var s soakSample
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("GET /metrics: %d", resp.StatusCode)
	}
	have := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		series := line[:i]
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return s, fmt.Errorf("metrics line %q: %v", line, err)
		}
		name := series
		if j := strings.IndexByte(series, '{'); j >= 0 {
			name = series[:j]
		}
		have[name] = true
		switch name {
		case "wicket_decisions_total":
			s.decisions += v
			if strings.Contains(series, `allow="true"`) {
				s.allowed += v
			}
		case "process_resident_memory_bytes":
			s.rss = v
		case "go_goroutines":
			s.goroutines = v
		case "wicket_outbox_records":
			s.outbox = v
		case "wicket_scan_to_relay_seconds_bucket":
			le := series[strings.Index(series, `le="`)+4 : len(series)-2]
			bound, err := strconv.ParseFloat(le, 64)
			if err != nil {
				return s, fmt.Errorf("bucket bound %q: %v", le, err)
			}
			s.les = append(s.les, bound)
			s.buckets = append(s.buckets, v)
		}
	}
	if err := sc.Err(); err != nil {
		return s, err
	}
	for _, n := range []string{"process_resident_memory_bytes", "go_goroutines", "wicket_scan_to_relay_seconds_bucket", "wicket_outbox_records"} {
		if !have[n] {
			return s, fmt.Errorf("/metrics lacks %s", n)
		}
	}
	return s, nil
}

// quantileBound is the q-quantile of the scan-to-relay observations
// between two samples, from the bucket deltas, as the upper bound of the
// bucket holding it (+Inf past the last bound), and the observations.
// The histogram resolves no finer than its buckets: an upper bound says
// "at most", and neighbouring bounds differ by 2 to 2.5 times, so a
// +20% limit on bounds holds exactly when the p99 stays in the same
// bucket or a lower one.
func quantileBound(a, b *soakSample, q float64) (float64, int) {
	if len(a.buckets) != len(b.buckets) || len(b.buckets) == 0 {
		return math.NaN(), 0
	}
	n := len(b.buckets)
	total := b.buckets[n-1] - a.buckets[n-1]
	if total <= 0 {
		return math.NaN(), 0
	}
	rank := math.Ceil(q * total)
	for i := range b.buckets {
		if b.buckets[i]-a.buckets[i] >= rank {
			return b.les[i], int(total)
		}
	}
	return math.Inf(1), int(total)
}

func fmtBound(f float64) string {
	if math.IsNaN(f) {
		return "–"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// procRSS reads the anonymous and file-backed resident memory of a
// process from /proc/PID/status (Linux; zero elsewhere).
func procRSS(pid int) (anon, file uint64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseUint(f[0], 10, 64)
		switch k {
		case "RssAnon":
			anon = n << 10
		case "RssFile":
			file = n << 10
		}
	}
	return anon, file
}

func readFileTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// soakLogs reads wicketd's JSON log: it signals "ready" and counts
// warnings and errors by message.
type soakLogs struct {
	mu     sync.Mutex
	levels map[string]int
	msgs   map[string]int
	first  []string
}

func newSoakLogs() *soakLogs {
	return &soakLogs{levels: map[string]int{}, msgs: map[string]int{}}
}

func (l *soakLogs) read(r io.Reader, ready chan struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var once sync.Once
	for sc.Scan() {
		var line struct {
			Level, Msg string
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			line.Level, line.Msg = "UNPARSED", sc.Text()
		}
		if line.Msg == "ready" {
			once.Do(func() { close(ready) })
		}
		l.mu.Lock()
		l.levels[line.Level]++
		if line.Level != "INFO" && line.Level != "DEBUG" {
			l.msgs[line.Level+" "+line.Msg]++
			if len(l.first) < 10 {
				l.first = append(l.first, sc.Text())
			}
		}
		l.mu.Unlock()
	}
}

func (l *soakLogs) problems() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.first, "\n")
}

type soakReport struct {
	dur, feedTime, warmUp, compare time.Duration
	samples                        []soakSample
	final, warm                    soakSample
	p99First, p99Last              float64
	nFirst, nLast                  int
	anonLimit                      uint64
	rssLimit                       float64
	pgRecords, storeEvents         int
	unsent                         []string
	types                          map[string]int
	maxLag, drainTime, stopTime    time.Duration
	exitErr                        error
	loadStart, loadEnd, collLog    string
	logs                           *soakLogs
	failures                       []string
}

func (r *soakReport) markdown() string {
	var w strings.Builder
	verdict := "PASS"
	if len(r.failures) > 0 {
		verdict = "FAIL"
	}
	s0, last := r.samples[0], r.samples[len(r.samples)-1]
	host, _ := os.Hostname()
	fmt.Fprintf(&w, "# Soak test: wicketd with fleet sync, %v at %d scans/s\n\n", r.dur, soakRate)
	fmt.Fprintf(&w, "Result: **%s**. Run on %s: `WICKET_SOAK=%s WICKET_SOAK_REPORT=%s go test -count=1 -timeout 45m -run TestSoak -v ./cmd/wicketd/`\n\n",
		verdict, time.Now().UTC().Format("2006-01-02 15:04 UTC"), os.Getenv("WICKET_SOAK"), os.Getenv("WICKET_SOAK_REPORT"))
	fmt.Fprintf(&w, "Machine: %s, %s/%s, %d CPUs (GOMAXPROCS %d), %s. Load average at start `%s`, at end `%s`. "+
		"Other test runs may have shared the machine during the soak; the latency figures include that interference.\n\n",
		host, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), r.loadStart, r.loadEnd)
	w.WriteString("## Setup\n\n")
	w.WriteString("`TestSoak` (cmd/wicketd/soak_test.go; skipped unless `WICKET_SOAK` is set) starts Mosquitto, a collector " +
		"(sync/collector, in the test process) into a fresh PostgreSQL database, and the real wicketd as a child process " +
		"(the test binary re-executed as wicketd) with a stdin scanner, the simulated turnstile (pass after 200 ms), " +
		"hold-off 3 s, anti-passback 5 m, sync on and `/metrics` on a free loopback port. It writes codes to the scanner " +
		"on a fixed schedule; per second: 2 fresh green vouchers of different holders (allowed), 1 voucher allowed 5 s " +
		"earlier (anti-passback deny), 2 garbage lines, a red voucher every 10 s (alert) and yellow vouchers (denied). " +
		"It samples `/metrics` every 10 s.\n\n")
	w.WriteString("## Checks\n\n")
	fmt.Fprintf(&w, "| check | limit | start (after %v warm-up) | end | |\n|---|---|---|---|---|\n", r.warmUp)
	ok := func(b bool) string {
		if b {
			return "ok"
		}
		return "**FAIL**"
	}
	fmt.Fprintf(&w, "| anonymous RSS (`/proc/PID/status` RssAnon) | max(+20%%, +8 MiB) = %.1f MiB | %.1f MiB | %.1f MiB | %s |\n",
		mib(r.anonLimit), mib(r.warm.rssAnon), mib(last.rssAnon), ok(last.rssAnon <= r.anonLimit))
	fmt.Fprintf(&w, "| `process_resident_memory_bytes` | max(+20%%, +8 MiB) + store file growth (%.1f MiB) = %.1f MiB | %.1f MiB | %.1f MiB | %s |\n",
		float64(last.dbSize-r.warm.dbSize)/(1<<20), r.rssLimit/(1<<20), r.warm.rss/(1<<20), last.rss/(1<<20), ok(last.rss <= r.rssLimit))
	fmt.Fprintf(&w, "| `go_goroutines` | +%d | %.0f | %.0f | %s |\n", soakGoroutineSlack, r.warm.goroutines, last.goroutines,
		ok(last.goroutines <= r.warm.goroutines+soakGoroutineSlack))
	fmt.Fprintf(&w, "| p99 scan-to-relay, first vs last %v (bucket upper bound) | +20%% | ≤ %s s (%d scans) | ≤ %s s (%d scans) | %s |\n",
		r.compare, fmtBound(r.p99First), r.nFirst, fmtBound(r.p99Last), r.nLast, ok(r.p99Last <= r.p99First*(1+soakP99Growth)))
	fmt.Fprintf(&w, "| records in PostgreSQL vs the store | equal (less the stop event, logged after sync ends) | | %d vs %d (unsent: %v) | %s |\n",
		r.pgRecords, r.storeEvents, r.unsent, ok(r.pgRecords+len(r.unsent) == r.storeEvents))
	exit := "exit 0"
	if r.exitErr != nil {
		exit = r.exitErr.Error()
	}
	fmt.Fprintf(&w, "| SIGTERM | clean exit within 30 s | | %s after %v | %s |\n\n", exit, r.stopTime.Round(time.Millisecond), ok(r.exitErr == nil))
	for _, f := range r.failures {
		fmt.Fprintf(&w, "- FAIL: %s\n", f)
	}
	if len(r.failures) > 0 {
		w.WriteString("\n")
	}
	w.WriteString("Why these limits: RSS is compared after a warm-up (heap, bbolt mmap, broker session and connection pools at " +
		"working size). The anonymous part (heap, stacks) must stay within the larger of +20% and +8 MiB: 8 MiB " +
		"covers garbage-collector timing at this heap size, while a leak of 256 bytes per scan would exceed it over " +
		"36,000 scans. `process_resident_memory_bytes` also counts the store's mmapped database pages, and the access " +
		"log grows by design with every scan (store.max_events is 1,000,000), so its limit adds the store file's growth. " +
		"Goroutines may differ by a few (HTTP connections, in-flight MQTT acks), not grow with scans. ")
	w.WriteString("The p99 comes from bucket deltas of `wicket_scan_to_relay_seconds` (only allowed scans open the relay, " +
		"2 a second) over the first and the last windows after warm-up, taken together so the p99 rests on hundreds of " +
		"scans. The histogram's buckets (1, 2.5, 5, 10, 25, 50, 100, 250, 500 ms, 1 s) are 2 to 2.5 times apart: the " +
		"p99 is known only as the upper bound of its bucket, so \"within +20%\" means the p99 stays in the same or a " +
		"lower bucket; a drift smaller than one bucket cannot be seen.\n\n")
	fmt.Fprintf(&w, "Totals: %d codes fed in %v (worst feeder delay %v), %.0f decisions (%.0f allowed), %d events in the store, "+
		"%d records in PostgreSQL, outbox drained in %v after feeding stopped.\n\n",
		r.final.fed, r.feedTime.Round(time.Second), r.maxLag.Round(time.Millisecond), r.final.decisions, r.final.allowed,
		r.storeEvents, r.pgRecords, r.drainTime.Round(time.Second))
	var keys []string
	for k := range r.types {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w.WriteString("Events in the store by type (and reason): ")
	for i, k := range keys {
		if i > 0 {
			w.WriteString(", ")
		}
		fmt.Fprintf(&w, "`%s` %d", k, r.types[k])
	}
	w.WriteString(".\n\n")

	w.WriteString("## Samples (every minute)\n\n")
	w.WriteString("p50 and p99 are of the allowed scans' scan-to-relay time in that minute, as bucket upper bounds.\n\n")
	w.WriteString("| elapsed | scans fed | decisions | RSS MiB | anon MiB | file MiB | store MiB | goroutines | outbox | allowed scans | p50 ≤ s | p99 ≤ s |\n")
	w.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	prev := s0
	row := func(s soakSample) {
		p50, _ := quantileBound(&prev, &s, 0.5)
		p99, n := quantileBound(&prev, &s, 0.99)
		fmt.Fprintf(&w, "| %s | %d | %.0f | %.1f | %.1f | %.1f | %.1f | %.0f | %.0f | %d | %s | %s |\n",
			s.elapsed.Round(time.Second), s.fed, s.decisions, s.rss/(1<<20), mib(s.rssAnon), mib(s.rssFile),
			float64(s.dbSize)/(1<<20), s.goroutines, s.outbox, n, fmtBound(p50), fmtBound(p99))
		prev = s
	}
	row(s0)
	for i, s := range r.samples[1:] {
		if (i+1)%6 == 0 || i == len(r.samples)-2 {
			row(s)
		}
	}
	w.WriteString("\n## Logs\n\n")
	r.logs.mu.Lock()
	var lv []string
	for k, n := range r.logs.levels {
		lv = append(lv, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(lv)
	fmt.Fprintf(&w, "wicketd log lines by level: %s.", strings.Join(lv, ", "))
	var msgs []string
	for k, n := range r.logs.msgs {
		msgs = append(msgs, fmt.Sprintf("`%s` ×%d", k, n))
	}
	slices.Sort(msgs)
	r.logs.mu.Unlock()
	if len(msgs) > 0 {
		fmt.Fprintf(&w, " Warnings and errors: %s.", strings.Join(msgs, ", "))
	}
	if r.collLog != "" {
		fmt.Fprintf(&w, "\n\nCollector warnings:\n\n```\n%s```\n", r.collLog)
	} else {
		w.WriteString(" The collector logged no warnings.\n")
	}
	return w.String()
}
