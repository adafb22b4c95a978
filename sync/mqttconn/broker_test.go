package mqttconn

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/internal/testkit"
	"wicket/sync/mqtttest"
)

const waitLimit = 20 * time.Second

// bigMessage is the size of the oversized retained message: 64 MB, so
// make test stays quick, or WICKET_BIG_MESSAGE_MB (250 reproduces the
// OOM-killed gate).
func bigMessage(t *testing.T) int64 {
	size := int64(64 << 20)
	if s := os.Getenv("WICKET_BIG_MESSAGE_MB"); s != "" {
		mb, err := strconv.ParseInt(s, 10, 64)
		if err != nil || mb <= 0 || mb > 255 {
			t.Fatalf("WICKET_BIG_MESSAGE_MB=%q: want 1 to 255", s)
		}
		size = mb << 20
	}
	return size
}

func waitTok(t *testing.T, what string, tok mqtt.Token) {
	t.Helper()
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("%s: %v", what, tok.Error())
	}
}

// receiver is a client built from Conn.Options whose default handler
// hands every message to DropHandler and then to got, as an application
// does that logs markers.
type receiver struct {
	mqtt.Client
	n   *Counters
	got chan mqtt.Message
}

func newReceiver(t *testing.T, c Conn, more ...func(*mqtt.ClientOptions)) *receiver {
	t.Helper()
	r := &receiver{n: new(Counters), got: make(chan mqtt.Message, 100)}
	c.Counters = r.n
	o, err := c.Options()
	if err != nil {
		t.Fatal(err)
	}
	drop := DropHandler(r.n)
	o.SetDefaultPublishHandler(func(cl mqtt.Client, m mqtt.Message) {
		drop(cl, m) // first, so the counters are up to date when got has m
		r.got <- m
	})
	for _, f := range more {
		f(o)
	}
	r.Client = mqtt.NewClient(o)
	t.Cleanup(func() { r.Disconnect(0) })
	return r
}

func (r *receiver) route(m mqtt.Message) { r.got <- m }

func (r *receiver) next(t *testing.T) mqtt.Message {
	t.Helper()
	select {
	case m := <-r.got:
		return m
	case <-time.After(waitLimit):
		t.Fatal("no message")
		return nil
	}
}

// publishRetained streams a retained QoS 1 message of size bytes to b
// over plain TCP.
func publishRetained(t *testing.T, b *mqtttest.Broker, topic string, size int64) {
	t.Helper()
	raw, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := mqtttest.PublishLarge(raw, "big-publisher", topic, size, true); err != nil {
		t.Fatalf("publish %d bytes: %v\n%s", size, err, b.Log())
	}
}

// describe is a message's topic, size and the start of its payload, for
// failure messages (a payload may be 250 MB).
func describe(m mqtt.Message) string {
	p := m.Payload()
	return fmt.Sprintf("%q, %d bytes: %q", m.Topic(), len(p), p[:min(len(p), 40)])
}

func publisher(t *testing.T, broker, id string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).SetProtocolVersion(4))
	waitTok(t, "connect "+id, c.Connect())
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

// TestOversizedRetained: a retained QoS 1 message far over the limit
// reaches a subscriber as a marker, its heap stays far below the
// message's size, the message after it arrives whole, and the session
// still delivers after a reconnect.
func TestOversizedRetained(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	size := bigMessage(t)
	const big = "wicket/f/trust/status/delta/9"
	publishRetained(t, b, big, size)

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := newReceiver(t, Conn{Broker: b.URL(), ClientID: "gate"})
	waitTok(t, "connect", r.Connect())
	waitTok(t, "subscribe", r.Subscribe("wicket/f/#", 1, func(_ mqtt.Client, m mqtt.Message) { r.route(m) }))
	m := r.next(t)
	topic, got, ok := Oversized(m)
	if !ok || topic != big || got != size || !m.Retained() || m.Qos() != 1 {
		t.Fatalf("first message %s (retained %v, QoS %d); want the marker of %s, %d bytes", describe(m), m.Retained(), m.Qos(), big, size)
	}
	pub := publisher(t, b.URL(), "publisher")
	waitTok(t, "publish", pub.Publish("wicket/f/trust/keyset", 1, false, "normal"))
	if m := r.next(t); m.Topic() != "wicket/f/trust/keyset" || string(m.Payload()) != "normal" {
		t.Fatalf("after the marker: %s; want the normal message", describe(m))
	}
	runtime.ReadMemStats(&after)
	const bound = 32 << 20
	if d := after.TotalAlloc - before.TotalAlloc; d > bound {
		t.Errorf("receiving a %d-byte message allocated %d bytes; want under %d", size, d, bound)
	}
	if after.HeapInuse > before.HeapInuse+bound {
		t.Errorf("heap in use grew from %d to %d bytes; want under +%d", before.HeapInuse, after.HeapInuse, bound)
	}
	t.Logf("%d-byte retained message: %d bytes allocated, heap in use %d → %d bytes",
		size, after.TotalAlloc-before.TotalAlloc, before.HeapInuse, after.HeapInuse)
	if r.n.Oversized() != 1 || r.n.Unrouted() != 1 {
		t.Errorf("counters: oversized %d, unrouted %d; want 1, 1", r.n.Oversized(), r.n.Unrouted())
	}

	r.Disconnect(250)
	waitTok(t, "publish while away", pub.Publish("wicket/f/gate/g/ack", 1, false, "queued"))
	waitTok(t, "reconnect", r.Connect())
	if m := r.next(t); m.Topic() != "wicket/f/gate/g/ack" || string(m.Payload()) != "queued" {
		t.Fatalf("after reconnecting: %s; want the queued message", describe(m))
	}
}

// TestOversizedTLS: the guard parses the plaintext stream inside TLS: an
// oversized message becomes a marker, a large one under the limit comes
// whole.
func TestOversizedTLS(t *testing.T) {
	pki := mqtttest.NewPKI(t)
	b := mqtttest.StartMosquitto(t, mqtttest.TLS(pki.Broker))
	cert, key := pki.Issue("client", false)
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := TLSConfig(pki.CAFile(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	tc.Certificates = []tls.Certificate{pair}
	const over = DefaultMaxMessage + 1
	raw, err := tls.Dial("tcp", b.Addr(), tc)
	if err != nil {
		t.Fatal(err)
	}
	if err := mqtttest.PublishLarge(raw, "big-publisher", "big/over", over, true); err != nil {
		t.Fatalf("publish: %v\n%s", err, b.Log())
	}
	r := newReceiver(t, Conn{Broker: b.URL(), ClientID: "gate", CAFile: pki.CAFile(), CertFile: cert, KeyFile: key})
	waitTok(t, "connect", r.Connect())
	waitTok(t, "subscribe", r.Subscribe("big/#", 1, func(_ mqtt.Client, m mqtt.Message) { r.route(m) }))
	m := r.next(t)
	if topic, size, ok := Oversized(m); !ok || topic != "big/over" || size != over {
		t.Fatalf("got %s; want the marker of big/over, %d bytes", describe(m), int64(over))
	}
	whole := bytes.Repeat([]byte{0xa5}, 4<<20)
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("publisher").SetTLSConfig(tc))
	waitTok(t, "connect publisher", pub.Connect())
	defer pub.Disconnect(0)
	waitTok(t, "publish", pub.Publish("big/under", 1, false, whole))
	if m := r.next(t); m.Topic() != "big/under" || !bytes.Equal(m.Payload(), whole) {
		t.Fatalf("got %q with %d bytes; want big/under with %d", m.Topic(), len(m.Payload()), len(whole))
	}
}

// TestUnroutedDoNotWedge: more queued QoS 1 messages than the broker's
// in-flight window (20), arriving before any route exists, are
// acknowledged and dropped by the default handler, so the session goes
// on delivering. With paho's bare options the same session wedges, which
// is the failure the handler prevents.
func TestUnroutedDoNotWedge(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	const queued = 30
	for _, withDrop := range []bool{true, false} {
		id := "gate-" + strconv.FormatBool(withDrop)
		// A first connection leaves a persistent session subscribed to
		// junk/# and ok/#, then goes away.
		first := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID(id).SetCleanSession(false).SetProtocolVersion(4))
		waitTok(t, "connect", first.Connect())
		waitTok(t, "subscribe", first.SubscribeMultiple(map[string]byte{"junk/#": 1, "ok/#": 1}, nil))
		first.Disconnect(250)
		pub := publisher(t, b.URL(), "publisher-"+id)
		for i := range queued {
			waitTok(t, "publish junk", pub.Publish("junk/"+strconv.Itoa(i), 1, false, "junk"))
		}

		var n Counters
		o, err := Conn{Broker: b.URL(), ClientID: id, Counters: &n}.Options()
		if err != nil {
			t.Fatal(err)
		}
		if !withDrop {
			o = mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID(id).SetCleanSession(false).SetProtocolVersion(4)
		}
		ok := make(chan string, 1)
		c := mqtt.NewClient(o)
		c.AddRoute("ok/#", func(_ mqtt.Client, m mqtt.Message) { ok <- string(m.Payload()) })
		waitTok(t, "reconnect", c.Connect())
		waitTok(t, "publish ok", pub.Publish("ok/1", 1, false, "fresh"))
		wait := waitLimit
		if !withDrop {
			wait = 2 * time.Second
		}
		select {
		case m := <-ok:
			if !withDrop {
				t.Errorf("without the default handler the session still delivered %q: the test no longer shows the wedge", m)
			}
		case <-time.After(wait):
			if withDrop {
				t.Errorf("after %d unrouted queued messages the session delivers nothing more", queued)
			}
		}
		// paho runs handlers concurrently: the last junk message may
		// still be in its handler when ok/1 arrives.
		if withDrop {
			testkit.Eventually(t, fmt.Sprintf("unrouted = %d", queued), waitLimit, func() bool { return n.Unrouted() == queued })
		}
		c.Disconnect(0)
	}
}

// TestGuardOwnOptions: a client that builds its own paho options, with
// manual acknowledgement and its own default handler (as the collector
// does), gets the same bound from Guard.
func TestGuardOwnOptions(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	const over = DefaultMaxMessage + 1
	publishRetained(t, b, "rec/big", over)
	var n Counters
	got := make(chan mqtt.Message, 10)
	o := mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("collector").SetProtocolVersion(4).
		SetAutoAckDisabled(true).SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
		got <- m
		m.Ack()
	})
	c := mqtt.NewClient(Guard(o, 0, &n))
	waitTok(t, "connect", c.Connect())
	defer c.Disconnect(0)
	waitTok(t, "subscribe", c.Subscribe("rec/#", 1, nil))
	publish := publisher(t, b.URL(), "publisher")
	waitTok(t, "publish", publish.Publish("rec/small", 1, false, "small"))
	r := &receiver{got: got}
	m := r.next(t)
	if topic, size, ok := Oversized(m); !ok || topic != "rec/big" || size != over {
		t.Fatalf("first message %s; want the marker of rec/big, %d bytes", describe(m), int64(over))
	}
	if m := r.next(t); m.Topic() != "rec/small" || string(m.Payload()) != "small" {
		t.Fatalf("second message %s; want rec/small", describe(m))
	}
	if n.Oversized() != 1 {
		t.Errorf("oversized = %d; want 1", n.Oversized())
	}
}

// TestOversizedSlowLink: dropping an oversized message on a link slower
// than the keepalive does not cost the connection. The broker's PINGRESP
// waits behind the payload; the guard's own PINGRESPs tell paho the link
// is alive, so the marker and the next message arrive on the same
// connection.
func TestOversizedSlowLink(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	const over = DefaultMaxMessage + 1
	publishRetained(t, b, "slow/big", over)
	proxy := mqtttest.StartProxy(t, b.Addr())
	lost := make(chan error, 1)
	r := newReceiver(t, Conn{Broker: proxy.URL(), ClientID: "gate", KeepAlive: time.Second}, func(o *mqtt.ClientOptions) {
		o.SetConnectionLostHandler(func(_ mqtt.Client, err error) { lost <- err })
	})
	waitTok(t, "connect", r.Connect())
	// About 2.4 s for the message at 4 MB/s: the keepalive (1 s) plus
	// its ping timeout (0.5 s) pass while it streams in.
	proxy.Throttle(4 << 20)
	start := time.Now()
	waitTok(t, "subscribe", r.Subscribe("slow/#", 1, func(_ mqtt.Client, m mqtt.Message) { r.route(m) }))
	m := r.next(t)
	if topic, size, ok := Oversized(m); !ok || topic != "slow/big" || size != over {
		t.Fatalf("got %s; want the marker of slow/big", describe(m))
	}
	took := time.Since(start)
	if took < 3*time.Second/2 {
		t.Fatalf("the message took %v; the test needs it to take longer than keepalive and ping timeout (1.5 s)", took)
	}
	pub := publisher(t, b.URL(), "publisher")
	waitTok(t, "publish", pub.Publish("slow/next", 1, false, "next"))
	if m := r.next(t); m.Topic() != "slow/next" {
		t.Fatalf("after the marker: %s; want slow/next", describe(m))
	}
	select {
	case err := <-lost:
		t.Fatalf("connection lost while the oversized message streamed in (%v): %v", took, err)
	default:
	}
}
