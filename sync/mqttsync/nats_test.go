package mqttsync

import (
	"testing"
	"time"

	"wicket/internal/testkit"
	"wicket/sync/mqttconn"
	"wicket/sync/mqtttest"
	"wicket/sync/wire"
	"wicket/verifier/verifiertest"
)

// TestNATS runs the gate's sync against the NATS server's MQTT listener,
// unchanged: records acknowledged, trust data caught up from retained
// snapshot and deltas.
func TestNATS(t *testing.T) {
	b := mqtttest.StartNATS(t)
	f := verifiertest.New(t)
	topics := wire.Topics{Fleet: "test"}
	msgs := map[string][]byte{topics.KeySet(): f.KeySetDoc, topics.Snapshot(): signBatch(t, f, 10, 0)}
	for v := uint64(11); v <= 15; v++ {
		msgs[topics.Delta(v)] = signBatch(t, f, v, v-1)
	}
	publishRetained(t, b.URL(), msgs)
	c := startCollector(t, f, b.URL())
	g := startGate(t, f, b.URL(), "N1", 30*time.Second)
	g.appendN(t, 42)
	testkit.Eventually(t, "42 records acked through NATS", 20*time.Second, func() bool { return outboxLen(t, g.st) == 0 })
	if n := c.distinct("N1"); n != 42 {
		t.Fatalf("collector saw %d distinct records; want 42", n)
	}
	testkit.Eventually(t, "status version 15 through NATS", 20*time.Second, func() bool { return g.st.Info().Version == 15 })
}

// TestClusterFailover runs a gate on a three-node NATS cluster with every
// node listed (sync.brokers). The node it is on is killed (SIGKILL): the gate moves
// to another node, the records it logs afterwards are acknowledged, and a
// colour override published after the kill reaches it through the
// session it left on the cluster.
func TestClusterFailover(t *testing.T) {
	c := mqtttest.StartNATSCluster(t)
	f := verifiertest.New(t)
	topics := wire.Topics{Fleet: "test"}
	urls := c.URLs()
	// The collector and the publisher use the last node; the gate lists
	// all three and starts on the first.
	other := urls[2]
	enrol(t, f, other, "F1")
	publishRetained(t, other, map[string][]byte{topics.KeySet(): f.KeySetDoc, topics.Snapshot(): signBatch(t, f, 10, 0)})
	col := startCollector(t, f, other)
	g := startGateConn(t, f, mqttconn.Conn{Brokers: urls, ClientID: "wicket-test-F1", KeepAlive: 2 * time.Second}, "F1", 5*time.Second)
	testkit.Eventually(t, "key set and snapshot 10", 30*time.Second, func() bool { return g.st.Info().Version == 10 && g.v.KeySet() != nil })
	g.appendN(t, 20)
	testkit.Eventually(t, "20 records acked", 30*time.Second, func() bool { return outboxLen(t, g.st) == 0 })
	before := g.sync.State()
	if before.Broker != urls[0] {
		t.Fatalf("gate on %s; want the first listed node %s", before.Broker, urls[0])
	}

	c.Node(before.Broker).Kill()
	killed := time.Now()
	g.appendN(t, 20)
	// The other nodes may refuse clients until JetStream has new leaders.
	mqtttest.PublishRetry(t, other, map[string][]byte{topics.Delta(11): signBatch(t, f, 11, 10)}, true)
	// The next node first; the one after it if the next one refuses
	// while JetStream recovers.
	testkit.Eventually(t, "the gate on another node", 60*time.Second, func() bool {
		st := g.sync.State()
		return st.Connected && st.Broker != urls[0] && st.Broker != ""
	})
	t.Logf("on node %s %v after the kill", g.sync.State().Broker, time.Since(killed).Round(time.Millisecond))
	testkit.Eventually(t, "the override published after the kill in force", 60*time.Second, func() bool { return g.st.Info().Version == 11 })
	testkit.Eventually(t, "40 records acked", 60*time.Second, func() bool { return outboxLen(t, g.st) == 0 })
	if n := col.distinct("F1"); n != 40 {
		t.Fatalf("collector saw %d distinct records; want 40", n)
	}
	// The next node reported the session present (it lives in
	// JetStream), so the gate subscribed to nothing: the override came
	// through the session, not a new subscription.
	after := g.sync.State()
	t.Logf("attempts %d, subscribes %d before the kill, %d after", after.Attempts, before.Subscribes, after.Subscribes)
	if after.Subscribes != before.Subscribes {
		t.Errorf("the gate subscribed again after the failover (%d subscriptions, %d before): the next node reported no session", after.Subscribes, before.Subscribes)
	}
}
