package fleetsim

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
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

// hostileFleet is one real gate (store, trust Applier, sync through a
// counting proxy), one real collector into PostgreSQL, a Mosquitto, and
// an anonymous client that holds the broker as an attacker would.
type hostileFleet struct {
	t      *testing.T
	f      *verifiertest.Fixture
	broker *mqtttest.Broker
	proxy  *mqtttest.Proxy
	pool   *pgxpool.Pool
	col    *collector.Collector
	topics wire.Topics
	anon   mqtt.Client

	gate     string
	st       *store.Store
	tr       *trust.Applier
	sync     *mqttsync.Sync
	stopGate func()
	version  uint64 // the newest revocation version published
	appended int    // records the gate committed
}

const hostileFleetID = "hostile"

func newHostileFleet(t *testing.T, gate string) *hostileFleet {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	h := &hostileFleet{t: t, f: verifiertest.New(t), broker: mqtttest.StartMosquitto(t), pool: newDB(t),
		topics: wire.Topics{Fleet: hostileFleetID}, gate: gate, version: 10}
	h.proxy = mqtttest.StartProxy(t, h.broker.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	if err := collector.Migrate(ctx, h.pool); err != nil {
		t.Fatal(err)
	}
	roster := wiretest.Roster(t, h.f.Root, 1, gate)
	publish(t, h.broker.URL(), h.topics.Roster(), roster)
	publish(t, h.broker.URL(), h.topics.KeySet(), h.f.KeySetDoc)
	publish(t, h.broker.URL(), h.topics.Snapshot(), signBatch(t, h.f, 10, 0))
	var err error
	h.col, err = collector.New(collector.Config{Broker: h.broker.URL(), Fleet: hostileFleetID, ClientID: "hostile-collector",
		ID: wiretest.CollectorID, Key: wiretest.CollectorKey, Roots: h.f.Roots(), Roster: roster},
		collector.NewWriter(h.pool, quiet), quiet)
	if err != nil {
		t.Fatal(err)
	}
	go func() { h.col.Run(ctx); close(done) }()

	h.st = storetest.Open(t, store.Options{Logger: quiet})
	v, _ := verifier.New(verifier.NewTrustedClock(h.f.Clock, time.Time{}), h.st, &h.f.Policy)
	h.tr = trust.New(h.f.Roots(), h.st, v, quiet)
	h.anon = mqtt.NewClient(mqtt.NewClientOptions().AddBroker(h.broker.URL()).SetClientID("anonymous"))
	if tok := h.anon.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { h.anon.Disconnect(100) })
	h.startGate()
	h.waitFor("key set, roster and snapshot 10", func() bool {
		return h.st.Info().Version == 10 && h.sync.Roster() != nil && v.KeySet() != nil
	})
	return h
}

// startGate runs the gate's sync, as a restarted wicketd would.
func (h *hostileFleet) startGate() {
	var err error
	h.sync, err = mqttsync.New(mqttsync.Config{
		Conn:  mqttconn.Conn{Broker: h.proxy.URL(), ClientID: "wicket-hostile-" + h.gate, KeepAlive: 5 * time.Second},
		Fleet: hostileFleetID, Gate: h.gate, BatchSize: 20, AckTimeout: time.Second, StatusEvery: time.Hour,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond,
		Key: wiretest.GateKey, Roots: h.f.Roots(),
	}, h.st, h.tr, func() wire.Status { return wire.Status{Gate: h.gate, StatusVersion: h.st.Info().Version} }, slog.New(slog.DiscardHandler))
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.sync.Run(ctx); close(done) }()
	h.stopGate = func() { cancel(); <-done }
	h.t.Cleanup(h.stopGate)
}

func (h *hostileFleet) waitFor(what string, cond func() bool) {
	h.t.Helper()
	testkit.Eventually(h.t, what, 30*time.Second, cond)
}

// append commits n decisions at the gate.
func (h *hostileFleet) append(n int) {
	for range n {
		ev := store.Event{Type: store.TypeDecision, At: time.Now(), Gate: h.gate, Venue: "HOSTILE", Allow: true, Reason: "ok"}
		if _, err := h.st.Append(&ev, 0); err != nil {
			h.t.Fatal(err)
		}
		h.appended++
	}
	h.sync.Notify()
}

// attack publishes as the anonymous client, at QoS 1, and waits for the
// broker to take every message.
func (h *hostileFleet) attack(topic string, retained bool, payloads ...[]byte) {
	h.t.Helper()
	toks := make([]mqtt.Token, 0, len(payloads))
	for _, p := range payloads {
		toks = append(toks, h.anon.Publish(topic, 1, retained, p))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			h.t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
}

// revoke publishes the next genuine revocation delta, retained, and
// returns the revoked key.
func (h *hostileFleet) revoke() string {
	h.version++
	key := fmt.Sprintf("revoked-voucher-%06d", h.version)
	doc, err := verifier.SignBatch(h.f.Root, verifier.Batch{Version: h.version, Base: h.version - 1, IssuedAt: verifiertest.Epoch,
		Entries: []verifier.Entry{{Op: verifier.OpRevoke, Key: []byte(key), Time: verifiertest.Epoch.Unix() + int64(h.version), Expires: time.Now().Add(48 * time.Hour).Unix()}}})
	if err != nil {
		h.t.Fatal(err)
	}
	publish(h.t, h.broker.URL(), h.topics.Delta(h.version), doc)
	return key
}

// restartAndRevoke restarts the gate and requires the next genuine
// revocation in force within 2 s of the reconnect. It returns the bytes
// the gate received on the reconnect before the revocation.
func (h *hostileFleet) restartAndRevoke() int64 {
	h.t.Helper()
	before := h.proxy.Stats().BytesDown
	h.startGate() // a new Sync: its state starts at zero
	h.waitFor("the reconnect", func() bool { return h.sync.State().Connected })
	reconnected := time.Now()
	received := h.proxy.Stats().BytesDown - before
	key := h.revoke()
	testkit.Eventually(h.t, fmt.Sprintf("the revocation published after the reconnect in force (version %d)", h.version), 2*time.Second-time.Since(reconnected), func() bool {
		ok, _ := h.st.Revoked([]byte(key))
		return ok
	})
	h.t.Logf("next genuine revocation in force %v after the reconnect", time.Since(reconnected).Round(time.Millisecond))
	return received
}

// settled requires every record the gate committed in PostgreSQL, its
// outbox empty, and no row the gate did not write: 0 lost, 0 forged.
func (h *hostileFleet) settled() {
	h.t.Helper()
	ctx := context.Background()
	h.waitFor(fmt.Sprintf("all %d records stored and acknowledged", h.appended), func() bool {
		var n int
		h.pool.QueryRow(ctx, "SELECT count(*) FROM wicket_records WHERE gate = $1 AND venue = 'HOSTILE'", h.gate).Scan(&n)
		s, _ := h.st.Stats()
		return n == h.appended && s.Outbox == 0
	})
	var rows, forged int
	if err := h.pool.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE gate <> $1 OR venue <> 'HOSTILE' OR seq > $2) FROM wicket_records",
		h.gate, h.appended+1).Scan(&rows, &forged); err != nil {
		h.t.Fatal(err)
	}
	// The gate's own system records aside (none here), every row is one
	// of its decisions.
	if forged != 0 || rows != h.appended {
		h.t.Fatalf("PostgreSQL holds %d rows, %d not written by the gate; want %d, 0", rows, forged, h.appended)
	}
}

// TestHostileParticipant: an anonymous client on the broker repeats the
// attacks of the fleet review while the gate is off (junk queued on its
// persistent session, forged acks, forged and future-seq records to the
// collector, a fake retained status). After each round: no record lost,
// no forged row in PostgreSQL, the next genuine revocation in force
// within 2 s of the gate's reconnect, no forged ack queued for the gate
// (its ack subscription is QoS 0), and the same forged acks sent again
// once it is back all refused.
func TestHostileParticipant(t *testing.T) {
	counts := []int{25, 100, 1000}
	h := newHostileFleet(t, "HOSTILE-G1")
	h.append(30)
	h.settled()
	for _, n := range counts {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			h.t = t
			h.stopGate()
			h.append(15) // committed while the gate is off
			refused := h.col.Stats().Refused

			// 1. Junk on the trust tree and genuine deltas queue on the
			// gate's session, past Mosquitto's in-flight window of 20.
			junk := make([][]byte, n)
			for i := range junk {
				junk[i] = fmt.Appendf(nil, "junk %d", i)
			}
			h.attack("wicket/"+hostileFleetID+"/trust/junk", false, junk...)
			for range n / 25 {
				h.revoke()
			}
			// 2. Forged acks: unsigned, a range never sent, signed by a
			// stranger, a genuine-looking ack for another gate.
			stranger := verifiertest.EdKey(66)
			forgedAck := func(signer string, key []byte, gate string, from, through uint64) []byte {
				b, _ := wire.Sign(wire.KindAck, hostileFleetID, signer, key, wire.Ack{Gate: gate, From: from, Through: through})
				return b
			}
			unsigned, _ := json.Marshal(wire.Ack{Gate: h.gate, From: 1, Through: 1<<64 - 1})
			acks := [][]byte{unsigned,
				forgedAck(wiretest.CollectorID, stranger, h.gate, 1, 1<<64-1),
				forgedAck("evil-collector", stranger, h.gate, 1, uint64(h.appended)),
				wiretest.Ack(hostileFleetID, "HOSTILE-G2", 1, uint64(h.appended)),
				wiretest.Ack(hostileFleetID, h.gate, uint64(h.appended)+1, uint64(h.appended)+500),
			}
			for range n / len(acks) {
				h.attack(h.topics.Ack(h.gate), false, acks...)
			}
			// 3. Forged records for the gate: seq 16..515 unsigned and
			// signed by a stranger, and seqs beyond anything it wrote.
			var fake wire.Records
			fake.Gate = h.gate
			for s := uint64(16); s <= 515; s++ {
				fake.Records = append(fake.Records, wire.Record{Seq: s, Type: store.TypeDecision, Gate: h.gate, Venue: "FORGED", At: time.Now()})
			}
			plain, _ := json.Marshal(fake)
			byStranger, _ := wire.Sign(wire.KindRecords, hostileFleetID, h.gate, stranger, &fake)
			future := fake
			future.Records = []wire.Record{{Seq: 1 << 40, Type: store.TypeDecision, Gate: h.gate, Venue: "FORGED", At: time.Now()}}
			futureSigned, _ := wire.Sign(wire.KindRecords, hostileFleetID, h.gate, stranger, &future)
			h.attack(h.topics.Records(h.gate), false, plain, byStranger, futureSigned)
			// 7. A fake retained status: healthy, current, online.
			fakeStatus, _ := json.Marshal(wire.Status{Gate: h.gate, Online: true, StatusVersion: 1 << 20, ClockTrusted: true, At: time.Now()})
			h.attack(h.topics.Status(h.gate), true, fakeStatus)
			held := retainedStatus(t, h.broker.URL(), h.topics.Status(h.gate))
			if _, sm, _ := wire.OpenStatus(held); sm != nil && sm.Verify(wire.KindStatus, hostileFleetID, wiretest.GatePub) == nil {
				t.Fatal("the fake status verifies as the gate's")
			}

			received := h.restartAndRevoke()
			h.settled()
			if got := h.col.Stats().Refused - refused; got != 3 {
				t.Errorf("collector refused %d forged records messages; want 3", got)
			}
			// The acks sent while the gate was away were not queued
			// for it: its ack subscription is QoS 0.
			if got := h.sync.State().AcksRefused; got != 0 {
				t.Errorf("%d acks refused after the reconnect; want none queued for the gate while it was away", got)
			}
			// The same forged acks while it is connected: every one
			// reaches it and is refused.
			for range n / len(acks) {
				h.attack(h.topics.Ack(h.gate), false, acks...)
			}
			h.waitFor("every forged ack refused", func() bool { return h.sync.State().AcksRefused >= uint64(n/len(acks)*len(acks)) })
			// Mosquitto queues at most 1000 messages for an offline
			// client (max_queued_messages) and drops the rest itself.
			if queued := n + n/25; queued <= 1000 {
				h.waitFor("the junk acknowledged and dropped", func() bool { return h.sync.State().Ignored >= uint64(n) })
			}
			// The gate's own status replaced the fake one.
			h.waitFor("a signed status", func() bool {
				_, sm, _ := wire.OpenStatus(retainedStatus(t, h.broker.URL(), h.topics.Status(h.gate)))
				return sm != nil && sm.Verify(wire.KindStatus, hostileFleetID, wiretest.GatePub) == nil
			})
			t.Logf("%d junk messages, %d forged acks, 3 forged records messages, a fake status: %d bytes received before the reconnect was complete; sync %+v",
				n, n/len(acks)*len(acks), received, h.sync.State())
		})
	}
}

// retainedStatus reads the retained message on a status topic.
func retainedStatus(t *testing.T, broker, topic string) []byte {
	t.Helper()
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("status-reader-%d", time.Now().UnixNano())))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(100)
	got := make(chan []byte, 1)
	cl.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case got <- m.Payload():
		default:
		}
	})
	select {
	case p := <-got:
		return p
	case <-time.After(5 * time.Second):
		return nil
	}
}

// TestOvernight: the gate is off while the authority publishes 200
// deltas, then a snapshot in 4 parts and 5 deltas after it; it comes
// back, converges, and reports what it received.
func TestOvernight(t *testing.T) {
	h := newHostileFleet(t, "NIGHT-G1")
	h.append(10)
	h.settled()
	h.stopGate()
	before := h.proxy.Stats().BytesDown
	start := h.version
	for range 200 {
		h.revoke()
	}
	// A multi-part snapshot: everything so far plus 4 × 1000 new entries.
	h.version++
	const parts, per = 4, 1000
	for p := range uint32(parts) {
		bt := verifier.Batch{Version: h.version, IssuedAt: verifiertest.Epoch, Part: p, Parts: parts}
		for i := range per {
			bt.Entries = append(bt.Entries, verifier.Entry{Op: verifier.OpRevoke, Key: fmt.Appendf(nil, "snapshot-voucher-%d-%04d", p, i),
				Time: verifiertest.Epoch.Unix(), Expires: time.Now().Add(48 * time.Hour).Unix()})
		}
		doc, err := verifier.SignBatch(h.f.Root, bt)
		if err != nil {
			t.Fatal(err)
		}
		publish(t, h.broker.URL(), h.topics.SnapshotPart(p), doc)
	}
	snapshot := h.version
	for range 5 {
		h.revoke()
	}
	h.startGate()
	back := time.Now()
	h.waitFor("version "+fmt.Sprint(h.version), func() bool { return h.st.Info().Version == h.version })
	for _, k := range []string{"snapshot-voucher-0-0000", "snapshot-voucher-3-0999", fmt.Sprintf("revoked-voucher-%06d", h.version)} {
		if ok, _ := h.st.Revoked([]byte(k)); !ok {
			t.Errorf("%s not revoked", k)
		}
	}
	t.Logf("overnight: 200 deltas (versions %d..%d), a %d-part snapshot (version %d, %d entries) and 5 deltas applied %v after the restart; %d bytes received on the reconnect",
		start+1, snapshot-1, parts, snapshot, parts*per, time.Since(back).Round(time.Millisecond), h.proxy.Stats().BytesDown-before)
	// And a reconnect with nothing new costs next to nothing.
	before = h.proxy.Stats().BytesDown
	attempts := h.sync.State().Attempts
	h.proxy.CutAll()
	h.waitFor("the reconnect", func() bool { s := h.sync.State(); return s.Connected && s.Attempts > attempts })
	key := h.revoke()
	h.waitFor("the next revocation", func() bool { ok, _ := h.st.Revoked([]byte(key)); return ok })
	t.Logf("reconnect with one new delta: %d bytes received", h.proxy.Stats().BytesDown-before)
	h.settled()
}
