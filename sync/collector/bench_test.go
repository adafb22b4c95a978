package collector

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"wicket/internal/testkit"
	"wicket/sync/mqtttest"
	"wicket/sync/wire"
	"wicket/sync/wire/wiretest"
)

// BenchmarkCollectorRows stores 100-record batches into PostgreSQL with
// DefaultWorkers workers, as the collector does, alternating two
// variants in one run: "signed" takes each message through the
// collector's checks (envelope, roster, Ed25519 signature, body) and
// "unsigned" parses the plain JSON batch as before signatures. Each
// iteration runs one phase of each; both report rows per second, and
// verify_us the signature checks alone per batch.
//
//	go test -run '^$' -bench CollectorRows -benchtime 20x ./sync/collector/
func BenchmarkCollectorRows(b *testing.B) {
	const size, perPhase = 100, 100 // records per batch, batches per phase
	pool := testPool(b)
	w := NewWriter(pool, nil)
	c, err := New(withIdentity(b, Config{Broker: "tcp://127.0.0.1:1883", Fleet: "bench", ClientID: "bench"}), w, nil)
	if err != nil {
		b.Fatal(err)
	}
	gate := gateName("bench-rows")
	if err := c.installRoster(wiretest.Roster(b, testRoot, 1, gate)); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	topic := c.topics.Records(gate)
	var seq uint64
	var verifyNs atomic.Int64
	phase := func(signed bool) time.Duration {
		payloads := make([][]byte, perPhase)
		for i := range payloads {
			r := batch(gate, seqRange(seq+1, seq+size)...)
			seq += size
			if signed {
				payloads[i] = wiretest.Records("bench", gate, r)
			} else {
				payloads[i], _ = json.Marshal(r)
			}
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range DefaultWorkers {
			wg.Go(func() {
				for i := next.Add(1) - 1; i < perPhase; i = next.Add(1) - 1 {
					var r *wire.Records
					var err error
					if signed {
						t0 := time.Now()
						r, err = c.decode(inbound{topic: topic, payload: payloads[i]})
						verifyNs.Add(int64(time.Since(t0)))
					} else {
						r, err = wire.DecodeRecords(payloads[i])
					}
					if err == nil {
						var n int
						n, err = w.Write(ctx, r)
						if err == nil && n != size {
							b.Errorf("stored %d of %d", n, size)
						}
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	var signed, unsigned time.Duration
	rounds := 0
	for b.Loop() {
		signed += phase(true)
		unsigned += phase(false)
		rounds++
	}
	rows := float64(rounds * perPhase * size)
	b.ReportMetric(rows/signed.Seconds(), "signed_rows/s")
	b.ReportMetric(rows/unsigned.Seconds(), "unsigned_rows/s")
	b.ReportMetric(float64(verifyNs.Load())/float64(rounds*perPhase)/1e3, "verify_us/batch")
}

// BenchmarkCollectorDecode is the CPU cost of the checks alone, without
// PostgreSQL, per 100-record batch: the collector's decode of a signed
// message against the plain JSON decode, alternating in one run.
//
//	go test -run '^$' -bench CollectorDecode ./sync/collector/
func BenchmarkCollectorDecode(b *testing.B) {
	c, err := New(withIdentity(b, Config{Broker: "tcp://127.0.0.1:1883", Fleet: "bench", ClientID: "bench"}), &Writer{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	gate := "bench-gate"
	if err := c.installRoster(wiretest.Roster(b, testRoot, 1, gate)); err != nil {
		b.Fatal(err)
	}
	r := batch(gate, seqRange(1, 100)...)
	signedMsg := inbound{topic: c.topics.Records(gate), payload: wiretest.Records("bench", gate, r)}
	plain, _ := json.Marshal(r)
	var signed, unsigned time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		if _, err := c.decode(signedMsg); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := wire.DecodeRecords(plain); err != nil {
			b.Fatal(err)
		}
		signed += t1.Sub(t0)
		unsigned += time.Since(t1)
		n++
	}
	b.ReportMetric(float64(signed.Microseconds())/float64(n), "signed_us/batch")
	b.ReportMetric(float64(unsigned.Microseconds())/float64(n), "unsigned_us/batch")
	b.ReportMetric(float64(len(signedMsg.payload)), "signed_bytes")
	b.ReportMetric(float64(len(plain)), "unsigned_bytes")
}

// benchRecords returns n records of gate from seq from on, timed from at
// one millisecond apart, each with its own voucher and subject hash and
// an alert in every 200, as a busy gate sends them.
func benchRecords(gate string, from uint64, n int, at time.Time) *wire.Records {
	r := batch(gate, seqRange(from, from+uint64(n)-1)...)
	for i := range r.Records {
		e := &r.Records[i]
		e.At = at.Add(time.Duration(e.Seq) * time.Millisecond)
		e.Voucher = fmt.Sprintf("%032x", sha256.Sum256([]byte(fmt.Sprint(gate, e.Seq, "v"))))[:32]
		e.Subject = fmt.Sprintf("%032x", sha256.Sum256([]byte(fmt.Sprint(gate, e.Seq, "s"))))[:32]
		e.Alert = e.Seq%200 == 0
		e.Attendant = false
		e.Warnings = nil
	}
	return r
}

// scaleCollectors are the numbers of collectors the scale benchmarks
// compare in one run.
var scaleCollectors = []int{1, 2, 4}

// writeVariant is a way of storing that the scale benchmarks compare.
type writeVariant struct {
	name string
	// upsert stores every batch with upsertSQL, as before COPY.
	upsert bool
	// perWrite is how many 100-record batches go into one transaction.
	perWrite int
}

// writeVariants: the INSERT ... ON CONFLICT of before, COPY of one
// batch a transaction, and COPY of MaxMessagesPerWrite batches.
var writeVariants = []writeVariant{
	{"upsert", true, 1},
	{"copy", false, 1},
	{fmt.Sprintf("copy%d", MaxMessagesPerWrite), false, MaxMessagesPerWrite},
}

// loadAverage is the machine's 1-minute load average (0 where unknown).
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	fmt.Sscan(string(data), &l)
	return l
}

// procCPU is the CPU time (user and system) used so far by the processes
// for which match, given the process's name and parent pid, holds, and
// of those only the ones whose pid each of pids accepts.
func procCPU(match func(comm string, ppid int) bool, pids ...func(int) bool) time.Duration {
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var cpu time.Duration
	for _, f := range dirs {
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		if slices.ContainsFunc(pids, func(accept func(int) bool) bool { return !accept(pid) }) {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			continue // exited
		}
		if st, ok := testkit.ParseProcStat(data); ok && match(st.Comm, st.PPID) {
			cpu += st.CPU
		}
	}
	return cpu
}

// cpuSample is the CPU time used so far by every PostgreSQL process of
// the machine (pg: the server is the machine's, so that includes the
// work of its other clients), by the server processes of the
// benchmark's own connections only (backends: without the WAL writer,
// checkpointer and background writer), by this process (collectors,
// publishers) and by its child brokers.
type cpuSample struct{ pg, backends, self, broker time.Duration }

func sampleCPU(own *backendPIDs) cpuSample {
	self := os.Getpid()
	t0 := ownCPU()
	s := cpuSample{
		pg:       procCPU(func(comm string, _ int) bool { return comm == "postgres" }),
		backends: own.cpu(),
		self:     t0 - sampling,
		broker:   procCPU(func(comm string, ppid int) bool { return ppid == self && comm == "mosquitto" }),
	}
	sampling += ownCPU() - t0
	return s
}

// sampling is the CPU the test process spent in sampleCPU (walking
// /proc, some 14 ms a sample), which the self of a sample leaves out:
// the difference of two samples is the test process's work between them.
var sampling time.Duration

// backendPIDs are the process ids of the server processes of the
// connections of pools set up with track.
type backendPIDs struct {
	mu   sync.Mutex
	pids map[int]bool
}

// track records the server process of each connection cfg's pool makes.
func (b *backendPIDs) track(cfg *pgxpool.Config) {
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.pids == nil {
			b.pids = map[int]bool{}
		}
		b.pids[int(conn.PgConn().PID())] = true
		return nil
	}
}

// cpu is the CPU time the tracked server processes used so far (those
// that exited no longer count).
func (b *backendPIDs) cpu() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return procCPU(func(comm string, _ int) bool { return comm == "postgres" }, func(pid int) bool { return b.pids[pid] })
}

// ownCPU is this process's CPU time so far.
func ownCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (c cpuSample) sub(o cpuSample) cpuSample {
	return cpuSample{c.pg - o.pg, c.backends - o.backends, c.self - o.self, c.broker - o.broker}
}

func (c cpuSample) add(o cpuSample) cpuSample {
	return cpuSample{c.pg + o.pg, c.backends + o.backends, c.self + o.self, c.broker + o.broker}
}

// bytesPerRow is the size on disk of wicket_records, every partition with
// its indexes and TOAST, over its rows.
func bytesPerRow(tb testing.TB, pool *pgxpool.Pool) float64 {
	tb.Helper()
	var size, rows float64
	err := pool.QueryRow(context.Background(),
		"SELECT (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('wicket_records')), (SELECT count(*) FROM wicket_records)").Scan(&size, &rows)
	if err != nil {
		tb.Fatal(err)
	}
	return size / rows
}

// scaleResult is what the phases of one variant and number of
// collectors took.
type scaleResult struct {
	took time.Duration
	cpu  cpuSample
}

type scaleKey struct {
	variant string
	n       int
}

// scaleMetrics reports, for each variant and number of collectors,
// rows/s and the CPU seconds per 100,000 rows of PostgreSQL's processes
// (pg, and backends: those of the benchmark's connections), of the
// benchmark's process (go: the collectors, and in the end to
// end benchmark the publishers) and of its broker; then the bytes per
// row and the load average around the run.
func scaleMetrics(b *testing.B, pool *pgxpool.Pool, rows int, res map[scaleKey]scaleResult, variants []writeVariant, load0 float64) {
	per100k := func(d time.Duration) float64 { return d.Seconds() / float64(rows) * 1e5 }
	for _, v := range variants {
		for _, n := range scaleCollectors {
			r := res[scaleKey{v.name, n}]
			suffix := fmt.Sprintf("_%s_%dc", v.name, n)
			b.ReportMetric(float64(rows)/r.took.Seconds(), "rows/s"+suffix)
			b.ReportMetric(per100k(r.cpu.pg), "pg_cpu_s/100k"+suffix)
			b.ReportMetric(per100k(r.cpu.backends), "pgbackends_cpu_s/100k"+suffix)
			b.ReportMetric(per100k(r.cpu.self), "go_cpu_s/100k"+suffix)
			if r.cpu.broker > 0 {
				b.ReportMetric(per100k(r.cpu.broker), "broker_cpu_s/100k"+suffix)
			}
		}
	}
	b.ReportMetric(bytesPerRow(b, pool), "bytes/row")
	b.ReportMetric(load0, "loadavg_start")
	b.ReportMetric(loadAverage(), "loadavg_end")
}

// scalePhase is one phase of a scale benchmark's iteration.
type scalePhase struct {
	v writeVariant
	n int
}

// scalePhases are the phases of one iteration: every number of
// collectors for each variant.
func scalePhases() []scalePhase {
	var ps []scalePhase
	for _, v := range writeVariants {
		for _, n := range scaleCollectors {
			ps = append(ps, scalePhase{v, n})
		}
	}
	return ps
}

// BenchmarkWriterScale is the writer stage alone: 1, 2 and 4 collectors,
// each with its own pool and DefaultWorkers workers as the collector
// has, store decoded 100-record batches of 20 gates into a fresh
// partitioned database, each worker perWrite batches a WriteBatches, for
// each of writeVariants, alternating phase by phase (each iteration runs
// one phase of each variant and number of collectors). It reports rows/s
// and CPU per 100,000 rows (scaleMetrics), the bytes per row on disk and
// the load average.
//
//	go test -run '^$' -bench WriterScale -benchtime 3x ./sync/collector/
func BenchmarkWriterScale(b *testing.B) {
	const gates, size = 20, 100
	perGate := scaleBatches(b) // a phase: 20,000 rows by default
	dbURL := freshDatabase(b)
	admin := openPool(b, dbURL)
	if err := Migrate(context.Background(), admin); err != nil {
		b.Fatal(err)
	}
	load0 := loadAverage()
	var own backendPIDs
	pools := make([]*pgxpool.Pool, slices.Max(scaleCollectors))
	for i := range pools {
		cfg, err := pgxpool.ParseConfig(dbURL)
		if err != nil {
			b.Fatal(err)
		}
		cfg.MaxConns = DefaultWorkers
		own.track(cfg)
		if pools[i], err = pgxpool.NewWithConfig(context.Background(), cfg); err != nil {
			b.Fatal(err)
		}
		defer pools[i].Close()
	}
	now := time.Now().UTC()
	seq := uint64(0)
	res := map[scaleKey]scaleResult{}
	for b.Loop() {
		for _, p := range scalePhases() {
			v, n := p.v, p.n
			var batches []*wire.Records
			for g := range gates {
				for k := range perGate {
					batches = append(batches, benchRecords(fmt.Sprintf("scale-%d", g), seq+uint64(k*size)+1, size, now))
				}
			}
			seq += uint64(perGate * size)
			var next atomic.Int64
			var wg sync.WaitGroup
			cpu0, start := sampleCPU(&own), time.Now()
			for c := range n {
				w := NewWriter(pools[c], nil)
				w.upsertOnly = v.upsert
				for range DefaultWorkers {
					wg.Go(func() {
						for {
							i := next.Add(int64(v.perWrite)) - int64(v.perWrite)
							if i >= int64(len(batches)) {
								return
							}
							rs := batches[i:min(i+int64(v.perWrite), int64(len(batches)))]
							if got, err := w.WriteBatches(context.Background(), rs); err != nil || got != len(rs)*size {
								b.Errorf("WriteBatches = %d, %v; want %d, nil", got, err, len(rs)*size)
								return
							}
						}
					})
				}
			}
			wg.Wait()
			r := res[scaleKey{v.name, n}]
			r.took += time.Since(start)
			r.cpu = r.cpu.add(sampleCPU(&own).sub(cpu0))
			res[scaleKey{v.name, n}] = r
		}
	}
	scaleMetrics(b, admin, b.N*gates*perGate*size, res, writeVariants, load0)
}

// subscribedClient signals when the collector's records subscription is
// in place.
type subscribedClient struct {
	Client
	filter string
	done   chan struct{}
}

func (s *subscribedClient) Subscribe(topic string, qos byte, cb mqtt.MessageHandler) mqtt.Token {
	tok := s.Client.Subscribe(topic, qos, cb)
	if topic == s.filter {
		go func() {
			if tok.Wait(); tok.Error() == nil {
				s.done <- struct{}{}
			}
		}()
	}
	return tok
}

// BenchmarkCollectorScale is the whole path: signed 100-record batches
// of 20 gates published through a real Mosquitto of the benchmark's own
// (QoS 1, from 4 publishing clients) to 1, 2 and 4 collectors of one
// shared-subscription group, which check, store and ack them into a
// fresh partitioned database. Each iteration runs one phase of each of
// writeVariants and number of collectors (new collectors every phase); a
// phase is timed from the first publish to the last record stored. It
// reports rows/s and CPU per 100,000 rows (scaleMetrics; go is the
// collectors and the publishers, broker the Mosquitto), the bytes per
// row on disk and the load average. The environment may set the phase's
// size (WICKET_SCALE_BATCHES, scaleBatches), the collectors' Workers
// (WICKET_SCALE_WORKERS) and the broker's in-flight window
// (WICKET_SCALE_INFLIGHT), and WICKET_SCALE_TRACE=1 logs each phase's
// writes per collector and what PostgreSQL waited for (run with -v:
// the log of a benchmark is cut short otherwise).
//
//	go test -run '^$' -bench CollectorScale -benchtime 3x ./sync/collector/
func BenchmarkCollectorScale(b *testing.B) {
	const gates, size, publishers = 20, 100, 4
	perGate := scaleBatches(b)
	tracing := os.Getenv("WICKET_SCALE_TRACE") != ""
	dbURL := freshDatabase(b)
	admin := openPool(b, dbURL)
	if err := Migrate(context.Background(), admin); err != nil {
		b.Fatal(err)
	}
	broker := mqtttest.StartMosquitto(b, scaleBroker(b)...)
	workers := scaleWorkers(b)
	const fleet = "scale"
	topics := wire.Topics{Fleet: fleet}
	var names []string
	for g := range gates {
		names = append(names, fmt.Sprintf("scale-%d", g))
	}
	roster := wiretest.Roster(b, testRoot, 1, names...)
	var clients []mqtt.Client
	for p := range publishers {
		o := mqtt.NewClientOptions().AddBroker(broker.URL()).SetClientID(fmt.Sprintf("scale-publisher-%d", p)).
			SetCleanSession(true).SetAutoReconnect(false).SetProtocolVersion(4)
		c := mqtt.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
			b.Fatalf("publisher connect: %v", tok.Error())
		}
		defer c.Disconnect(100)
		clients = append(clients, c)
	}
	load0 := loadAverage()
	now := time.Now().UTC()
	seq := uint64(0)
	res := map[scaleKey]scaleResult{}
	var own backendPIDs
	phase := 0
	for b.Loop() {
		for _, phaseOf := range scalePhases() {
			v, n := phaseOf.v, phaseOf.n
			phase++
			type msg struct {
				topic   string
				payload []byte
			}
			var msgs []msg
			for _, gate := range names {
				for k := range perGate {
					r := benchRecords(gate, seq+uint64(k*size)+1, size, now)
					msgs = append(msgs, msg{topics.Records(gate), wiretest.Records(fleet, gate, r)})
				}
			}
			seq += uint64(perGate * size)
			ctx, cancel := context.WithCancel(context.Background())
			var running sync.WaitGroup
			var collectors []*Collector
			var pools []*pgxpool.Pool
			var timelines []*timeline
			for i := range n {
				cfg, err := pgxpool.ParseConfig(dbURL)
				if err != nil {
					b.Fatal(err)
				}
				cfg.MaxConns = int32(cmp.Or(workers, DefaultWorkers) + 1)
				own.track(cfg)
				pool, err := pgxpool.NewWithConfig(ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				pools = append(pools, pool)
				group := fmt.Sprintf("scale%d", phase)
				sc := &subscribedClient{filter: topics.SharedRecords(group), done: make(chan struct{}, 1)}
				w := NewWriter(pool, nil)
				w.upsertOnly = v.upsert
				c, err := New(withIdentity(b, Config{
					Broker: broker.URL(), Fleet: fleet, ClientID: fmt.Sprintf("scale-%d-%d", phase, i), Group: group, Roster: roster, Workers: workers,
					NewClient: func(o *mqtt.ClientOptions) Client { sc.Client = NewPahoClient(o); return sc },
				}), w, nil)
				if err != nil {
					b.Fatal(err)
				}
				c.perWrite = v.perWrite
				if tracing {
					tl := &timeline{}
					c.traced = tl.add
					timelines = append(timelines, tl)
				}
				running.Go(func() { c.Run(ctx) })
				select {
				case <-sc.done:
				case <-time.After(waitLimit):
					b.Fatal("collector did not subscribe")
				}
				collectors = append(collectors, c)
			}
			inserted := func() (sum uint64) {
				for _, c := range collectors {
					sum += c.Stats().Inserted
				}
				return sum
			}
			want := uint64(len(msgs) * size)
			cpu0, start := sampleCPU(&own), time.Now()
			var waits *waitSampler
			if tracing {
				waits = sampleWaits(admin)
			}
			var pub sync.WaitGroup
			for p, client := range clients {
				pub.Go(func() {
					var toks []mqtt.Token
					for i := p; i < len(msgs); i += publishers {
						toks = append(toks, client.Publish(msgs[i].topic, 1, false, msgs[i].payload))
					}
					for _, tok := range toks {
						if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
							b.Errorf("publish: %v", tok.Error())
							return
						}
					}
				})
			}
			deadline := time.Now().Add(10 * waitLimit)
			for inserted() < want && time.Now().Before(deadline) {
				time.Sleep(2 * time.Millisecond)
			}
			r := res[scaleKey{v.name, n}]
			took := time.Since(start)
			r.took += took
			r.cpu = r.cpu.add(sampleCPU(&own).sub(cpu0))
			res[scaleKey{v.name, n}] = r
			if tracing {
				b.Logf("phase %d %s, %d collectors: %v, %.0f rows/s; PostgreSQL waits %s", phase, v.name, n,
					took.Round(time.Millisecond), float64(want)/took.Seconds(), waits.stop())
				for i, tl := range timelines {
					b.Logf("  collector %d: %s", i, tl.summary(start))
				}
			}
			pub.Wait()
			if got := inserted(); got != want {
				b.Fatalf("%d collectors stored %d records of %d", n, got, want)
			}
			cancel()
			running.Wait()
			for _, p := range pools {
				p.Close()
			}
		}
	}
	scaleMetrics(b, admin, b.N*gates*perGate*size, res, writeVariants, load0)
}

// scaleBatches is the number of 100-record batches each of the scale
// benchmarks' 20 gates sends a phase: WICKET_SCALE_BATCHES, 10 (a phase
// of 20,000 rows) where unset. A larger phase measures a sustained rate,
// in which the fill and drain of the pipeline at the phase's ends weigh
// less.
func scaleBatches(tb testing.TB) int {
	s := os.Getenv("WICKET_SCALE_BATCHES")
	if s == "" {
		return 10
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1000 {
		tb.Fatalf("WICKET_SCALE_BATCHES=%q: want batches per gate, 1 to 1000", s)
	}
	return n
}

// timeline collects the writes of one collector during a phase.
type timeline struct {
	mu    sync.Mutex
	spans []writeSpan
}

func (t *timeline) add(s writeSpan) {
	t.mu.Lock()
	t.spans = append(t.spans, s)
	t.mu.Unlock()
}

// summary is the timeline in milliseconds from start: its first write
// and last commit, how many writes and rows a write, how long the
// writes took together (in COPY and commit, and waiting for the broker
// to answer the acks after), and how many ran at once on average.
func (t *timeline) summary(start time.Time) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.spans) == 0 {
		return "no writes"
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	first, last := t.spans[0].start, t.spans[0].committed
	var inWrite, inAck time.Duration
	rows := 0
	var sizes []string
	for _, s := range t.spans {
		first, last = minTime(first, s.start), maxTime(last, s.committed)
		inWrite += s.committed.Sub(s.start)
		inAck += s.acked.Sub(s.committed)
		rows += s.rows
		sizes = append(sizes, strconv.Itoa(s.messages))
	}
	return fmt.Sprintf("first write %.1f ms, last commit %.1f ms, %d writes (%.0f rows each; messages %s), in writes %.0f ms (%.1f at once), waiting for ack answers %.0f ms",
		ms(first.Sub(start)), ms(last.Sub(start)), len(t.spans), float64(rows)/float64(len(t.spans)), strings.Join(sizes, " "),
		ms(inWrite), float64(inWrite)/float64(last.Sub(first)), ms(inAck))
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// waitSampler counts what the active server processes of a database
// wait for (pg_stat_activity), sampled every 5 ms until stop.
type waitSampler struct {
	stopped chan struct{}
	done    chan struct{}
	counts  map[string]int
	samples int
}

func sampleWaits(pool *pgxpool.Pool) *waitSampler {
	w := &waitSampler{stopped: make(chan struct{}), done: make(chan struct{}), counts: map[string]int{}}
	go func() {
		defer close(w.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stopped:
				return
			case <-t.C:
			}
			rows, err := pool.Query(context.Background(), `SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'), count(*)
				FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid() GROUP BY 1`)
			if err != nil {
				return
			}
			for rows.Next() {
				var ev string
				var n int
				if rows.Scan(&ev, &n) == nil {
					w.counts[ev] += n
				}
			}
			rows.Close()
			w.samples++
		}
	}()
	return w
}

// stop ends the sampling and says, per wait, how many server processes
// were in it on average.
func (w *waitSampler) stop() string {
	close(w.stopped)
	<-w.done
	keys := slices.Sorted(maps.Keys(w.counts))
	slices.SortStableFunc(keys, func(a, b string) int { return w.counts[b] - w.counts[a] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, float64(w.counts[k])/float64(max(w.samples, 1))))
	}
	return fmt.Sprintf("(%d samples) %s", w.samples, strings.Join(parts, ", "))
}

// scaleWorkers is the Workers of each collector of BenchmarkCollectorScale:
// WICKET_SCALE_WORKERS, or 0 (DefaultWorkers) where unset.
func scaleWorkers(tb testing.TB) int {
	s := os.Getenv("WICKET_SCALE_WORKERS")
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxWorkers {
		tb.Fatalf("WICKET_SCALE_WORKERS=%q: want workers per collector, 1 to %d", s, MaxWorkers)
	}
	return n
}

// scaleBroker are the options of BenchmarkCollectorScale's Mosquitto:
// with WICKET_SCALE_INFLIGHT set, its max_inflight_messages (how many
// QoS 1 messages it sends a client before their PUBACKs; 20 where unset,
// Mosquitto's default).
func scaleBroker(tb testing.TB) []mqtttest.Option {
	s := os.Getenv("WICKET_SCALE_INFLIGHT")
	if s == "" {
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		tb.Fatalf("WICKET_SCALE_INFLIGHT=%q: want Mosquitto's max_inflight_messages, 1 to 65535", s)
	}
	conf := filepath.Join(tb.TempDir(), "mosquitto.conf")
	text := fmt.Sprintf("listener 1883\nallow_anonymous true\npersistence false\nmax_inflight_messages %d\n", n)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		tb.Fatal(err)
	}
	return []mqtttest.Option{mqtttest.ConfigFile(conf, nil)}
}
