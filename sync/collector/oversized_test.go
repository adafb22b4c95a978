package collector

import (
	"net"
	"testing"

	"wicket/internal/testkit"
	"wicket/sync/mqttconn"
	"wicket/sync/mqtttest"
)

// TestOversizedRecords (seen-problem 4, the collector's side): a records
// message far over the read limit is streamed past, acknowledged and
// counted as invalid; the collector goes on storing the gate's genuine
// records.
func TestOversizedRecords(t *testing.T) {
	pool := testPool(t)
	broker := mqtttest.StartMosquitto(t)
	fleet := "oversized"
	c, _, _ := startCollector(t, pool, NewWriter(pool, testLog(t)),
		Config{Broker: broker.URL(), Fleet: fleet, ClientID: "collector-oversized", Workers: 1}, testLog(t))
	g := newFakeGate(t, broker.URL(), fleet)
	a := gateName("oversized-a")
	g.send(a, batch(a, 1))
	g.wantAck(a, 1, 1)

	conn, err := net.Dial("tcp", broker.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := mqtttest.PublishLarge(conn, "anonymous-large", g.topics.Records(a), 3*mqttconn.DefaultMaxMessage, false); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the oversized message counted", waitLimit, func() bool { return c.Stats().Invalid != 0 })
	if s := c.Stats(); s.Invalid != 1 {
		t.Fatalf("Stats() = %+v; want the oversized message counted invalid", s)
	}
	g.send(a, batch(a, 2, 3))
	g.wantAck(a, 2, 3)
	if n := countRows(t, pool, a, 1, 1000); n != 3 {
		t.Errorf("gate a: %d rows; want 3", n)
	}
}
