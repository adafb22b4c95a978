// Package fleetsim simulates a fleet on one machine: N gates, each with
// its own bbolt store, trust Applier and MQTT session, one real broker
// (Mosquitto, or a three-node NATS cluster with WICKET_FLEET_BROKER=nats),
// one real collector writing to PostgreSQL. It measures how long an
// override takes to reach the gates, how many records per second one
// collector stores, and what a broker outage (a node kill on the
// cluster) and a whole-broker restart storm cost, counting records lost
// or doubled. Run it with `make fleet-sim`; the ordinary test run runs it
// small (5 gates, Mosquitto) as an integration test of gates, broker,
// collector and PostgreSQL together.
package fleetsim

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"wicket/decoder"
	"wicket/sync/collector"
	"wicket/sync/mqttconn"
	"wicket/sync/mqttsync"
	"wicket/sync/store"
	"wicket/sync/wire"
	"wicket/sync/wire/wiretest"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

type simGate struct {
	id   string
	st   *store.Store
	sync *mqttsync.Sync

	mu      sync.Mutex
	reached map[uint64]time.Time // when each status version was applied
	// bytes counts what the gate's connections carried, both ways.
	bytes atomic.Int64
	// received is when each delta version first reached the gate's MQTT
	// client (paho handed it to the sync's handler).
	received map[uint64]time.Time
}

func (g *simGate) at(version uint64) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.reached[version]
	return t, ok
}

// receivedAt is when version's delta reached the gate's client, zero if
// it was not seen (a gate that got it only through a snapshot).
func (g *simGate) receivedAt(version uint64) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.received[version]
}

// stamp wraps a message handler of the gate's client: it notes when each
// delta first arrives, then hands the message on.
func (g *simGate) stamp(h mqtt.MessageHandler) mqtt.MessageHandler {
	prefix := wire.Topics{Fleet: "sim"}.AllDeltas()
	prefix = prefix[:len(prefix)-1]
	return func(c mqtt.Client, m mqtt.Message) {
		if rest, ok := strings.CutPrefix(m.Topic(), prefix); ok {
			if v, err := strconv.ParseUint(rest, 10, 64); err == nil {
				now := time.Now()
				g.mu.Lock()
				if _, seen := g.received[v]; !seen {
					g.received[v] = now
				}
				g.mu.Unlock()
			}
		}
		h(c, m)
	}
}

// countingConn is a gate's connection, counting its bytes both ways.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	k, err := c.Conn.Read(b)
	c.n.Add(int64(k))
	return k, err
}

func (c countingConn) Write(b []byte) (int, error) {
	k, err := c.Conn.Write(b)
	c.n.Add(int64(k))
	return k, err
}

// client is paho for the gate: its connections counted, every
// message handler wrapped in stamp.
func (g *simGate) client(o *mqtt.ClientOptions) mqttsync.Client {
	open := o.CustomOpenConnectionFn
	o.SetCustomOpenConnectionFn(func(u *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
		c, err := open(u, o)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, n: &g.bytes}, nil
	})
	o.SetDefaultPublishHandler(g.stamp(o.DefaultPublishHandler))
	return stampClient{Client: mqtt.NewClient(o), g: g}
}

// stampClient is paho with every subscription's handler wrapped in
// simGate.stamp.
type stampClient struct {
	mqtt.Client
	g *simGate
}

func (c stampClient) Subscribe(topic string, qos byte, h mqtt.MessageHandler) mqtt.Token {
	return c.Client.Subscribe(topic, qos, c.g.stamp(h))
}

// newDB makes a fresh database for the run and returns a pool on it.
func newDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	admin := os.Getenv("WICKET_TEST_PG")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("PostgreSQL at %s (set WICKET_TEST_PG): %v", admin, err)
	}
	name := fmt.Sprintf("wicket_fleetsim_%d", rand.Uint32())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		conn.Close(context.Background())
	})
	cfg, err := pgxpool.ParseConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Database = name
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func publish(t *testing.T, broker string, topic string, payload []byte) {
	t.Helper()
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("fleetsim-pub-%d", rand.Uint32())))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(100)
	if tok := cl.Publish(topic, 1, true, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
}

func signBatch(t *testing.T, f *verifiertest.Fixture, version, base uint64) []byte {
	t.Helper()
	doc, err := verifier.SignBatch(f.Root, verifier.Batch{Version: version, Base: base, IssuedAt: verifiertest.Epoch,
		Entries: []verifier.Entry{{Op: verifier.OpColour, Key: fmt.Appendf(nil, "subject-%08d", version), Time: verifiertest.Epoch.Unix(),
			Expires: verifiertest.Epoch.Unix() + 86400, Colour: decoder.ColourRed}}})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// percentile returns the time by which frac of n gates had the version.
func percentile(arrivals []time.Duration, n int, frac float64) time.Duration {
	slices.Sort(arrivals)
	k := int(float64(n)*frac+0.999999) - 1
	if k >= len(arrivals) {
		return -1
	}
	return arrivals[k]
}

func TestFleetSim(t *testing.T) {
	n, perGate, rounds := 5, 20, 1
	if os.Getenv("WICKET_FLEET_SIM") != "" {
		n = envInt("WICKET_FLEET_GATES", 500)
		perGate = envInt("WICKET_FLEET_RECORDS", 100)
		rounds = envInt("WICKET_FLEET_ROUNDS", 5)
	}
	kind := os.Getenv("WICKET_FLEET_BROKER")
	if kind == "" {
		kind = brokerMosquitto
	}
	// stormWait bounds the wait for every gate after a restart storm.
	stormWait := time.Duration(envInt("WICKET_FLEET_STORM_WAIT", 600)) * time.Second
	quiet := slog.New(slog.DiscardHandler)
	broker := startFleetBroker(t, kind)
	f := verifiertest.New(t)
	topics := wire.Topics{Fleet: "sim"}
	broker.publish(t, map[string][]byte{topics.KeySet(): f.KeySetDoc, topics.Snapshot(): signBatch(t, f, 1, 0)})

	pool := newDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := collector.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	ids := gateIDs(n)
	roster := wiretest.Roster(t, f.Root, 1, ids...)
	broker.publish(t, map[string][]byte{topics.Roster(): roster})
	// The collector reaches the broker through its own proxies, so the
	// collector-kill scenario can cut its connections as a dying process
	// would; its replacement takes the same client id and resumes its
	// session.
	var wg sync.WaitGroup
	var cols []*simCollector
	startCollector := func() *simCollector {
		col, err := collector.New(collector.Config{Brokers: broker.collectorURLs(), Fleet: "sim", ClientID: "fleetsim-collector", Group: broker.group(),
			ID: wiretest.CollectorID, Key: wiretest.CollectorKey, Roots: f.Roots(), Roster: roster},
			collector.NewWriter(pool, quiet), quiet)
		if err != nil {
			t.Fatal(err)
		}
		cctx, ccancel := context.WithCancel(ctx)
		c := &simCollector{col: col, cancel: ccancel, done: make(chan struct{})}
		cols = append(cols, c)
		wg.Go(func() { defer close(c.done); col.Run(cctx) })
		return c
	}
	col := startCollector()

	// Every gate starts with perGate records in its outbox, committed
	// before it connects, so the collector meets the whole backlog at once.
	// A fleet over gatesPerProc gates runs in worker processes
	// (fleet_test.go: file descriptors).
	setupStart := time.Now()
	procs := envInt("WICKET_FLEET_PROCS", (n+gatesPerProc-1)/gatesPerProc)
	var fl fleet
	if procs > 1 {
		fl = startRemoteFleet(t, n, procs, perGate, broker.gateURLs())
	} else {
		urls := broker.gateURLs()
		fl = newLocalFleet(setupGates(t, f, func(i int, id string) mqttconn.Conn { return gateConnFor(urls, i, "wicket-sim-"+id) }, ids, 0, perGate, storeDir(t)))
	}
	defer fl.stop()
	setupTook := time.Since(setupStart)
	t.Logf("%d gates set up in %d process(es) (store, %d records each, trust, sync) in %v", n, procs, perGate, setupTook.Round(time.Millisecond))
	total := n * perGate
	started := time.Now()
	// Each gate connects after a random delay within the spread, as
	// gates powered up across a city would, not all in the same
	// millisecond.
	spread := time.Duration(envInt("WICKET_FLEET_CONNECT_SPREAD_MS", 2*n)) * time.Millisecond
	fl.run(spread)
	waitAll := func(version uint64, timeout time.Duration, t0 time.Time) []time.Duration {
		at, recv, err := fl.arrivals(version, timeout)
		if err != nil {
			t.Fatalf("%v\n%s", err, broker.diagnose())
		}
		arrivals := make([]time.Duration, len(at))
		var received, lag []time.Duration
		for i, a := range at {
			arrivals[i] = a.Sub(t0)
			if !recv[i].IsZero() {
				received = append(received, recv[i].Sub(t0))
				lag = append(lag, a.Sub(recv[i]))
			}
		}
		if len(received) > 0 {
			t.Logf("version %d: %d of %d gates got it as a delta; received by 50/99%% at %v/%v, applied by 50/99%% at %v/%v; received to applied per gate: median %v, p99 %v",
				version, len(received), len(at), percentile(received, len(received), 0.5).Round(time.Millisecond), percentile(received, len(received), 0.99).Round(time.Millisecond),
				percentile(arrivals, len(at), 0.5).Round(time.Millisecond), percentile(arrivals, len(at), 0.99).Round(time.Millisecond),
				percentile(lag, len(lag), 0.5).Round(time.Microsecond), percentile(lag, len(lag), 0.99).Round(time.Microsecond))
		}
		return arrivals
	}

	// Collector throughput: the backlog of every gate into PostgreSQL.
	var stored int
	nextProgress := time.Now().Add(time.Minute)
	if !within(10*time.Minute-time.Since(started), 100*time.Millisecond, func() bool {
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM wicket_records WHERE venue = 'SIM'").Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(nextProgress) {
			t.Logf("backlog: %d of %d records stored %v after the start", stored, total, time.Since(started).Round(time.Second))
			nextProgress = nextProgress.Add(time.Minute)
		}
		return stored >= total
	}) {
		t.Fatalf("timed out waiting for the backlog within 10 minutes of the start: %d of %d records stored; %s\n%s", stored, total, fl.summary(), broker.diagnose())
	}
	var writeSpan float64
	if err := pool.QueryRow(ctx, "SELECT extract(epoch FROM max(received_at) - min(received_at)) FROM wicket_records WHERE venue = 'SIM'").Scan(&writeSpan); err != nil {
		t.Fatal(err)
	}
	flushed := time.Since(started)
	waitAll(1, 5*time.Minute, started)
	t.Logf("%d gates connected, at snapshot 1, backlog of %d records stored, after %v", n, total, flushed.Round(time.Millisecond))

	// Override propagation: publish a delta, time its arrival at each gate.
	// Arrival times are taken as each gate's store reports the version, so
	// they are upper bounds.
	var p99s, p100s []time.Duration
	if err := fl.profile(true); err != nil {
		t.Fatal(err)
	}
	brokerCPU, roundsStart := broker.cpu(), time.Now()
	attemptsBefore, _ := fl.counts()
	for r := range rounds {
		version := uint64(2 + r)
		doc := signBatch(t, f, version, version-1)
		t0 := time.Now()
		broker.publish(t, map[string][]byte{topics.Delta(version): doc})
		arr := waitAll(version, 2*time.Minute, t0)
		p99s = append(p99s, percentile(arr, n, 0.99))
		p100s = append(p100s, percentile(arr, n, 1))
	}
	if err := fl.profile(false); err != nil {
		t.Fatal(err)
	}
	attemptsAfter, _ := fl.counts()
	t.Logf("override rounds: %v, broker processes used %v of CPU, %d connection attempts", time.Since(roundsStart).Round(time.Millisecond),
		broker.cpu()-brokerCPU, attemptsAfter-attemptsBefore)
	slices.Sort(p99s)
	slices.Sort(p100s)

	outboxesEmpty := func() {
		if err := fl.drained(time.Minute); err != nil {
			t.Fatalf("a minute after PostgreSQL had every record: %v\n%s", err, broker.diagnose())
		}
	}
	outboxesEmpty()
	t.Logf("override rounds done (to 99%%: %v; to 100%%: %v): %s", p99s, p100s, fl.summary())
	if os.Getenv("WICKET_FLEET_OVERRIDE_ONLY") != "" {
		return
	}
	var distinct int
	pool.QueryRow(ctx, "SELECT count(DISTINCT (gate, seq)) FROM wicket_records WHERE venue = 'SIM'").Scan(&distinct)
	if distinct != total || stored != total {
		t.Fatalf("PostgreSQL holds %d rows, %d distinct; want %d", stored, distinct, total)
	}

	countRows := func() (rows, distinct int) {
		if err := pool.QueryRow(ctx, "SELECT count(*), count(DISTINCT (gate, seq)) FROM wicket_records WHERE venue = 'SIM'").Scan(&rows, &distinct); err != nil {
			t.Fatal(err)
		}
		return rows, distinct
	}
	// appendAll commits k decisions at every gate and returns the
	// slowest commit.
	appendAll := func(k int) time.Duration {
		worst, err := fl.appendAll(k)
		if err != nil {
			t.Fatal(err)
		}
		return worst
	}
	storedAll := func(what string) {
		if !within(10*time.Minute, 100*time.Millisecond, func() bool {
			stored, distinct = countRows()
			return stored >= total
		}) {
			t.Fatalf("timed out after 10m0s waiting for %s: %d of %d rows; %s\n%s", what, stored, total, fl.summary(), broker.diagnose())
		}
		if distinct != total || stored != total {
			t.Fatalf("%s: PostgreSQL holds %d rows, %d distinct; want %d", what, stored, distinct, total)
		}
		outboxesEmpty()
	}

	// Broker outage while every gate commits decisions. On Mosquitto the
	// broker stops and comes back after the commits. On the cluster node
	// 1 is killed (SIGKILL): its gates move to the other nodes, and it is
	// restarted only once half of the new records are in PostgreSQL, so
	// records flow through the kill. Every record arrives once.
	extra := max(perGate/2, 1)
	before := total
	total += n * extra
	var outageRows string
	if broker.cluster == nil {
		broker.nodes[0].Stop()
		worst := appendAll(extra)
		outage := time.Now()
		broker.nodes[0].Start()
		storedAll("every record committed during the broker outage")
		outageRows = fmt.Sprintf(`| broker outage: records committed while it was down | %d (%d per gate); slowest commit %v |
| … all of them in PostgreSQL after it came back | %v, none twice |
`, n*extra, extra, worst.Round(time.Microsecond), time.Since(outage).Round(time.Millisecond))
	} else {
		broker.nodes[0].Kill()
		killed := time.Now()
		worst := appendAll(extra)
		var duringKill int
		poll(t, "half the records committed after the kill stored while node 1 is down", 10*time.Minute, 100*time.Millisecond, func() bool {
			rows, _ := countRows()
			duringKill = rows - before
			return duringKill >= n*extra/2
		})
		down := time.Since(killed)
		broker.nodes[0].Start()
		broker.cluster.WaitReady()
		storedAll("every record committed around the node kill")
		outageRows = fmt.Sprintf(`| node kill: records committed right after node 1 was killed (SIGKILL) | %d (%d per gate); slowest commit %v |
| … stored while node 1 was down (restarted %v after the kill) | %d |
| … all of them in PostgreSQL, from the kill | %v, none twice |
`, n*extra, extra, worst.Round(time.Microsecond), down.Round(time.Millisecond), duringKill, time.Since(killed).Round(time.Millisecond))
	}

	t.Logf("outage done: %s", fl.summary())

	// Collector kill: while every gate sends the records it committed,
	// the collector's connections are cut (no DISCONNECT, as when its
	// process dies) and it is stopped where it is, twice, each time
	// once a third more of the records are in PostgreSQL; a replacement
	// with the same client id starts a second later and resumes the
	// session. What the dead collector had received and not acknowledged
	// comes again; every record is stored once.
	before = total
	total += n * extra
	killed := time.Now()
	appendAll(extra)
	var kills []int
	for k := 1; k <= 2; k++ {
		var rows int
		poll(t, fmt.Sprintf("%d/3 of the records committed before collector kill %d stored", k, k), 10*time.Minute, 50*time.Millisecond, func() bool {
			rows, _ = countRows()
			return rows-before >= n*extra*k/3
		})
		broker.cutCollector()
		col.cancel()
		<-col.done
		kills = append(kills, rows-before)
		time.Sleep(time.Second)
		col = startCollector()
	}
	storedAll("every record committed around the collector kills")
	colRows := fmt.Sprintf(`| collector killed twice (connection cut, no DISCONNECT), each replaced 1 s later | records committed: %d (%d per gate); kills after %d and %d of them were stored |
| … all of them in PostgreSQL, from the commits | %v, none twice |
`, n*extra, extra, kills[0], kills[1], time.Since(killed).Round(time.Millisecond))

	// Restart storm: every node stops (SIGTERM), the gates commit records
	// meanwhile, every node starts again and the gates come back on their
	// own jittered reconnect backoff. Reconverged means every gate
	// connected with a delta published after the restart, and every
	// record in PostgreSQL and acknowledged. Bytes are what went between
	// the gates and the nodes (counted on the gates' connections) from
	// the stop.
	attempts0, bytes0 := fl.counts()
	broker.stopAll()
	appendAll(extra)
	total += n * extra
	restarted := time.Now()
	broker.startAll()
	stormVersion := uint64(2 + rounds)
	broker.publish(t, map[string][]byte{topics.Delta(stormVersion): signBatch(t, f, stormVersion, stormVersion-1)})
	if err := fl.settled(stormVersion, stormWait); err != nil {
		t.Fatalf("after the restart storm: %v\n%s", err, broker.diagnose())
	}
	gatesBack := time.Since(restarted)
	storedAll("every record committed during the restart storm")
	reconverged := time.Since(restarted)
	attempts1, bytes1 := fl.counts()
	stormBytes, stormConnects := bytes1-bytes0, attempts1-attempts0

	var cs collector.Stats
	for _, c := range cols {
		s := c.col.Stats()
		cs.Messages, cs.Dropped, cs.Duplicates = cs.Messages+s.Messages, cs.Dropped+s.Dropped, cs.Duplicates+s.Duplicates
		cs.Renewals += s.Renewals
	}
	fl.stop()
	cancel()
	wg.Wait()

	heading := "## Fleet simulation"
	if broker.cluster != nil {
		heading += " on the NATS cluster"
	}
	report := fmt.Sprintf(`%s

Generated by `+"`%s`"+` on %s (%d cores, load average %s at the end): %d gates in %d process(es),
each with its own bbolt store (on tmpfs: the simulation measures the fleet, not the disk), trust applier and MQTT session (paho, clean
session off), set up %d at a time per process in %v and connecting at random within %v, on %s, one collector at a time writing to PostgreSQL 15 on the same
machine. Gates connect to the broker directly on loopback and count the
bytes of their connections. An override is a signed delta published retained; its arrival
is the moment a gate's store holds it, counted from just before the
publisher connects. Gates resend unacknowledged records after 5 s here
(ack_timeout; 10 s by default), reconnect with jittered backoff from
100 ms to 2 s, subscribe to the trust tree again after 30 s without a
trust message on a resumed session (TrustSilence; off by default),
subscribe to the trust tree at QoS %d (sync.trust_qos), and publish
their status at random within %v of a trust change (StatusSpread).

| measure | result |
|---|---|
| override delta reaching 99%% of gates (median of %d rounds) | %v |
| override delta reaching 100%% of gates (median of %d rounds) | %v |
| backlog: records waiting in the gates' outboxes at connect | %d (%d per gate) |
| all of them in PostgreSQL, from the gates' first connect | %v |
| one collector's write rate (first to last insert) | **%.0f records/s** |
%s%s| restart storm: every node stopped (SIGTERM), records committed meanwhile | %d (%d per gate) |
| … every gate reconnected with a delta published after the restart | %v |
| … every record in PostgreSQL and acknowledged (reconverged) | %v |
| … bytes between gates and nodes from the stop to reconverged | %d (%d per gate); %d connection attempts |
| collector: messages, dropped on a full queue, duplicate records, silent subscriptions renewed | %d, %d, %d, %d |
| rows in PostgreSQL | %d, all distinct (gate, seq): 0 lost, 0 twice; every outbox empty |
`, heading, simCommand(kind, n), time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), loadAverage(), n, procs, setupParallel, setupTook.Round(time.Millisecond), spread,
		broker.describe(), trustQoS(), cmp.Or(statusSpread(), mqttsync.DefaultStatusSpread), rounds, p99s[len(p99s)/2].Round(time.Millisecond),
		rounds, p100s[len(p100s)/2].Round(time.Millisecond), n*perGate, perGate,
		flushed.Round(time.Millisecond), float64(n*perGate)/writeSpan, outageRows, colRows,
		n*extra, extra, gatesBack.Round(time.Millisecond), reconverged.Round(time.Millisecond), stormBytes, stormBytes/int64(n), stormConnects,
		cs.Messages, cs.Dropped, cs.Duplicates, cs.Renewals, stored)
	t.Log("\n" + report)
	if out := os.Getenv("WICKET_FLEET_REPORT"); out != "" {
		if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
