package mqttconn

import (
	"crypto/tls"
	"maps"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"wicket/sync/mqtttest"
	"wicket/sync/wire"
)

// The shipped broker config and ACL, run as they are.
const (
	shippedConf = "../../configs/mosquitto/station.conf"
	shippedACL  = "../../configs/mosquitto/wicket.acl"
)

// station is a broker running the shipped config with a test PKI.
type station struct {
	t   *testing.T
	b   *mqtttest.Broker
	pki *mqtttest.PKI
}

func startStation(t *testing.T) *station {
	t.Helper()
	acl, err := filepath.Abs(shippedACL)
	if err != nil {
		t.Fatal(err)
	}
	pki := mqtttest.NewPKI(t)
	b := mqtttest.StartMosquitto(t, mqtttest.ConfigFile(shippedConf, map[string]string{
		"cafile": pki.CAFile(), "certfile": pki.Broker.CertFile, "keyfile": pki.Broker.KeyFile, "acl_file": acl,
	}))
	return &station{t: t, b: b, pki: pki}
}

// conn is a Conn for a client whose certificate has CN cn.
func (s *station) conn(cn, clientID string) Conn {
	cert, key := s.pki.Issue(cn, false)
	return Conn{Broker: s.b.URL(), ClientID: clientID, CAFile: s.pki.CAFile(), CertFile: cert, KeyFile: key, KeepAlive: 5 * time.Second}
}

// client connects a receiver with the certificate CN cn and subscribes
// it to filters, every message going to its got channel.
func (s *station) client(cn string, filters ...string) *receiver {
	s.t.Helper()
	r := newReceiver(s.t, s.conn(cn, "id-"+cn))
	waitTok(s.t, "connect "+cn, r.Connect())
	for _, f := range filters {
		waitTok(s.t, cn+" subscribe "+f, r.Subscribe(f, 1, func(_ mqtt.Client, m mqtt.Message) { r.route(m) }))
	}
	return r
}

// dial opens a TLS connection to the broker with a certificate for cn.
func (s *station) dial(cn string) net.Conn {
	s.t.Helper()
	c := s.conn(cn, "id-"+cn)
	tc, err := TLSConfig(c.CAFile, c.CertFile, c.KeyFile)
	if err != nil {
		s.t.Fatal(err)
	}
	raw, err := tls.Dial("tcp", s.b.Addr(), tc)
	if err != nil {
		s.t.Fatal(err)
	}
	return raw
}

// dieWithWill connects as cn with a retained QoS 1 last will on topic
// and drops the connection without DISCONNECT, so the broker publishes
// the will if the ACL lets cn write topic.
func (s *station) dieWithWill(cn, topic, will string) {
	s.t.Helper()
	raw := s.dial(cn)
	defer raw.Close()
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion, cp.ClientIdentifier, cp.CleanSession, cp.Keepalive = "MQTT", 4, "id-"+cn, true, 30
	cp.WillFlag, cp.WillQos, cp.WillRetain, cp.WillTopic, cp.WillMessage = true, 1, true, topic, []byte(will)
	if err := cp.Write(raw); err != nil {
		s.t.Fatal(err)
	}
	// The broker may accept the connection or refuse a will it does not
	// allow; either way nothing may reach a subscriber.
	_, _ = packets.ReadPacket(raw)
}

// expect waits for r's next message and fails unless it is topic with
// payload: a message the ACL should have stopped arrives before it.
func expect(t *testing.T, r *receiver, who, topic, payload string) {
	t.Helper()
	m := r.next(t)
	if m.Topic() != topic || string(m.Payload()) != payload {
		t.Fatalf("%s received %s; want %q on %q (anything before it got through the ACL)", who, describe(m), payload, topic)
	}
}

// expectSet waits for len(want) messages, in any order (the client's
// handlers run concurrently), and fails unless they are want's, topic to
// payload.
func expectSet(t *testing.T, r *receiver, who string, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for range want {
		m := r.next(t)
		got[m.Topic()] = string(m.Payload())
	}
	if !maps.Equal(got, want) {
		t.Fatalf("%s received %q; want %q (anything else got through the ACL)", who, got, want)
	}
}

func publish(t *testing.T, c mqtt.Client, topic, payload string, retained bool) {
	t.Helper()
	waitTok(t, "publish "+topic, c.Publish(topic, 1, retained, payload))
}

// TestShippedBrokerConfig runs configs/mosquitto/station.conf and
// wicket.acl as shipped (only paths and the port changed) and checks
// what docs/SECURITY.md claims of them: each role can do its job and
// nothing more, anonymous and foreign clients are refused, a client
// cannot take another's session, and an oversized message is never
// delivered.
func TestShippedBrokerConfig(t *testing.T) {
	s := startStation(t)
	tp := wire.Topics{Fleet: "f"}
	authority := s.client("wicket-authority", tp.AllTrust(), tp.AllStatus())
	collector := s.client("wicket-collector-1", tp.AllRecords())
	shared := s.client("wicket-collector-2", tp.SharedRecords("c"))
	g1 := s.client("G1", tp.AllTrust(), tp.Ack("G1"))
	g2 := s.client("G2", tp.AllTrust(), tp.Ack("G2"))

	// Legitimate flows: the authority publishes trust, gates read it.
	publish(t, authority, tp.KeySet(), "keyset", true)
	for who, r := range map[string]*receiver{"authority": authority, "G1": g1, "G2": g2} {
		expect(t, r, who, tp.KeySet(), "keyset")
	}

	// A gate cannot write another gate's records, nor trust data; its
	// own records (after them on the same connection) arrive first. It
	// can write on another shard (collectors refuse that) and on the
	// unsharded topic of gates from before sharding.
	own, other := tp.Records("G1"), tp.ShardTopic("G1", (wire.Shard("G1")+1)%wire.Shards)
	publish(t, g1, tp.Records("G2"), "forged", false)
	publish(t, g1, tp.ShardTopic("G2", wire.Shard("G1")), "forged on G1's shard", false)
	publish(t, g1, other, "mine, other shard", false)
	publish(t, g1, own, "mine", false)
	publish(t, g1, "wicket/f/gate/G1/records", "unsharded", false)
	for who, r := range map[string]*receiver{"collector": collector, "shared-subscription collector": shared} {
		expectSet(t, r, who, map[string]string{other: "mine, other shard", own: "mine", "wicket/f/gate/G1/records": "unsharded"})
	}
	// A collector of a slice gets the shards of its slice only.
	waitTok(t, "unsubscribe", collector.Unsubscribe(tp.AllRecords()))
	for _, f := range tp.Filters(wire.Slice{I: wire.Shard("G1") % 4, N: 4}, "") {
		waitTok(t, "subscribe "+f, collector.Subscribe(f, 1, func(_ mqtt.Client, m mqtt.Message) { collector.route(m) }))
	}
	publish(t, g1, other, "mine, other slice", false)
	publish(t, g1, own, "mine, in the slice", false)
	expect(t, collector, "collector of G1's slice", own, "mine, in the slice")
	select {
	case m := <-collector.got:
		t.Fatalf("collector of G1's slice received %s; want nothing of another slice", describe(m))
	case <-time.After(200 * time.Millisecond):
	}
	expectSet(t, shared, "shared-subscription collector", map[string]string{other: "mine, other slice", own: "mine, in the slice"})
	publish(t, g1, tp.Delta(5), "forged delta", true)
	publish(t, g1, tp.KeySet(), "forged keyset", true)
	publish(t, g1, tp.Status("G2"), "forged status", true)
	publish(t, g1, tp.Status("G1"), "G1 status", true)
	expect(t, authority, "authority", tp.Status("G1"), "G1 status")

	// Acks: a gate cannot forge one, for itself or another gate, nor read
	// another gate's (Mosquitto 2.0 grants the subscription but checks
	// the ACL on delivery); a collector's ack reaches its gate only.
	waitTok(t, "G1 subscribes to G2's acks", g1.Subscribe(tp.Ack("G2"), 1, func(_ mqtt.Client, m mqtt.Message) { g1.route(m) }))
	publish(t, g1, tp.Ack("G2"), "forged ack", false)
	publish(t, g1, tp.Ack("G1"), "self ack", false)
	publish(t, collector, tp.Ack("G2"), "ack 1..5", false)
	publish(t, collector, tp.Ack("G1"), "ack 1..9", false)
	expect(t, g2, "G2", tp.Ack("G2"), "ack 1..5")
	expect(t, g1, "G1", tp.Ack("G1"), "ack 1..9")

	// A collector cannot publish trust data either; anything the authority
	// publishes after it comes first.
	publish(t, collector, tp.Delta(6), "collector delta", true)
	publish(t, authority, tp.Delta(7), "delta 7", true)
	expect(t, g1, "G1", tp.Delta(7), "delta 7")
	expect(t, g2, "G2", tp.Delta(7), "delta 7")
	expect(t, authority, "authority", tp.Delta(7), "delta 7")

	// A certificate cannot take another client's session: the broker
	// names the session after the certificate, so G3 asking for G2's
	// client id does not disconnect G2.
	g3 := newReceiver(t, s.conn("G3", "id-G2"))
	waitTok(t, "connect G3 as id-G2", g3.Connect())
	publish(t, collector, tp.Ack("G2"), "ack 6..8", false)
	expect(t, g2, "G2 after G3 connected with its client id", tp.Ack("G2"), "ack 6..8")

	// A gate's last will goes out on its own status topic only.
	s.dieWithWill("G6", tp.Status("G2"), "forged will")
	s.dieWithWill("G6", tp.Status("G6"), "G6 offline")
	expect(t, authority, "authority", tp.Status("G6"), "G6 offline")

	// An oversized message is refused: the broker disconnects the sender
	// and delivers nothing.
	if err := mqtttest.PublishLarge(s.dial("G5"), "id-G5", tp.Records("G5"), DefaultMaxMessage, false); err == nil {
		t.Error("the broker acknowledged a message over max_packet_size")
	}
	publish(t, g1, tp.Records("G1"), "after the big one", false)
	expect(t, collector, "collector", tp.Records("G1"), "after the big one")
	if n := collector.n.Oversized(); n != 0 {
		t.Errorf("collector saw %d oversized messages; want none delivered", n)
	}

	// Retained documents from a client without the right never stuck: a
	// fresh gate sees only the authority's.
	g4 := s.client("G4", tp.AllTrust())
	got := map[string]string{}
	for range 2 {
		m := g4.next(t)
		got[m.Topic()] = string(m.Payload())
	}
	if got[tp.KeySet()] != "keyset" || got[tp.Delta(7)] != "delta 7" {
		t.Errorf("retained trust for a new gate = %v; want only the authority's keyset and delta 7", got)
	}
	publish(t, authority, tp.Delta(8), "delta 8", true)
	expect(t, g4, "G4 after its retained documents", tp.Delta(8), "delta 8")
}

// TestShippedBrokerRefuses: the shipped broker refuses a client without a
// certificate, one with a certificate from another CA, and plaintext.
func TestShippedBrokerRefuses(t *testing.T) {
	s := startStation(t)
	other := mqtttest.NewPKI(t)
	cert, key := other.Issue("G1", false)
	for name, c := range map[string]Conn{
		"no certificate":           {Broker: s.b.URL(), ClientID: "anon", CAFile: s.pki.CAFile()},
		"another CA's":             {Broker: s.b.URL(), ClientID: "G1", CAFile: s.pki.CAFile(), CertFile: cert, KeyFile: key},
		"plaintext, no TLS at all": {Broker: "tcp://" + s.b.Addr(), ClientID: "anon"},
	} {
		o, err := c.Options()
		if err != nil {
			t.Fatal(err)
		}
		cl := mqtt.NewClient(o.SetConnectTimeout(5 * time.Second))
		tok := cl.Connect()
		if tok.WaitTimeout(waitLimit) && tok.Error() == nil {
			cl.Disconnect(0)
			t.Errorf("%s: connected; want refused", name)
		}
	}
}

// TestShippedBrokerQueue: the broker holds at most max_queued_messages
// (1000) for an offline gate, plus the in-flight window (20); what is
// over is dropped, and the gate, back, receives what was kept and then
// new messages.
func TestShippedBrokerQueue(t *testing.T) {
	s := startStation(t)
	tp := wire.Topics{Fleet: "f"}
	const sent, queued, inflight = 1100, 1000, 20
	got := make(chan string, sent+1)
	gate := newReceiver(t, s.conn("G1", "id-G1"))
	gate.AddRoute(tp.Ack("G1"), func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) })
	waitTok(t, "connect", gate.Connect())
	waitTok(t, "subscribe", gate.Subscribe(tp.Ack("G1"), 1, nil))
	gate.Disconnect(250)

	collector := s.client("wicket-collector-1")
	toks := make([]mqtt.Token, sent)
	for i := range toks {
		toks[i] = collector.Publish(tp.Ack("G1"), 1, false, strconv.Itoa(i))
	}
	for _, tok := range toks {
		waitTok(t, "publish", tok)
	}
	waitTok(t, "reconnect", gate.Connect())
	n := 0
	for n < queued {
		select {
		case <-got:
			n++
		case <-time.After(waitLimit):
			t.Fatalf("received %d queued messages; want at least %d", n, queued)
		}
	}
	publish(t, collector, tp.Ack("G1"), "after", false)
	for m := ""; m != "after"; {
		select {
		case m = <-got:
			if m != "after" {
				n++
			}
		case <-time.After(waitLimit):
			t.Fatalf("no message after the queue (%d received)", n)
		}
	}
	if n > queued+inflight {
		t.Errorf("an offline gate received %d of %d queued messages; want at most %d", n, sent, queued+inflight)
	}
	t.Logf("%d sent while offline, %d kept", sent, n)
}
