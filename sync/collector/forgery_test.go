package collector

import (
	"context"
	"testing"

	"wicket/sync/mqtttest"
	"wicket/sync/wire"
	"wicket/sync/wire/wiretest"
	"wicket/verifier/verifiertest"
)

// TestCollectorRefusesForgeries (seen-problem 3): records messages that
// are not signed by the gate of their topic with the key the roster holds
// for it are refused, acked to the broker but not to any gate, stored
// nowhere and counted in wicket_refusals; the gate's genuine records with
// the same seqs are stored afterwards, not taken for duplicates.
func TestCollectorRefusesForgeries(t *testing.T) {
	pool := testPool(t)
	broker := mqtttest.StartMosquitto(t)
	fleet := "forge"
	c, _, stop := startCollector(t, pool, NewWriter(pool, testLog(t)),
		Config{Broker: broker.URL(), Fleet: fleet, ClientID: "collector-forge", Workers: 1}, testLog(t))
	g := newFakeGate(t, broker.URL(), fleet)
	a, b, u := gateName("forge-a"), gateName("forge-b"), gateName("forge-unenrolled")
	g.send(b, batch(b, 1))
	g.wantAck(b, 1, 1)
	g.send(a, batch(a, seqRange(1, 15)...))
	g.wantAck(a, 1, 15)

	forged := batch(a, seqRange(16, 515)...)
	unsigned := []byte(`{"gate":"` + a + `","records":[{"seq":16,"gate":"` + a + `","type":"decision"}]}`)
	g.publish(a, unsigned)
	stranger, _ := wire.Sign(wire.KindRecords, fleet, a, verifiertest.EdKey(99), forged)
	g.publish(a, stranger)
	byB, _ := wire.Sign(wire.KindRecords, fleet, b, wiretest.GateKey, forged)
	g.publish(a, byB)
	otherFleet, _ := wire.Sign(wire.KindRecords, "another-fleet", a, wiretest.GateKey, forged)
	g.publish(a, otherFleet)
	g.publish(u, wiretest.Records(fleet, u, batch(u, 1, 2, 3)))

	g.send(a, batch(a, 16, 17, 18, 19))
	g.wantAck(a, 16, 19)
	g.wantNoAck()
	if n := countRows(t, pool, a, 1, 1000); n != 19 {
		t.Errorf("gate a: %d rows; want its 19 genuine ones", n)
	}
	if n := countRows(t, pool, u, 1, 1000); n != 0 {
		t.Errorf("unenrolled gate: %d rows; want 0", n)
	}
	if s := c.Stats(); s.Refused != 5 || s.Inserted != 20 || s.Duplicates != 0 {
		t.Errorf("Stats() = %+v; want 5 refused, 20 inserted, 0 duplicates", s)
	}
	stop() // writes the refusal counts
	want := map[refusalKey]int64{
		{a, RefusedUnsigned}: 1, {a, RefusedSignature}: 2, {a, RefusedSigner}: 1, {u, RefusedUnenrolled}: 1,
	}
	rows, err := pool.Query(context.Background(), "SELECT gate, reason, messages FROM wicket_refusals WHERE gate = $1 OR gate = $2", a, u)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[refusalKey]int64{}
	for rows.Next() {
		var k refusalKey
		var n int64
		if err := rows.Scan(&k.gate, &k.reason, &n); err != nil {
			t.Fatal(err)
		}
		got[k] = n
	}
	if len(got) != len(want) {
		t.Errorf("wicket_refusals = %v; want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("wicket_refusals %s/%s = %d; want %d", k.gate, k.reason, got[k], n)
		}
	}
}
