package collector

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5/pgxpool"

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

// scaleMetrics reports rows/s for each number of collectors, the bytes
// per row and the load average around the run.
func scaleMetrics(b *testing.B, pool *pgxpool.Pool, rows int, took map[int]time.Duration, load0 float64) {
	for _, n := range scaleCollectors {
		b.ReportMetric(float64(rows)/took[n].Seconds(), fmt.Sprintf("rows/s_%dcollectors", n))
	}
	b.ReportMetric(bytesPerRow(b, pool), "bytes/row")
	b.ReportMetric((load0+loadAverage())/2, "loadavg")
}

// BenchmarkWriterScale is the writer stage alone: 1, 2 and 4 collectors,
// each with its own pool and DefaultWorkers workers as the collector
// has, store decoded 100-record batches of 20 gates into a fresh
// partitioned database, alternating phase by phase (each iteration runs
// one phase of each). It reports rows/s per number of collectors, the
// bytes per row on disk and the load average.
//
//	go test -run '^$' -bench WriterScale -benchtime 3x ./sync/collector/
func BenchmarkWriterScale(b *testing.B) {
	const gates, perGate, size = 20, 10, 100 // a phase: 20,000 rows
	dbURL := freshDatabase(b)
	admin := openPool(b, dbURL)
	if err := Migrate(context.Background(), admin); err != nil {
		b.Fatal(err)
	}
	load0 := loadAverage()
	pools := make([]*pgxpool.Pool, slices.Max(scaleCollectors))
	for i := range pools {
		cfg, err := pgxpool.ParseConfig(dbURL)
		if err != nil {
			b.Fatal(err)
		}
		cfg.MaxConns = DefaultWorkers
		if pools[i], err = pgxpool.NewWithConfig(context.Background(), cfg); err != nil {
			b.Fatal(err)
		}
		defer pools[i].Close()
	}
	now := time.Now().UTC()
	seq := uint64(0)
	took := map[int]time.Duration{}
	for b.Loop() {
		for _, n := range scaleCollectors {
			var batches []*wire.Records
			for g := range gates {
				for k := range perGate {
					batches = append(batches, benchRecords(fmt.Sprintf("scale-%d", g), seq+uint64(k*size)+1, size, now))
				}
			}
			seq += perGate * size
			var next atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			for c := range n {
				w := NewWriter(pools[c], nil)
				for range DefaultWorkers {
					wg.Go(func() {
						for i := next.Add(1) - 1; i < int64(len(batches)); i = next.Add(1) - 1 {
							if got, err := w.Write(context.Background(), batches[i]); err != nil || got != size {
								b.Errorf("Write = %d, %v; want %d, nil", got, err, size)
								return
							}
						}
					})
				}
			}
			wg.Wait()
			took[n] += time.Since(start)
		}
	}
	scaleMetrics(b, admin, b.N*gates*perGate*size, took, load0)
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
// fresh partitioned database. Each iteration runs one phase of each
// number of collectors (new collectors every phase); a phase is timed
// from the first publish to the last record stored. It reports rows/s per
// number of collectors, the bytes per row on disk and the load average.
//
//	go test -run '^$' -bench CollectorScale -benchtime 3x ./sync/collector/
func BenchmarkCollectorScale(b *testing.B) {
	const gates, perGate, size, publishers = 20, 10, 100, 4
	dbURL := freshDatabase(b)
	admin := openPool(b, dbURL)
	if err := Migrate(context.Background(), admin); err != nil {
		b.Fatal(err)
	}
	broker := mqtttest.StartMosquitto(b)
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
	took := map[int]time.Duration{}
	phase := 0
	for b.Loop() {
		for _, n := range scaleCollectors {
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
			seq += perGate * size
			ctx, cancel := context.WithCancel(context.Background())
			var running sync.WaitGroup
			var collectors []*Collector
			var pools []*pgxpool.Pool
			for i := range n {
				cfg, err := pgxpool.ParseConfig(dbURL)
				if err != nil {
					b.Fatal(err)
				}
				cfg.MaxConns = DefaultWorkers + 1
				pool, err := pgxpool.NewWithConfig(ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				pools = append(pools, pool)
				group := fmt.Sprintf("scale%d", phase)
				sc := &subscribedClient{filter: topics.SharedRecords(group), done: make(chan struct{}, 1)}
				c, err := New(withIdentity(b, Config{
					Broker: broker.URL(), Fleet: fleet, ClientID: fmt.Sprintf("scale-%d-%d", phase, i), Group: group, Roster: roster,
					NewClient: func(o *mqtt.ClientOptions) Client { sc.Client = NewPahoClient(o); return sc },
				}), NewWriter(pool, nil), nil)
				if err != nil {
					b.Fatal(err)
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
			start := time.Now()
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
			took[n] += time.Since(start)
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
	scaleMetrics(b, admin, b.N*gates*perGate*size, took, load0)
}
