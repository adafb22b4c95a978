package fleetsim

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"wicket/internal/testkit"
	"wicket/sync/collector"
	"wicket/sync/mqttconn"
	"wicket/sync/mqttsync"
	"wicket/sync/mqtttest"
	"wicket/sync/store"
	"wicket/sync/store/storetest"
	"wicket/sync/trust"
	"wicket/sync/wire"
	"wicket/sync/wire/wiretest"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// Timings of the network-fault test.
const (
	// nfEvery is the pace of the simulated decision loop: 200 events/s.
	nfEvery = 5 * time.Millisecond
	// nfCalm is each calm stretch measured for the latency baseline.
	nfCalm = 1500 * time.Millisecond
	// nfDown is how long the broker stays down in a restart.
	nfDown = 500 * time.Millisecond
	// nfRecover bounds the wait for PostgreSQL to hold every record
	// appended up to the end of a fault: generous, for a loaded machine.
	nfRecover = 30 * time.Second
	// nfAckTimeout: the gate resends unacknowledged batches after this.
	nfAckTimeout = time.Second
)

// nfGenerator appends decision events at a steady pace, as the decision
// loop does, and times each Append (the decision path's share of the
// store) into the calm or the fault sample.
type nfGenerator struct {
	t    *testing.T
	gate string
	st   *store.Store
	sync *mqttsync.Sync

	fault atomic.Bool // which sample the next timing goes to
	last  atomic.Uint64

	mu       sync.Mutex
	detail   map[uint64]string // what was appended, by seq
	calm     []time.Duration
	faulty   []time.Duration
	failures int
}

func (g *nfGenerator) run(ctx context.Context) {
	tick := time.NewTicker(nfEvery)
	defer tick.Stop()
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		detail := fmt.Sprintf("netfault-%d", i)
		ev := store.Event{Type: store.TypeDecision, At: time.Now(), Gate: g.gate, Venue: "NETFAULT", Allow: true, Reason: "ok", Detail: detail}
		fault := g.fault.Load()
		t0 := time.Now()
		seq, err := g.st.Append(&ev, 0)
		g.sync.Notify()
		d := time.Since(t0)
		if err != nil {
			g.mu.Lock()
			g.failures++
			g.mu.Unlock()
			g.t.Errorf("append: %v", err)
			continue
		}
		g.mu.Lock()
		g.detail[seq] = detail
		if fault {
			g.faulty = append(g.faulty, d)
		} else {
			g.calm = append(g.calm, d)
		}
		g.mu.Unlock()
		g.last.Store(seq)
	}
}

// quantile returns the q-quantile (nearest rank) of ds, sorting it.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	k := int(float64(len(ds))*q+0.999999) - 1
	return ds[min(max(k, 0), len(ds)-1)]
}

// storedThrough reports whether PostgreSQL holds every record of gate with
// seq 1..through (the primary key makes count = through mean all of them,
// once each).
func storedThrough(ctx context.Context, t *testing.T, pool *pgxpool.Pool, gate string, through uint64) bool {
	var n uint64
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM wicket_records WHERE gate = $1 AND seq <= $2", gate, int64(through)).Scan(&n); err != nil {
		t.Fatalf("count records: %v", err)
	}
	return n == through
}

// TestNetworkFaults runs one gate (bbolt store and MQTT sync) through a
// TCP proxy to a real Mosquitto, and a collector connected to the broker
// directly that writes into a real PostgreSQL. While the gate appends
// events at a steady 200/s the test restarts the broker without
// persistence, then with persistence while the proxy refuses and then
// stalls the gate's reconnects, cuts the gate's connection inside a
// PUBLISH (twice), and drops acks on their way to the gate so it resends
// batches the collector has stored. After each fault it waits until
// PostgreSQL holds every record appended so far; at the end, with the
// outbox drained, PostgreSQL must hold exactly the records appended, each
// once and unchanged, and the duplicate phase must have made the collector
// drop duplicates. It also compares how long an Append takes while the
// network misbehaves with the calm baseline: the decision path must not
// wait on the network.
//
// The broker runs with persistence throughout; a restart "without
// persistence" wipes its file while it is down, so it comes back empty.
func TestNetworkFaults(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	const gateID = "NF01"
	persistDir := t.TempDir()
	broker := mqtttest.StartMosquitto(t, mqtttest.Persistence(persistDir))
	proxy := mqtttest.StartProxy(t, broker.Addr())
	pool := newDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if err := collector.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	f := verifiertest.New(t)
	roster := wiretest.Roster(t, f.Root, 1, gateID)
	publish(t, broker.URL(), wire.Topics{Fleet: "nf"}.Roster(), roster)
	col, err := collector.New(collector.Config{Broker: broker.URL(), Fleet: "nf", ClientID: "netfault-collector",
		ID: wiretest.CollectorID, Key: wiretest.CollectorKey, Roots: f.Roots(), Roster: roster},
		collector.NewWriter(pool, quiet), quiet)
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { col.Run(ctx) })

	st := storetest.Open(t, store.Options{Logger: quiet}) // closed at cleanup, after the deferred stops: the sync uses it to the end
	v, _ := verifier.New(verifier.NewTrustedClock(f.Clock, time.Time{}), st, &f.Policy)
	tr := trust.New(f.Roots(), st, v, quiet)
	gs, err := mqttsync.New(mqttsync.Config{
		Conn:  mqttconn.Conn{Broker: proxy.URL(), ClientID: "wicket-nf-" + gateID, KeepAlive: 2 * time.Second},
		Fleet: "nf", Gate: gateID, AckTimeout: nfAckTimeout, StatusEvery: time.Hour,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond,
		Key: wiretest.GateKey, Roots: f.Roots(),
	}, st, tr, func() wire.Status { return wire.Status{Gate: gateID} }, quiet)
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { gs.Run(ctx) })

	gen := &nfGenerator{t: t, gate: gateID, st: st, sync: gs, detail: map[uint64]string{}}
	genCtx, stopGen := context.WithCancel(ctx)
	genDone := make(chan struct{})
	go func() { defer close(genDone); gen.run(genCtx) }()
	defer func() { stopGen(); <-genDone }()

	began := time.Now()
	eventually := func(what string, within time.Duration, cond func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		met := false
		defer func() {
			if !met {
				t.Logf("waiting for %s: gate %+v; collector %+v; proxy %+v\nbroker log:\n%s",
					what, gs.State(), col.Stats(), proxy.Stats(), broker.Log())
			}
		}()
		testkit.Eventually(t, what, within, cond)
		met = true
		return time.Since(start)
	}
	caughtUp := func(what string) time.Duration {
		t.Helper()
		through := gen.last.Load()
		return eventually(what+": every record appended so far in PostgreSQL", nfRecover,
			func() bool { return storedThrough(ctx, t, pool, gateID, through) })
	}

	// Calm: the gate connected, records flowing, the latency baseline.
	eventually("the gate to connect", 10*time.Second, func() bool { return gs.State().Connected })
	time.Sleep(nfCalm)
	caughtUp("calm start")

	type result struct {
		name              string
		took              time.Duration
		dups, resends     uint64
		connects, appends uint64
	}
	var results []result
	phase := func(name string, fault func()) {
		t.Helper()
		gen.fault.Store(true)
		start, c0, g0, seq0 := time.Now(), col.Stats(), gs.State(), gen.last.Load()
		fault()
		caughtUp(name)
		c1, g1 := col.Stats(), gs.State()
		results = append(results, result{name: name, took: time.Since(start), dups: c1.Duplicates - c0.Duplicates,
			resends: g1.Resends - g0.Resends, connects: g1.Attempts - g0.Attempts, appends: gen.last.Load() - seq0})
		gen.fault.Store(false)
	}

	phase("broker restart, no persistence", func() {
		broker.Stop()
		// The broker runs with persistence; wiping its file while it is down
		// makes it start empty: no sessions, no queued acks or records.
		entries, err := os.ReadDir(persistDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(persistDir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(nfDown)
		broker.Start()
	})
	phase("broker restart, persistence, stall", func() {
		// While the broker is down and for a while after it is back, the
		// proxy refuses the gate's reconnects; then it holds the next one
		// without a byte passing for 1.5 s: a path that accepts and hangs.
		proxy.Refuse(time.Hour)
		broker.Stop()
		time.Sleep(nfDown)
		broker.Start()
		refused := proxy.Stats().Refused
		eventually("a reconnect refused with the broker up", nfRecover, func() bool { return proxy.Stats().Refused > refused })
		stalled := proxy.Stats().Stalled
		proxy.Stall(time.Hour)
		proxy.Refuse(0)
		eventually("a stalled reconnect", 10*time.Second, func() bool { return proxy.Stats().Stalled > stalled })
		time.Sleep(1500 * time.Millisecond)
		proxy.Stall(0)
	})
	var cuts []mqtttest.Cut
	var reconnects []time.Duration // from a cut to the gate's next connect attempt
	for i := 1; i <= 2; i++ {
		phase(fmt.Sprintf("cut mid-publish #%d", i), func() {
			// A record batch here is a few hundred bytes: a cut 150 bytes on
			// almost always falls inside a PUBLISH. Try again if it did not.
			for attempt := 1; ; attempt++ {
				attempts := gs.State().Attempts
				select {
				case c := <-proxy.CutAfter(150):
					cuts = append(cuts, c)
				case <-time.After(nfRecover):
					t.Fatalf("no cut: 150 bytes did not pass the proxy in %v; gate %+v", nfRecover, gs.State())
				}
				reconnects = append(reconnects, eventually("the gate to reconnect after a cut", nfRecover,
					func() bool { return gs.State().Attempts > attempts }))
				if c := cuts[len(cuts)-1]; c.Mid && c.Packet == 3 {
					return
				}
				if attempt == 5 {
					t.Fatalf("5 cuts and none inside a PUBLISH: %+v", cuts)
				}
			}
		})
	}
	var dupPhase uint64
	phase("acks dropped: resent batches", func() {
		d0, r0 := col.Stats().Duplicates, gs.State().Resends
		proxy.DropPublishes(2)
		eventually("a resend of stored records", 15*time.Second, func() bool {
			return gs.State().Resends > r0 && col.Stats().Duplicates > d0
		})
		proxy.DropPublishes(0)
		dupPhase = col.Stats().Duplicates - d0
	})

	// Calm again, then stop appending and let the outbox drain.
	time.Sleep(nfCalm)
	stopGen()
	<-genDone
	total := gen.last.Load()
	drain := eventually("the outbox to drain", nfRecover, func() bool {
		s, err := st.Stats()
		return err == nil && s.Outbox == 0
	})

	// PostgreSQL holds exactly what was appended, each record once.
	rows, err := pool.Query(ctx, "SELECT gate, seq, detail FROM wicket_records")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]int{}
	var wrong []string
	for rows.Next() {
		var gate, detail string
		var seq int64
		if err := rows.Scan(&gate, &seq, &detail); err != nil {
			t.Fatal(err)
		}
		seen[uint64(seq)]++
		if want := gen.detail[uint64(seq)]; gate != gateID || detail != want {
			wrong = append(wrong, fmt.Sprintf("%s/%d=%q (want %s/%q)", gate, seq, detail, gateID, want))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var missing []uint64
	for seq := range gen.detail {
		if seen[seq] == 0 {
			missing = append(missing, seq)
		}
	}
	var twice []uint64
	for seq, n := range seen {
		if n > 1 {
			twice = append(twice, seq)
		}
	}
	slices.Sort(missing)
	if len(gen.detail) != int(total) || gen.failures > 0 {
		t.Errorf("%d events appended with seqs up to %d, %d appends failed", len(gen.detail), total, gen.failures)
	}
	if len(missing) > 0 || len(twice) > 0 || len(wrong) > 0 || len(seen) != len(gen.detail) {
		t.Errorf("PostgreSQL holds %d distinct records of %d appended: missing %v, stored more than once %v, not as appended %v",
			len(seen), len(gen.detail), missing[:min(len(missing), 20)], twice, wrong[:min(len(wrong), 20)])
	}
	gst, err := st.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if gst.Outbox != 0 || gst.Dropped != 0 {
		t.Errorf("gate outbox %d records, %d not queued; want 0 and 0", gst.Outbox, gst.Dropped)
	}
	cs, gsState, ps := col.Stats(), gs.State(), proxy.Stats()
	if dupPhase == 0 {
		t.Errorf("the duplicate phase made no duplicates (collector %+v)", cs)
	}
	if cs.Invalid != 0 {
		t.Errorf("collector refused %d messages: a cut must never deliver a partial batch", cs.Invalid)
	}

	// The decision path does not wait on the network.
	gen.mu.Lock()
	calm, faulty := gen.calm, gen.faulty
	gen.mu.Unlock()
	calm50, calm99, calmMax := quantile(calm, 0.5), quantile(calm, 0.99), quantile(calm, 1)
	f50, f99, fMax := quantile(faulty, 0.5), quantile(faulty, 0.99), quantile(faulty, 1)
	limit := 3*calm99 + 2*time.Millisecond
	for _, r := range results {
		t.Logf("%-32s %7v to recover, %4d appended, %d connect attempts, %d resends, %4d duplicates dropped",
			r.name, r.took.Round(time.Millisecond), r.appends, r.connects, r.resends, r.dups)
	}
	t.Logf("cuts by byte count: %+v; the gate's next connect attempt came after %v (keepalive 2 s, reconnect_min 50 ms)",
		cuts, reconnects)
	// A cut mid-publish ends the session at once: the gate must not sit
	// out the 10 s PUBACK wait on a connection that is gone.
	for _, d := range reconnects {
		if d > 5*time.Second {
			t.Errorf("after a cut mid-publish the gate reconnected only after %v", d)
		}
	}
	t.Logf("append latency calm:   n=%d p50=%v p99=%v max=%v", len(calm), calm50, calm99, calmMax)
	t.Logf("append latency faults: n=%d p50=%v p99=%v max=%v (limit p99 %v)", len(faulty), f50, f99, fMax, limit)
	t.Logf("%d records, all in PostgreSQL once; outbox drained %v after the last append; run %v",
		total, drain.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	t.Logf("gate: %+v", gsState)
	t.Logf("collector: %+v", cs)
	t.Logf("proxy: %+v", ps)
	if len(calm) < 100 || len(faulty) < 100 {
		t.Errorf("too few latency samples: %d calm, %d under faults", len(calm), len(faulty))
	}
	if f99 > limit {
		t.Errorf("append p99 under network faults %v; calm p99 %v: the decision path slows with the network", f99, calm99)
	}
}
