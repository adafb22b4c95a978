package mqttsync

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/decoder"
	"wicket/internal/testkit"
	"wicket/sync/mqttconn"
	"wicket/sync/mqtttest"
	"wicket/sync/store"
	"wicket/sync/store/storetest"
	"wicket/sync/trust"
	"wicket/sync/wire"
	"wicket/sync/wire/wiretest"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// gate is a gate's sync under test: a real store and trust Applier.
type gate struct {
	id    string
	st    *store.Store
	tr    *trust.Applier
	v     *verifier.Verifier
	sync  *Sync
	stop  context.CancelFunc
	done  chan struct{}
	fleet wire.Topics

	conn       mqttconn.Conn
	ackTimeout time.Duration
	roots      verifier.RootKeys
	// opts change the Config of every start.
	opts []func(*Config)
	// acks gets who sent each emergency acknowledge the gate acted on.
	acks chan string
}

func startGate(t *testing.T, f *verifiertest.Fixture, broker, id string, ackTimeout time.Duration) *gate {
	t.Helper()
	return startGateConn(t, f, mqttconn.Conn{Broker: broker, ClientID: "wicket-test-" + id, KeepAlive: 5 * time.Second}, id, ackTimeout)
}

// startGateConn starts a gate's sync on its own store with the given
// connection settings; opts change its Config.
func startGateConn(t *testing.T, f *verifiertest.Fixture, conn mqttconn.Conn, id string, ackTimeout time.Duration, opts ...func(*Config)) *gate {
	t.Helper()
	st := storetest.Open(t, store.Options{Logger: slog.New(slog.DiscardHandler)})
	v, _ := verifier.New(verifier.NewTrustedClock(f.Clock, time.Time{}), st, &f.Policy)
	tr := trust.New(f.Roots(), st, v, slog.New(slog.DiscardHandler))
	tr.Place = verifier.Place{Gate: id, Venue: "V"}
	g := &gate{id: id, st: st, tr: tr, v: v, fleet: wire.Topics{Fleet: "test"}, conn: conn, ackTimeout: ackTimeout, roots: f.Roots(), acks: make(chan string, 16), opts: opts}
	tr.OnEmergencyAck = func(by string) (bool, error) { g.acks <- by; return true, nil }
	g.start(t)
	return g
}

// start runs a new Sync on the gate's store, as a restarted wicketd
// would.
func (g *gate) start(t *testing.T) {
	t.Helper()
	cfg := Config{
		Conn: g.conn, Fleet: "test", Gate: g.id,
		BatchSize: 10, AckTimeout: g.ackTimeout, StatusEvery: time.Hour, ReconnectMin: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond,
		Key: wiretest.GateKey, Roots: g.roots,
	}
	for _, o := range g.opts {
		o(&cfg)
	}
	var err error
	g.sync, err = New(cfg, g.st, g.tr, func() wire.Status { return wire.Status{Gate: g.id, StatusVersion: g.st.Info().Version} }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	g.stop, g.done = cancel, done
	go func() { g.sync.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// halt stops the gate's sync and waits until it disconnected.
func (g *gate) halt() {
	g.stop()
	<-g.done
}

// appendN commits n decision events, as the decision loop would.
func (g *gate) appendN(t *testing.T, n int) {
	t.Helper()
	for range n {
		ev := store.Event{Type: "decision", At: time.Now(), Gate: g.id, Venue: "V", Allow: true, Reason: "ok"}
		if _, err := g.st.Append(&ev, 0); err != nil {
			t.Fatal(err)
		}
	}
	g.sync.Notify()
}

// enrol publishes, retained, a roster (version 1) with the test
// collector and the named gates.
func enrol(t *testing.T, f *verifiertest.Fixture, broker string, gates ...string) {
	t.Helper()
	publishRetained(t, broker, map[string][]byte{wire.Topics{Fleet: "test"}.Roster(): wiretest.Roster(t, f.Root, 1, gates...)})
}

// signedAck is an ack of the test collector.
func signedAck(gate string, from, through uint64) []byte {
	return wiretest.Ack("test", gate, from, through)
}

// collector is a minimal stand-in for sync/collector: it records every
// seq it sees per gate and acks each batch (unless told not to).
type collector struct {
	mu    sync.Mutex
	seen  map[string]map[uint64]int
	noAck bool
	cl    mqtt.Client
}

func startCollector(t *testing.T, f *verifiertest.Fixture, broker string) *collector {
	t.Helper()
	enrol(t, f, broker)
	c := &collector{seen: map[string]map[uint64]int{}}
	topics := wire.Topics{Fleet: "test"}
	o := mqtt.NewClientOptions().AddBroker(broker).SetClientID("test-collector").SetCleanSession(false).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond)
	subscribed := make(chan struct{})
	var once sync.Once
	o.SetOnConnectHandler(func(cl mqtt.Client) {
		tok := cl.Subscribe(topics.AllRecords(), 1, func(cl mqtt.Client, m mqtt.Message) {
			r, err := wiretest.OpenRecords("test", m.Payload())
			if err != nil {
				return
			}
			c.mu.Lock()
			if c.seen[r.Gate] == nil {
				c.seen[r.Gate] = map[uint64]int{}
			}
			for _, e := range r.Records {
				c.seen[r.Gate][e.Seq]++
			}
			noAck := c.noAck
			c.mu.Unlock()
			if !noAck {
				cl.Publish(topics.Ack(r.Gate), 1, false, signedAck(r.Gate, r.Records[0].Seq, r.Records[len(r.Records)-1].Seq))
			}
		})
		go func() {
			if tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
				once.Do(func() { close(subscribed) })
			}
		}()
	})
	c.cl = mqtt.NewClient(o)
	if tok := c.cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("collector connect: %v", tok.Error())
	}
	// Records a gate sends before the subscription is in place reach
	// no one; a test with a long ack timeout would wait for them.
	select {
	case <-subscribed:
	case <-time.After(10 * time.Second):
		t.Fatal("collector: records subscription not confirmed within 10s")
	}
	t.Cleanup(func() { c.cl.Disconnect(100) })
	return c
}

func (c *collector) distinct(gate string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen[gate])
}

func outboxLen(t *testing.T, st *store.Store) int {
	s, err := st.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return s.Outbox
}

// TestRecordsAcked: records reach the collector and leave the outbox only
// once acknowledged.
func TestRecordsAcked(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	f := verifiertest.New(t)
	c := startCollector(t, f, b.URL())
	g := startGate(t, f, b.URL(), "G1", 30*time.Second)
	g.appendN(t, 95)
	testkit.Eventually(t, "95 records acked", 15*time.Second, func() bool { return outboxLen(t, g.st) == 0 })
	if n := c.distinct("G1"); n != 95 {
		t.Fatalf("collector saw %d distinct records; want 95", n)
	}
}

// TestResendWithoutAck: records not acknowledged are sent again after the
// ack timeout and stay in the outbox meanwhile.
func TestResendWithoutAck(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	f := verifiertest.New(t)
	c := startCollector(t, f, b.URL())
	c.mu.Lock()
	c.noAck = true
	c.mu.Unlock()
	g := startGate(t, f, b.URL(), "G2", time.Second)
	g.appendN(t, 5)
	testkit.Eventually(t, "a resend", 15*time.Second, func() bool { return g.sync.State().Resends > 0 })
	if n := outboxLen(t, g.st); n != 5 {
		t.Fatalf("outbox = %d without acks; want 5", n)
	}
	c.mu.Lock()
	c.noAck = false
	c.mu.Unlock()
	testkit.Eventually(t, "acks after resend", 15*time.Second, func() bool { return outboxLen(t, g.st) == 0 })
}

// TestAckWhileAway: an ack published while the gate is away is not
// queued for it (the ack subscription is QoS 0), and nothing depends on
// it: the gate's next connection sends the whole outbox again, before
// any ack timeout, the collector acknowledges it again, and the outbox
// empties with every record seen by the collector twice and no record
// lost.
func TestAckWhileAway(t *testing.T) {
	b := mqtttest.StartMosquitto(t, mqtttest.Persistence(t.TempDir()))
	p := mqtttest.StartProxy(t, b.Addr())
	f := verifiertest.New(t)
	c := startCollector(t, f, b.URL())
	c.mu.Lock()
	c.noAck = true
	c.mu.Unlock()
	g := startGateConn(t, f, mqttconn.Conn{Broker: p.URL(), ClientID: "wicket-test-GA", KeepAlive: 5 * time.Second}, "GA", time.Hour)
	g.appendN(t, 5)
	testkit.Eventually(t, "the collector to see the 5 records", 15*time.Second, func() bool { return c.distinct("GA") == 5 })
	p.Refuse(time.Hour)
	p.CutAll()
	testkit.Eventually(t, "the gate to notice the cut", 15*time.Second, func() bool { return !g.sync.State().Connected })
	c.mu.Lock()
	from, through := uint64(0), uint64(0)
	for seq := range c.seen["GA"] {
		if from == 0 || seq < from {
			from = seq
		}
		through = max(through, seq)
	}
	c.noAck = false
	c.mu.Unlock()
	publishWith(t, mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("test-late-ack"), wire.Topics{Fleet: "test"}.Ack("GA"), false, signedAck("GA", from, through))
	p.Refuse(0)
	testkit.Eventually(t, "the outbox empty after the reconnect", 15*time.Second, func() bool { return outboxLen(t, g.st) == 0 })
	if st := g.sync.State(); st.Resends != 0 {
		t.Errorf("%d resends on the ack timeout (an hour); want the reconnect alone to send the records again", st.Resends)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for seq, n := range c.seen["GA"] {
		if n < 2 {
			t.Errorf("record %d seen %d time(s); want it sent again on the reconnect", seq, n)
		}
	}
}

// TestBrokerOutage: the broker goes away during a stream of records and
// comes back (with persistence); the gate keeps committing throughout and
// every record arrives.
func TestBrokerOutage(t *testing.T) {
	b := mqtttest.StartMosquitto(t, mqtttest.Persistence(t.TempDir()))
	f := verifiertest.New(t)
	c := startCollector(t, f, b.URL())
	g := startGate(t, f, b.URL(), "G3", 2*time.Second)
	g.appendN(t, 20)
	testkit.Eventually(t, "first records acked", 15*time.Second, func() bool { return outboxLen(t, g.st) == 0 })
	b.Stop()
	start := time.Now()
	g.appendN(t, 50)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("committing 50 events with the broker down took %v", d)
	}
	testkit.Eventually(t, "the gate to notice the outage", 15*time.Second, func() bool { return !g.sync.State().Connected })
	b.Start()
	g.appendN(t, 30)
	testkit.Eventually(t, "all 100 records acked after the outage", 30*time.Second, func() bool { return outboxLen(t, g.st) == 0 })
	if n := c.distinct("G3"); n != 100 {
		t.Fatalf("collector saw %d distinct records; want 100", n)
	}
}

// publishRetained publishes trust documents as wicketctl publish does.
func publishRetained(t *testing.T, broker string, msgs map[string][]byte) {
	t.Helper()
	publishRetainedWith(t, mqtt.NewClientOptions().AddBroker(broker).SetClientID("test-publisher"), msgs)
}

// publishRetainedWith publishes msgs retained at QoS 1 over one
// connection (a NATS server may refuse a client id whose previous
// connection it is still closing), waiting for every PUBACK.
func publishRetainedWith(t *testing.T, opts *mqtt.ClientOptions, msgs map[string][]byte) {
	t.Helper()
	cl := mqtt.NewClient(opts)
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(100)
	for topic, b := range msgs {
		if tok := cl.Publish(topic, 1, true, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
}

// publishWith connects a client with opts, publishes one message at QoS
// 1, waits for its PUBACK and disconnects.
func publishWith(t *testing.T, opts *mqtt.ClientOptions, topic string, retained bool, payload []byte) {
	t.Helper()
	cl := mqtt.NewClient(opts)
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(100)
	if tok := cl.Publish(topic, 1, retained, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
}

func signBatch(t *testing.T, f *verifiertest.Fixture, version, base uint64) []byte {
	t.Helper()
	doc, err := verifier.SignBatch(f.Root, verifier.Batch{Version: version, Base: base, IssuedAt: verifiertest.Epoch,
		Entries: []verifier.Entry{{Op: verifier.OpColour, Key: []byte("subject-pseudonym-01"), Time: verifiertest.Epoch.Unix() + int64(version), Expires: verifiertest.Epoch.Unix() + 86400, Colour: decoder.ColourRed}}})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestTrustCatchUp: a gate that was away finds the retained key set,
// snapshot and deltas and ends at the newest version; a forged delta
// published later is refused.
func TestTrustCatchUp(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	f := verifiertest.New(t)
	topics := wire.Topics{Fleet: "test"}
	msgs := map[string][]byte{topics.KeySet(): f.KeySetDoc, topics.Snapshot(): signBatch(t, f, 10, 0)}
	for v := uint64(11); v <= 40; v++ {
		msgs[topics.Delta(v)] = signBatch(t, f, v, v-1)
	}
	publishRetained(t, b.URL(), msgs)
	g := startGate(t, f, b.URL(), "G4", 30*time.Second)
	// Retained messages arrive in any order: wait for both.
	testkit.Eventually(t, "status version 40 and key set 1", 15*time.Second, func() bool {
		ks := g.v.KeySet()
		return g.st.Info().Version == 40 && ks != nil && ks.Version == 1
	})
	stranger, _ := decoder.NewSigner(verifiertest.EdKey(9), nil)
	forged, _ := verifier.SignBatch(stranger, verifier.Batch{Version: 41, Base: 40, IssuedAt: verifiertest.Epoch})
	publishRetained(t, b.URL(), map[string][]byte{topics.Delta(41): forged, topics.Delta(12): signBatch(t, f, 12, 11)})
	testkit.Eventually(t, "the forged delta refused", 15*time.Second, func() bool { return g.tr.Stats().Refused == 1 })
	testkit.Eventually(t, "the replayed delta seen as stale", 15*time.Second, func() bool { return g.tr.Stats().Stale >= 1 })
	if got := g.st.Info().Version; got != 40 {
		t.Errorf("version %d after forged and replayed deltas; want 40", got)
	}
}

// TestStatusRetained: the gate's retained status says online while it
// runs and offline after it stops. The running gate's status is published
// at QoS 0 (statusQoS), so a reader subscribed at QoS 1 gets it at QoS 0;
// the status of a clean stop goes at QoS 1.
func TestStatusRetained(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	f := verifiertest.New(t)
	g := startGate(t, f, b.URL(), "G5", 30*time.Second)
	topics := wire.Topics{Fleet: "test"}
	// read returns the status, its QoS and whether it came as retained
	// (a status published while the reader subscribed comes live).
	read := func() (wire.Status, byte, bool) {
		cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("test-reader"))
		if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		defer cl.Disconnect(100)
		got := make(chan mqtt.Message, 1)
		cl.Subscribe(topics.Status("G5"), 1, func(_ mqtt.Client, m mqtt.Message) {
			select {
			case got <- m:
			default:
			}
		})
		var s wire.Status
		var qos byte
		var retained bool
		select {
		case m := <-got:
			var sm *wire.Signed
			s, sm, _ = wire.OpenStatus(m.Payload())
			qos, retained = m.Qos(), m.Retained()
			if sm == nil || sm.Signer != "G5" || sm.Verify(wire.KindStatus, "test", wiretest.GatePub) != nil {
				t.Errorf("status %s not signed by G5", m.Payload())
			}
		case <-time.After(5 * time.Second):
		}
		return s, qos, retained
	}
	testkit.Eventually(t, "online status", 15*time.Second, func() bool { s, _, _ := read(); return s.Online })
	if _, qos, retained := read(); qos != statusQoS || !retained {
		t.Errorf("online status at QoS %d, retained %v; want QoS %d, retained", qos, retained, statusQoS)
	}
	g.stop()
	<-g.done
	s, qos, retained := read()
	if s.Online || s.Gate != "G5" {
		t.Fatalf("after stop: %+v; want offline", s)
	}
	if qos != 1 || !retained {
		t.Errorf("status of a clean stop at QoS %d, retained %v; want QoS 1, retained", qos, retained)
	}
}

// TestMultiPartSnapshot: a gate finds a snapshot's 40 retained parts (and
// a delta that follows it) on the broker and installs it; the parts go
// through the unqueued hand-over, so none is dropped and no resubscribe
// is needed.
func TestMultiPartSnapshot(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	f := verifiertest.New(t)
	topics := wire.Topics{Fleet: "test"}
	const parts, per = 40, 500
	msgs := map[string][]byte{topics.KeySet(): f.KeySetDoc}
	for p := range uint32(parts) {
		bt := verifier.Batch{Version: 50, IssuedAt: verifiertest.Epoch, Part: p, Parts: parts}
		for i := range per {
			bt.Entries = append(bt.Entries, verifier.Entry{Op: verifier.OpRevoke, Key: fmt.Appendf(nil, "voucher-%04d-%04d", p, i),
				Time: verifiertest.Epoch.Unix(), Expires: time.Now().Add(48 * time.Hour).Unix()})
		}
		doc, err := verifier.SignBatch(f.Root, bt)
		if err != nil {
			t.Fatal(err)
		}
		msgs[topics.SnapshotPart(p)] = doc
	}
	msgs[topics.Delta(51)] = signBatch(t, f, 51, 50)
	publishRetained(t, b.URL(), msgs)
	g := startGate(t, f, b.URL(), "G9", 30*time.Second)
	testkit.Eventually(t, "snapshot 50 and delta 51 installed", 20*time.Second, func() bool { return g.st.Info().Version == 51 })
	for _, k := range []string{"voucher-0000-0000", "voucher-0039-0499", "voucher-0017-0250"} {
		if ok, _ := g.st.Revoked([]byte(k)); !ok {
			t.Errorf("%s not revoked", k)
		}
	}
	if st := g.sync.State(); st.Dropped != 0 {
		t.Errorf("%d messages dropped", st.Dropped)
	}
}
