package mqttsync

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/internal/testkit"
	"wicket/sync/mqttconn"
	"wicket/sync/mqtttest"
	"wicket/sync/wire"
	"wicket/sync/wire/wiretest"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// revokeDelta is a signed delta (version, base version-1) revoking key.
func revokeDelta(t testing.TB, f *verifiertest.Fixture, version uint64, key string) []byte {
	t.Helper()
	doc, err := verifier.SignBatch(f.Root, verifier.Batch{Version: version, Base: version - 1, IssuedAt: verifiertest.Epoch,
		Entries: []verifier.Entry{{Op: verifier.OpRevoke, Key: []byte(key), Time: verifiertest.Epoch.Unix() + int64(version), Expires: time.Now().Add(48 * time.Hour).Unix()}}})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// anonymous connects a client that is not part of the fleet.
func anonymous(t testing.TB, broker, id string) mqtt.Client {
	t.Helper()
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(id))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { cl.Disconnect(100) })
	return cl
}

// publishAll publishes payloads on one topic at QoS 1 and waits for every
// PUBACK.
func publishAll(t testing.TB, cl mqtt.Client, topic string, retained bool, payloads ...[]byte) {
	t.Helper()
	toks := make([]mqtt.Token, 0, len(payloads))
	for _, p := range payloads {
		toks = append(toks, cl.Publish(topic, 1, retained, p))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}
}

// synced starts a gate on key set 1 and snapshot 10, and waits until it
// has both; opts change its Config.
func synced(t *testing.T, f *verifiertest.Fixture, broker, connURL, id string, opts ...func(*Config)) *gate {
	t.Helper()
	topics := wire.Topics{Fleet: "test"}
	enrol(t, f, broker, id)
	publishRetained(t, broker, map[string][]byte{topics.KeySet(): f.KeySetDoc, topics.Snapshot(): signBatch(t, f, 10, 0)})
	g := startGateConn(t, f, mqttconn.Conn{Broker: connURL, ClientID: "wicket-test-" + id, KeepAlive: 5 * time.Second}, id, 30*time.Second, opts...)
	testkit.Eventually(t, "key set 1 and snapshot 10", 15*time.Second, func() bool {
		return g.st.Info().Version >= 10 && g.v.KeySet() != nil
	})
	return g
}

// TestQueuedSessionDoesNotWedge (seen-problem 1): while the gate is off,
// junk on wicket/<fleet>/trust/junk and genuine deltas queue on its
// persistent session, more than Mosquitto's in-flight window of 20. Once
// restarted the gate works through them, and the next genuine revocation
// is in force within 2 s of its reconnect.
func TestQueuedSessionDoesNotWedge(t *testing.T) {
	for _, tc := range []struct{ junk, deltas int }{{25, 0}, {0, 25}, {100, 25}, {25, 100}, {1000, 25}} {
		t.Run(fmt.Sprintf("junk%d_deltas%d", tc.junk, tc.deltas), func(t *testing.T) {
			b := mqtttest.StartMosquitto(t)
			f := verifiertest.New(t)
			topics := wire.Topics{Fleet: "test"}
			g := synced(t, f, b.URL(), b.URL(), "GW")
			g.halt()

			anon := anonymous(t, b.URL(), "anonymous")
			last := uint64(10)
			for range tc.deltas {
				last++
				publishAll(t, anon, topics.Delta(last), true, revokeDelta(t, f, last, fmt.Sprintf("queued-voucher-%05d", last)))
			}
			junk := make([][]byte, tc.junk)
			for i := range junk {
				junk[i] = fmt.Appendf(nil, "junk %d", i)
			}
			publishAll(t, anon, topics.AllTrust()[:len(topics.AllTrust())-1]+"junk", false, junk...)

			g.start(t)
			testkit.Eventually(t, "the reconnect", 10*time.Second, func() bool { return g.sync.State().Connected })
			reconnected := time.Now()
			next := last + 1
			publishAll(t, anon, topics.Delta(next), true, revokeDelta(t, f, next, "the-next-revocation"))
			testkit.Eventually(t, "the next revocation in force", 2*time.Second-time.Since(reconnected), func() bool {
				ok, _ := g.st.Revoked([]byte("the-next-revocation"))
				return ok
			})
			t.Logf("next revocation in force %v after the reconnect", time.Since(reconnected).Round(time.Millisecond))
			if v := g.st.Info().Version; v != next {
				t.Errorf("version %d; want %d", v, next)
			}
			// Mosquitto queues at most 1000 messages per session
			// (max_queued_messages); the rest it drops itself.
			want := uint64(min(tc.junk, 1000-tc.deltas))
			testkit.Eventually(t, fmt.Sprintf("%d junk messages acknowledged and dropped", want), 10*time.Second, func() bool {
				return g.sync.State().Ignored == want
			})
		})
	}
}

// TestLostDeltaResync: a delta lost on the way (published while the gate
// was off and gone from its session) leaves the next one held; the gate
// asks for the retained documents again and applies both.
func TestLostDeltaResync(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	f := verifiertest.New(t)
	topics := wire.Topics{Fleet: "test"}
	g := synced(t, f, b.URL(), b.URL(), "GL")
	g.halt()
	// Delta 11 is retained, and queued on the gate's session; a client
	// using the gate's id takes it off the queue, so the gate's next
	// connect finds a session without it (as after a broker that dropped
	// queued messages on a full queue).
	publishRetained(t, b.URL(), map[string][]byte{topics.Delta(11): revokeDelta(t, f, 11, "lost-voucher-0011")})
	drain := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("wicket-test-GL").SetCleanSession(false).
		SetDefaultPublishHandler(func(mqtt.Client, mqtt.Message) {}))
	if tok := drain.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	anon := anonymous(t, b.URL(), "anonymous")
	// The session's queued delta 11 went to the drain; a marker behind it
	// shows the queue is empty.
	got := make(chan struct{})
	drain.Subscribe(topics.AllTrust()[:len(topics.AllTrust())-1]+"marker", 1, func(mqtt.Client, mqtt.Message) { close(got) })
	publishAll(t, anon, topics.AllTrust()[:len(topics.AllTrust())-1]+"marker", false, []byte("x"))
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("marker not delivered")
	}
	drain.Disconnect(100)

	g.start(t)
	testkit.Eventually(t, "the reconnect", 10*time.Second, func() bool { return g.sync.State().Connected })
	reconnected := time.Now()
	publishAll(t, anon, topics.Delta(12), true, revokeDelta(t, f, 12, "next-voucher-0012"))
	testkit.Eventually(t, "deltas 11 and 12 in force", 3*time.Second, func() bool { return g.st.Info().Version == 12 })
	t.Logf("in force %v after the reconnect", time.Since(reconnected).Round(time.Millisecond))
	for _, k := range []string{"lost-voucher-0011", "next-voucher-0012"} {
		if ok, _ := g.st.Revoked([]byte(k)); !ok {
			t.Errorf("%s not revoked", k)
		}
	}
}

// TestReconnectBytes: a reconnect to a live session when nothing changed
// receives at most 1 KB; the first connect, which subscribes, receives
// the retained trust data (what every reconnect cost when each one
// subscribed again).
func TestReconnectBytes(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	p := mqtttest.StartProxy(t, b.Addr())
	f := verifiertest.New(t)
	topics := wire.Topics{Fleet: "test"}
	deltas := map[string][]byte{}
	for v := uint64(11); v <= 40; v++ {
		deltas[topics.Delta(v)] = revokeDelta(t, f, v, fmt.Sprintf("voucher-%05d", v))
	}
	publishRetained(t, b.URL(), deltas)
	g := synced(t, f, b.URL(), p.URL(), "GB")
	testkit.Eventually(t, "version 40", 10*time.Second, func() bool { return g.st.Info().Version == 40 })
	anon := anonymous(t, b.URL(), "anonymous")
	marker := topics.AllTrust()[:len(topics.AllTrust())-1] + "marker"
	// A marker the gate ignores shows everything before it has arrived.
	settle := func() int64 {
		want := g.sync.State().Ignored + 1
		publishAll(t, anon, marker, false, []byte("m"))
		testkit.Eventually(t, "the marker", 10*time.Second, func() bool { return g.sync.State().Ignored == want })
		return p.Stats().BytesDown
	}
	first := settle()
	subs := g.sync.State().Subscribes
	for i := range 3 {
		attempts := g.sync.State().Attempts
		before := p.Stats().BytesDown
		p.CutAll()
		testkit.Eventually(t, "the reconnect", 10*time.Second, func() bool {
			st := g.sync.State()
			return st.Attempts > attempts && st.Connected
		})
		got := settle() - before
		t.Logf("reconnect %d: %d bytes received (marker included); first connect: %d bytes", i+1, got, first)
		if got > 1024 {
			t.Errorf("reconnect %d received %d bytes; want <= 1024", i+1, got)
		}
	}
	if s := g.sync.State().Subscribes; s != subs {
		t.Errorf("%d subscriptions on reconnects to a live session; want none", s-subs)
	}
}

// TestForgedAckRefused (seen-problem 2): unsigned acks, acks signed by a
// key the roster does not hold for a collector, acks for another gate and
// acks of ranges the gate never sent, or sent and had acknowledged
// already, delete nothing; a genuine ack of a batch in flight does.
func TestForgedAckRefused(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	f := verifiertest.New(t)
	enrol(t, f, b.URL(), "GA")
	g := startGate(t, f, b.URL(), "GA", time.Hour)
	testkit.Eventually(t, "the roster", 10*time.Second, func() bool { return g.sync.Roster() != nil })
	// Committed while sync is off, the 30 records go out as batches
	// 1..10, 11..20, 21..30.
	g.halt()
	g.appendN(t, 30)
	g.start(t)
	testkit.Eventually(t, "30 records sent", 10*time.Second, func() bool { return g.sync.State().Published >= 30 })
	anon := anonymous(t, b.URL(), "anonymous")
	unsigned, _ := json.Marshal(wire.Ack{Gate: "GA", From: 1, Through: 1<<64 - 1})
	stranger, _ := wire.Sign(wire.KindAck, "test", wiretest.CollectorID, verifiertest.EdKey(99), wire.Ack{Gate: "GA", From: 1, Through: 10})
	asGate, _ := wire.Sign(wire.KindAck, "test", "GA", wiretest.GateKey, wire.Ack{Gate: "GA", From: 1, Through: 10})
	forged := [][]byte{
		unsigned, stranger, asGate,
		signedAck("GB", 1, 10),
		signedAck("GA", 1, 1<<64-1),
		signedAck("GA", 1, 30),
		signedAck("GA", 5, 15),
		signedAck("GA", 31, 40),
		make([]byte, wire.MaxAckMessage+1),
	}
	publishAll(t, anon, g.fleet.Ack("GA"), false, forged...)
	testkit.Eventually(t, "the forged acks refused", 10*time.Second, func() bool { return g.sync.State().AcksRefused == uint64(len(forged)) })
	if n := outboxLen(t, g.st); n != 30 {
		t.Fatalf("outbox %d after forged acks; want 30", n)
	}
	// A batch the gate sent is acknowledged once; the same ack again is
	// refused.
	genuine := signedAck("GA", 1, 10)
	publishAll(t, anon, g.fleet.Ack("GA"), false, genuine)
	testkit.Eventually(t, "the batch acked", 10*time.Second, func() bool { return outboxLen(t, g.st) == 20 })
	publishAll(t, anon, g.fleet.Ack("GA"), false, genuine)
	testkit.Eventually(t, "the repeated ack refused", 10*time.Second, func() bool { return g.sync.State().AcksRefused == uint64(len(forged))+1 })
}

// TestResyncResubscribes: Resync (after the gate dropped damaged trust
// data) subscribes again on a live session, so the broker resends the
// retained documents.
func TestResyncResubscribes(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	f := verifiertest.New(t)
	g := synced(t, f, b.URL(), b.URL(), "GR")
	subs, stale := g.sync.State().Subscribes, g.tr.Stats().Stale
	g.sync.Resync()
	testkit.Eventually(t, "a subscription", 10*time.Second, func() bool { return g.sync.State().Subscribes == subs+1 })
	// The key set and snapshot come again, and are seen as not newer.
	testkit.Eventually(t, "the retained documents again", 10*time.Second, func() bool { return g.tr.Stats().Stale >= stale+2 })
}

// TestOversizedRetained (seen-problem 4): a retained message far over the
// read limit on a trust topic is streamed past, counted and dropped; the
// gate's memory does not hold it, and the next genuine revocation is in
// force as usual, across a reconnect that brings the big message again.
func TestOversizedRetained(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	f := verifiertest.New(t)
	topics := wire.Topics{Fleet: "test"}
	g := synced(t, f, b.URL(), b.URL(), "GO")
	const size = 3 * mqttconn.DefaultMaxMessage
	conn, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := mqtttest.PublishLarge(conn, "anonymous-large", topics.Delta(999), size, true); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the oversized message counted", 20*time.Second, func() bool { return g.sync.State().Oversized == 1 })
	anon := anonymous(t, b.URL(), "anonymous")
	publishAll(t, anon, topics.Delta(11), true, revokeDelta(t, f, 11, "after-the-big-one"))
	testkit.Eventually(t, "the next revocation in force", 5*time.Second, func() bool {
		ok, _ := g.st.Revoked([]byte("after-the-big-one"))
		return ok
	})
	// A resubscription brings the retained big message again: dropped
	// again, and nothing else is lost.
	g.sync.Resync()
	testkit.Eventually(t, "the oversized message dropped again", 20*time.Second, func() bool { return g.sync.State().Oversized == 2 })
	if v := g.st.Info().Version; v != 11 {
		t.Errorf("version %d; want 11", v)
	}
}

// TestTrustQoS0: with Config.TrustQoS0 the trust tree is subscribed at
// QoS 0 and again on every connect, so a delta published while the gate
// was away arrives after the reconnect although the broker kept the
// session and queued nothing for it (Mosquitto queues no QoS 0 message
// for an absent client): it comes as a retained message of the new
// subscription. The revocation it carries is in force.
func TestTrustQoS0(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	p := mqtttest.StartProxy(t, b.Addr())
	f := verifiertest.New(t)
	topics := wire.Topics{Fleet: "test"}
	publishRetained(t, b.URL(), map[string][]byte{topics.Delta(11): revokeDelta(t, f, 11, "voucher-00011")})
	g := synced(t, f, b.URL(), p.URL(), "GQ", func(c *Config) { c.TrustQoS0 = true })
	testkit.Eventually(t, "version 11", 10*time.Second, func() bool { return g.st.Info().Version == 11 })
	subs := g.sync.State().Subscribes
	attempts := g.sync.State().Attempts
	p.Refuse(time.Hour)
	p.CutAll()
	testkit.Eventually(t, "the gate to notice the cut", 15*time.Second, func() bool { return !g.sync.State().Connected })
	publishRetained(t, b.URL(), map[string][]byte{topics.Delta(12): revokeDelta(t, f, 12, "voucher-00012")})
	p.Refuse(0)
	testkit.Eventually(t, "the reconnect", 15*time.Second, func() bool {
		st := g.sync.State()
		return st.Attempts > attempts && st.Connected
	})
	testkit.Eventually(t, "delta 12 after the reconnect", 15*time.Second, func() bool { return g.st.Info().Version == 12 })
	if ok, _ := g.st.Revoked([]byte("voucher-00012")); !ok {
		t.Errorf("voucher-00012 not revoked after the reconnect")
	}
	if got := g.sync.State().Subscribes; got <= subs {
		t.Errorf("%d subscriptions after the reconnect, %d before; want the trust tree subscribed again", got, subs)
	}
}

// missClient is a paho client whose trust tree subscription loses the
// first delivery of one topic, as a gate that subscribed at the moment a
// delta was published can miss it on a NATS cluster, and which notes the
// filters unsubscribed.
type missClient struct {
	Client
	tree, miss string
	mu         sync.Mutex
	missed     bool
	unsubs     []string
}

func (m *missClient) Subscribe(filter string, qos byte, cb mqtt.MessageHandler) mqtt.Token {
	if filter == m.tree {
		inner := cb
		cb = func(c mqtt.Client, msg mqtt.Message) {
			m.mu.Lock()
			lose := !m.missed && msg.Topic() == m.miss
			m.missed = m.missed || lose
			m.mu.Unlock()
			if !lose {
				inner(c, msg)
			}
		}
	}
	return m.Client.Subscribe(filter, qos, cb)
}

func (m *missClient) Unsubscribe(filters ...string) mqtt.Token {
	m.mu.Lock()
	m.unsubs = append(m.unsubs, filters...)
	m.mu.Unlock()
	return m.Client.Unsubscribe(filters...)
}

func (m *missClient) unsubscribed(filter string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Contains(m.unsubs, filter)
}

// TestTrustQoS0SecondLook: a gate subscribed to the trust tree at QoS 0
// that missed a delta published as it subscribed gets it from its second
// look at the revocation data (secondLook), which ends with an
// unsubscribe; at QoS 0 nothing else would bring it before the next
// delta.
func TestTrustQoS0SecondLook(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	f := verifiertest.New(t)
	topics := wire.Topics{Fleet: "test"}
	publishRetained(t, b.URL(), map[string][]byte{topics.Delta(11): revokeDelta(t, f, 11, "voucher-00011")})
	mc := &missClient{tree: topics.AllTrust(), miss: topics.Delta(12)}
	g := synced(t, f, b.URL(), b.URL(), "GL2", func(c *Config) {
		c.TrustQoS0, c.lookWait, c.lookHold = true, 2*time.Second, 500*time.Millisecond
		c.NewClient = func(o *mqtt.ClientOptions) Client { mc.Client = mqtt.NewClient(o); return mc }
	})
	testkit.Eventually(t, "version 11", 10*time.Second, func() bool { return g.st.Info().Version == 11 })
	publishRetained(t, b.URL(), map[string][]byte{topics.Delta(12): revokeDelta(t, f, 12, "voucher-00012")})
	testkit.Eventually(t, "delta 12 missed once", 10*time.Second, func() bool {
		mc.mu.Lock()
		defer mc.mu.Unlock()
		return mc.missed
	})
	testkit.Eventually(t, "delta 12 from the second look", 15*time.Second, func() bool { return g.st.Info().Version == 12 })
	if ok, _ := g.st.Revoked([]byte("voucher-00012")); !ok {
		t.Errorf("voucher-00012 not revoked")
	}
	testkit.Eventually(t, "the second look's subscription ended", 10*time.Second, func() bool { return mc.unsubscribed(topics.AllTrustStatus()) })
}
