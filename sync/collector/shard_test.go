package collector

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"wicket/sync/mqtttest"
	"wicket/sync/wire"
	"wicket/sync/wire/wiretest"
)

// shardGates makes n gate ids for each of two slices (shards s mod 2).
func shardGates(t *testing.T, base string, n int) [2][]string {
	t.Helper()
	var gates [2][]string
	for len(gates[0]) < n || len(gates[1]) < n {
		g := gateName(base)
		if s := wire.Shard(g) % 2; len(gates[s]) < n {
			gates[s] = append(gates[s], g)
		}
	}
	return gates
}

// TestShardedCollectorsOnNATS: two collectors split a fleet's records by
// shard on a three-node NATS cluster (no shared subscriptions there).
// Collector 0/2 is killed mid-stream, its connection cut without a
// DISCONNECT; a replacement with its client id, on another node, takes
// its slice from the session NATS kept. Every record is in PostgreSQL
// exactly once, collector 1/2 never saw a record of slice 0, and a
// gate publishing on another gate's shard is refused.
func TestShardedCollectorsOnNATS(t *testing.T) {
	pool := testPool(t)
	cluster := mqtttest.StartNATSCluster(t)
	urls := cluster.URLs()
	fleet := "sharded"
	proxy := mqtttest.StartProxy(t, cluster.Nodes[0].Addr())
	cfg := func(id string, slice wire.Slice, broker string) Config {
		return Config{Broker: broker, Fleet: fleet, ClientID: id, Slice: slice, Workers: 2}
	}
	// The fake gate publishes each batch once (a gate would resend what
	// is not acknowledged), so the collectors must be subscribed to every
	// filter of their slice before it starts.
	start := func(id string, slice wire.Slice, broker string) (*Collector, func()) {
		c, watched, stop := startCollector(t, pool, NewWriter(pool, testLog(t)), cfg(id, slice, broker), testLog(t))
		for range len(c.filters) - 1 {
			waitSubscribed(t, watched)
		}
		return c, stop
	}
	a, stopA := start("collector-s0", wire.Slice{I: 0, N: 2}, proxy.URL())
	b, _ := start("collector-s1", wire.Slice{I: 1, N: 2}, urls[1])
	g := newFakeGate(t, urls[2], fleet)
	gates := shardGates(t, "shard", 3)
	all := append(append([]string(nil), gates[0]...), gates[1]...)
	for _, gate := range all {
		g.enrol(gate)
	}

	const rounds, size = 30, 10
	// acks counts the acks per gate; killAfter acks of slice 0 the first
	// collector is killed, while the gate goes on publishing.
	const killAfter = 10
	var mu sync.Mutex
	acked := map[string]int{}
	type batchKey struct {
		gate string
		from uint64
	}
	ackedBatch := map[batchKey]bool{}
	slice0 := map[string]bool{}
	for _, gate := range gates[0] {
		slice0[gate] = true
	}
	killed := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		n0 := 0
		for {
			select {
			case <-ctx.Done():
				return
			case ack := <-g.acks:
				mu.Lock()
				acked[ack.gate]++
				for from := ack.ack.From; from <= ack.ack.Through; from += size {
					ackedBatch[batchKey{ack.gate, from}] = true
				}
				mu.Unlock()
				if slice0[ack.gate] {
					if n0++; n0 == killAfter {
						close(killed)
					}
				}
			}
		}
	}()
	var replacement *Collector
	for i := range rounds {
		from := uint64(i*size + 1)
		for _, gate := range all {
			g.publish(gate, wiretest.Records(fleet, gate, batch(gate, seqRange(from, from+size-1)...)))
		}
		if i == rounds/3 {
			select {
			case <-killed:
			case <-time.After(waitLimit):
				t.Fatalf("collector 0/2 acked fewer than %d batches", killAfter)
			}
			proxy.Refuse(time.Hour)
			proxy.CutAll()
			stopA()
			replacement, _ = start("collector-s0", wire.Slice{I: 0, N: 2}, urls[1])
		}
	}
	// A gate publishing its records on another gate's shard, one that
	// collector 1/2 serves.
	liar := gates[0][0]
	wrong := (wire.Shard(liar) + 1) % wire.Shards
	if err := g.client.Publish(g.topics.ShardTopic(liar, wrong), 1, false,
		wiretest.Records(fleet, liar, batch(liar, 1000))).Error(); err != nil {
		t.Fatal(err)
	}

	// Like a gate, the test sends again what no collector acknowledged
	// within resendAfter: a batch a killed collector took but never
	// stored comes back only when NATS redelivers it after its ack_wait
	// (30 s), later still on a loaded machine.
	const resendAfter = 20 * time.Second
	resends := 0
	resendAt := time.Now().Add(resendAfter)
	resend := func() {
		mu.Lock()
		defer mu.Unlock()
		for i := range rounds {
			from := uint64(i*size + 1)
			for _, gate := range all {
				if !ackedBatch[batchKey{gate, from}] {
					resends++
					g.publish(gate, wiretest.Records(fleet, gate, batch(gate, seqRange(from, from+size-1)...)))
				}
			}
		}
	}
	total := uint64(rounds * size)
	deadline := time.Now().Add(2 * time.Minute)
	for _, gate := range all {
		for countRows(t, pool, gate, 1, total) != int(total) {
			if time.Now().After(resendAt) {
				resend()
				resendAt = time.Now().Add(resendAfter)
			}
			if time.Now().After(deadline) {
				for _, gt := range all {
					t.Logf("gate %s shard %d: %d rows", gt, wire.Shard(gt), countRows(t, pool, gt, 1, total))
				}
				t.Logf("a %+v\nb %+v\nr %+v", a.Stats(), b.Stats(), replacement.Stats())
				t.Fatalf("gate %s: %d of %d records stored after 2 minutes", gate, countRows(t, pool, gate, 1, total), total)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for time.Now().Before(deadline) && b.Stats().Refused == 0 {
		time.Sleep(50 * time.Millisecond)
	}
	var doubled int
	if err := pool.QueryRow(context.Background(),
		"SELECT count(*) FROM (SELECT gate, seq FROM wicket_records WHERE gate = ANY($1) GROUP BY gate, seq HAVING count(*) > 1) d", all).Scan(&doubled); err != nil {
		t.Fatal(err)
	}
	if doubled != 0 {
		t.Errorf("%d records stored twice", doubled)
	}
	if n := countRows(t, pool, liar, 1000, 1000); n != 0 {
		t.Errorf("the record on the wrong shard was stored (%d rows)", n)
	}
	sa, sb, sr := a.Stats(), b.Stats(), replacement.Stats()
	t.Logf("collector 0/2 before the kill: %+v", sa)
	t.Logf("its replacement: %+v", sr)
	t.Logf("collector 1/2: %+v", sb)
	t.Logf("batches sent again for want of an ack: %d", resends)
	slice1 := uint64(len(gates[1])) * total
	// Every record of slice 1 inserted by its own collector, once; what
	// it received beyond that was sent again (a batch refused while its
	// roster was not yet current, or an ack that came late).
	if sb.Inserted != slice1 || sb.Records < slice1 {
		t.Errorf("collector 1/2 received %d records, inserted %d; want its whole slice, %d, inserted once", sb.Records, sb.Inserted, slice1)
	}
	if sb.Refused == 0 {
		t.Errorf("collector 1/2 refused nothing; want at least the record on the wrong shard")
	}
	slice0Total := uint64(len(gates[0])) * total
	// A batch committed as the first collector was killed is stored but
	// not counted by it; its replacement gets it again (NATS redelivers
	// what was not acknowledged, after its ack wait) as a duplicate.
	if sa.Inserted == 0 || sr.Inserted == 0 || sa.Inserted+sr.Inserted > slice0Total || sr.Records+sa.Inserted < slice0Total {
		t.Errorf("slice 0: inserted %d before the kill, %d after (of %d received); want both > 0, at most %d together, the replacement receiving the rest",
			sa.Inserted, sr.Inserted, sr.Records, slice0Total)
	}
	// The gates of slice 1 have every batch acknowledged once. (A batch
	// of slice 0 stored as its collector was killed may miss its ack; a
	// gate sends it again after its ack timeout, which this one does
	// not.) An ack follows the commit, so the last ones may still be on
	// their way when the rows are there.
	missing := func() (short []string) {
		mu.Lock()
		defer mu.Unlock()
		for _, gate := range gates[1] {
			if acked[gate] < rounds {
				short = append(short, fmt.Sprintf("%s: %d acks", gate, acked[gate]))
			}
		}
		return short
	}
	for time.Now().Before(deadline) && len(missing()) > 0 {
		time.Sleep(50 * time.Millisecond)
	}
	if m := missing(); len(m) > 0 {
		t.Errorf("acks missing, want %d a gate: %v", rounds, m)
	}
}

// TestResliceDropsOldFilters: a collector that ran on every shard and
// comes back as slice 0/2 under the same client id resumes its session,
// drops the old filter and no longer receives slice 1's records.
func TestResliceDropsOldFilters(t *testing.T) {
	pool := testPool(t)
	broker := mqtttest.StartMosquitto(t)
	fleet := "reslice"
	cfg := Config{Broker: broker.URL(), Fleet: fleet, ClientID: "collector-reslice", Workers: 1}
	_, _, stop := startCollector(t, pool, NewWriter(pool, testLog(t)), cfg, testLog(t))
	stop()
	cfg.Slice = wire.Slice{I: 0, N: 2}
	c, watched, _ := startCollector(t, pool, NewWriter(pool, testLog(t)), cfg, testLog(t))
	// The session found, each filter of the slice, the unsubscription
	// of the others: one signal each, one of them taken already.
	for range len(c.filters) + 1 {
		waitSubscribed(t, watched)
	}
	if s := c.Stats(); s.Resumed != 1 {
		t.Fatalf("resumed %d sessions; want 1", s.Resumed)
	}
	g := newFakeGate(t, broker.URL(), fleet)
	gates := shardGates(t, "reslice", 1)
	g.send(gates[1][0], batch(gates[1][0], 1, 2))
	g.send(gates[0][0], batch(gates[0][0], 1, 2, 3))
	g.wantAck(gates[0][0], 1, 3)
	// One worker handles messages in arrival order: slice 1's, published
	// first, would have come first.
	if s := c.Stats(); s.Records != 3 {
		t.Errorf("collector 0/2 received %d records; want the 3 of its slice only", s.Records)
	}
	g.wantNoAck()
}
