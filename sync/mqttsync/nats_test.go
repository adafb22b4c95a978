package mqttsync

import (
	"testing"
	"time"

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
	eventually(t, "42 records acked through NATS", 20*time.Second, func() bool { return outboxLen(t, g.st) == 0 })
	if n := c.distinct("N1"); n != 42 {
		t.Fatalf("collector saw %d distinct records; want 42", n)
	}
	eventually(t, "status version 15 through NATS", 20*time.Second, func() bool { return g.st.Info().Version == 15 })
}
