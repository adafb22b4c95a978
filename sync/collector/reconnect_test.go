package collector

import (
	"testing"
	"time"

	"wicket/sync/mqtttest"
	"wicket/sync/wire"
)

// The waits between connection attempts: short for the first failed
// connects, growing to reconnectMax in a long outage, short again after
// a successful connect; after lost connections never over
// shortConnectionMax, however many short ones come in a row, and back to
// reconnectMin after a stable one.
func TestReconnectWaits(t *testing.T) {
	r := newReconnects()
	check := func(what string, got, lo, hi time.Duration) {
		t.Helper()
		if got < lo || got > hi {
			t.Errorf("%s: wait %v; want %v to %v", what, got, lo, hi)
		}
	}
	for range reconnectFastTries {
		check("failed connect", r.failed(), reconnectMin/2, reconnectFirstMax)
	}
	var longest time.Duration
	for range 20 {
		d := r.failed()
		check("failed connect in a long outage", d, reconnectMin/2, reconnectMax)
		longest = max(longest, d)
	}
	if longest <= reconnectFirstMax {
		t.Errorf("longest wait of 20 more failed connects %v; want over %v in a long outage", longest, reconnectFirstMax)
	}
	check("lost after a stable connection", r.lost(stableConnection), reconnectMin/2, reconnectMin)
	check("failed connect after a connection", r.failed(), reconnectMin/2, reconnectMin)
	for range 50 {
		check("lost after a short connection", r.lost(time.Second), reconnectMin/2, shortConnectionMax)
	}
	check("lost after a stable connection", r.lost(time.Hour), reconnectMin/2, reconnectMin)
}

// sendUntilAcked publishes r as gate every resendEvery, as a gate resends
// what is not acked, until the collector acks it; it reports how long
// that took, failing the test after limit.
func (g *fakeGate) sendUntilAcked(gate string, r *wire.Records, limit time.Duration) time.Duration {
	g.t.Helper()
	const resendEvery = 250 * time.Millisecond
	start := time.Now()
	last := r.Records[len(r.Records)-1].Seq
	tick := time.NewTicker(resendEvery)
	defer tick.Stop()
	deadline := time.After(limit)
	g.send(gate, r)
	for {
		select {
		case a := <-g.acks:
			if a.gate == gate && a.ack.Through == last {
				return time.Since(start)
			}
		case <-tick.C:
			g.send(gate, r)
		case <-deadline:
			g.t.Fatalf("records of %s through seq %d not acked %v after the broker was back", gate, last, limit)
		}
	}
}

// After the broker restarted many times in a row, records still
// reach PostgreSQL within a few seconds of its last restart. (The
// collector's wait used to grow with every short connection, to a
// minute: records came up to 106 s late.)
func TestCollectorReconnectsSoonAfterRestarts(t *testing.T) {
	const (
		restarts = 8
		// The waits after short connections stop growing at
		// shortConnectionMax (5 s); before, the wait after the 8th was at
		// least 16 s.
		bound = 12 * time.Second
	)
	pool := testPool(t)
	broker := mqtttest.StartMosquitto(t)
	fleet := "restarts"
	startCollector(t, pool, NewWriter(pool, testLog(t)),
		Config{Broker: broker.URL(), Fleet: fleet, ClientID: "collector-restarts"}, testLog(t))
	gate := gateName("restarts")
	for i := range restarts + 1 {
		if i > 0 {
			broker.Stop()
			broker.Start()
		}
		// A gate's own connection does not survive the restart either.
		g := newFakeGate(t, broker.URL(), fleet)
		seq := uint64(i + 1)
		took := g.sendUntilAcked(gate, batch(gate, seq), bound)
		t.Logf("after restart %d: stored and acked in %v", i, took.Round(time.Millisecond))
	}
	if n := countRows(t, pool, gate, 1, restarts+1); n != restarts+1 {
		t.Errorf("%d rows; want %d", n, restarts+1)
	}
}
