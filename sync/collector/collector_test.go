package collector

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5/pgxpool"

	"wicket/sync/mqtttest"
	"wicket/sync/wire"
	"wicket/sync/wire/wiretest"
)

// waitLimit bounds every wait for the broker, the collector or the
// database in these tests.
const waitLimit = 20 * time.Second

// watchedClient wraps the real paho client of a collector under test. It
// signals each completed subscription and checks, when the collector
// publishes an ack, that the acked rows are already in PostgreSQL.
type watchedClient struct {
	Client
	t          testing.TB
	pool       *pgxpool.Pool
	topics     wire.Topics
	subscribed chan struct{}
}

// Connect signals subscribed when the broker kept the session: its
// subscription is still in place.
func (w *watchedClient) Connect() mqtt.Token {
	tok := w.Client.Connect()
	go func() {
		<-tok.Done()
		if ct, ok := tok.(*mqtt.ConnectToken); ok && tok.Error() == nil && ct.SessionPresent() {
			w.subscribed <- struct{}{}
		}
	}()
	return tok
}

func (w *watchedClient) Subscribe(topic string, qos byte, cb mqtt.MessageHandler) mqtt.Token {
	tok := w.Client.Subscribe(topic, qos, cb)
	go func() {
		<-tok.Done()
		if tok.Error() == nil && topic != w.topics.Roster() {
			w.subscribed <- struct{}{}
		}
	}()
	return tok
}

// Unsubscribe signals subscribed too, once the broker confirmed it.
func (w *watchedClient) Unsubscribe(topics ...string) mqtt.Token {
	tok := w.Client.Unsubscribe(topics...)
	go func() {
		<-tok.Done()
		if tok.Error() == nil {
			w.subscribed <- struct{}{}
		}
	}()
	return tok
}

func (w *watchedClient) Publish(topic string, qos byte, retained bool, payload any) mqtt.Token {
	gate, err := w.topics.GateOf(topic)
	if err != nil || !strings.HasSuffix(topic, "/ack") {
		w.t.Errorf("collector published to %q; want an ack topic", topic)
	}
	a, err := wiretest.OpenAck(w.topics.Fleet, payload.([]byte))
	if err != nil {
		w.t.Errorf("collector published a bad ack %q: %v", payload, err)
	}
	if qos != ackQoS || retained {
		w.t.Errorf("ack published with QoS %d, retained %v; want QoS %d, not retained", qos, retained, ackQoS)
	}
	var n uint64
	// In a failover test the rows may have been committed on a primary
	// that has just been stopped, with the standby not yet promoted: no
	// server takes a read-write session then. The check asks again until
	// one does (the synchronous standby holds every committed row).
	deadline := time.Now().Add(waitLimit)
	for {
		err = w.pool.QueryRow(context.Background(),
			"SELECT count(*) FROM wicket_records WHERE gate = $1 AND seq BETWEEN $2 AND $3",
			gate, int64(a.From), int64(a.Through)).Scan(&n)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		w.t.Errorf("check rows before ack: %v", err)
	} else if n != a.Through-a.From+1 {
		w.t.Errorf("ack %d..%d of gate %s published with %d of its rows stored", a.From, a.Through, gate, n)
	}
	return w.Client.Publish(topic, qos, retained, payload)
}

// startCollector runs a collector that stores with w until stop is
// called or the test ends; its acks are checked against pool. The client
// is cfg.NewClient's (default paho's), watched. It returns once the
// collector has subscribed.
func startCollector(t *testing.T, pool *pgxpool.Pool, w *Writer, cfg Config, log *slog.Logger) (c *Collector, watched *watchedClient, stop func()) {
	t.Helper()
	watched = &watchedClient{t: t, pool: pool, topics: wire.Topics{Fleet: cfg.Fleet}, subscribed: make(chan struct{}, 16)}
	newClient := cfg.NewClient
	if newClient == nil {
		newClient = NewPahoClient
	}
	cfg.NewClient = func(o *mqtt.ClientOptions) Client {
		watched.Client = newClient(o)
		return watched
	}
	c, err := New(withIdentity(t, cfg), w, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	waitSubscribed(t, watched)
	return c, watched, stop
}

func waitSubscribed(t *testing.T, w *watchedClient) {
	t.Helper()
	select {
	case <-w.subscribed:
	case <-time.After(waitLimit):
		t.Fatal("collector did not subscribe")
	}
}

// fakeGate publishes records like a gate and receives the acks of every
// gate of the fleet.
type fakeGate struct {
	t      *testing.T
	broker string
	client mqtt.Client
	topics wire.Topics
	acks   chan gateAck
}

type gateAck struct {
	gate string
	ack  wire.Ack
}

func newFakeGate(t *testing.T, broker, fleet string) *fakeGate {
	t.Helper()
	g := &fakeGate{t: t, broker: broker, topics: wire.Topics{Fleet: fleet}, acks: make(chan gateAck, 1000)}
	o := mqtt.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("fake-gate-%s-%d", fleet, time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(false).SetProtocolVersion(4)
	g.client = mqtt.NewClient(o)
	if tok := g.client.Connect(); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("fake gate connect: %v", tok.Error())
	}
	t.Cleanup(func() { g.client.Disconnect(100) })
	tok := g.client.Subscribe(g.topics.Ack("+"), 1, func(_ mqtt.Client, m mqtt.Message) {
		gate, err := g.topics.GateOf(m.Topic())
		if err != nil {
			t.Errorf("ack on %q: %v", m.Topic(), err)
			return
		}
		if m.Retained() {
			t.Errorf("ack on %q is retained", m.Topic())
		}
		// Subscribed at QoS 1: the ack comes at the QoS it was published at.
		if m.Qos() != ackQoS {
			t.Errorf("ack on %q at QoS %d; want %d", m.Topic(), m.Qos(), ackQoS)
		}
		a, err := wiretest.OpenAck(fleet, m.Payload())
		if err == nil && a.Gate != gate {
			err = fmt.Errorf("ack names gate %q", a.Gate)
		}
		if err != nil {
			t.Errorf("ack on %q: %v", m.Topic(), err)
			return
		}
		g.acks <- gateAck{gate, a}
	})
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("fake gate subscribe: %v", tok.Error())
	}
	return g
}

// publish sends payload to the records topic of gate, QoS 1.
func (g *fakeGate) publish(gate string, payload []byte) {
	g.t.Helper()
	tok := g.client.Publish(g.topics.Records(gate), 1, false, payload)
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		g.t.Fatalf("fake gate publish: %v", tok.Error())
	}
}

// send publishes r on the records topic of gate, signed as gate, which
// it enrols first.
func (g *fakeGate) send(gate string, r *wire.Records) {
	g.t.Helper()
	g.enrol(gate)
	g.publish(gate, wiretest.Records(g.topics.Fleet, gate, r))
}

// wantAck waits for the next ack and checks it.
func (g *fakeGate) wantAck(gate string, from, through uint64) {
	g.t.Helper()
	select {
	case a := <-g.acks:
		if a.gate != gate || a.ack.From != from || a.ack.Through != through {
			g.t.Fatalf("ack = %s %d..%d; want %s %d..%d", a.gate, a.ack.From, a.ack.Through, gate, from, through)
		}
	case <-time.After(waitLimit):
		g.t.Fatalf("no ack of %s %d..%d", gate, from, through)
	}
}

// wantAcks waits for the acks in want, in any order.
func (g *fakeGate) wantAcks(want ...gateAck) {
	g.t.Helper()
	missing := map[gateAck]bool{}
	for _, a := range want {
		missing[a] = true
	}
	timeout := time.After(waitLimit)
	for len(missing) > 0 {
		select {
		case a := <-g.acks:
			if !missing[a] {
				g.t.Fatalf("unexpected ack %s %d..%d", a.gate, a.ack.From, a.ack.Through)
			}
			delete(missing, a)
		case <-timeout:
			g.t.Fatalf("acks missing: %v", missing)
		}
	}
}

func (g *fakeGate) wantNoAck() {
	g.t.Helper()
	select {
	case a := <-g.acks:
		g.t.Fatalf("unexpected ack %s %d..%d", a.gate, a.ack.From, a.ack.Through)
	default:
	}
}

func TestCollectorEndToEnd(t *testing.T) {
	pool := testPool(t)
	broker := mqtttest.StartMosquitto(t)
	fleet := "e2e"
	// One worker handles messages in arrival order, so an ack of a later
	// batch proves the earlier messages were handled.
	c, _, _ := startCollector(t, pool, NewWriter(pool, testLog(t)),
		Config{Broker: broker.URL(), Fleet: fleet, ClientID: "collector-e2e", Group: "collectors", Workers: 1}, testLog(t))
	g := newFakeGate(t, broker.URL(), fleet)
	a, b := gateName("e2e-a"), gateName("e2e-b")

	g.send(a, batch(a, 1, 2, 3))
	g.wantAck(a, 1, 3)
	g.send(b, batch(b, seqRange(10, 14)...))
	g.wantAck(b, 10, 14)

	g.publish(a, []byte(`{"gate":"`+a+`","records":[{"seq":`)) // malformed, unsigned
	g.send(a, batch(b, 20, 21))                                // another gate's records, signed by a
	g.send(a, &wire.Records{Gate: a})                          // empty
	g.send(a, batch(a, 1, 2, 3))                               // a resend
	g.wantAck(a, 1, 3)
	g.wantNoAck()
	g.send(a, batch(a, seqRange(2, 6)...)) // 2, 3 stored, 4-6 new
	g.wantAck(a, 2, 6)
	g.wantNoAck()

	for _, want := range []struct {
		gate     string
		from, to uint64
		n        int
	}{{a, 1, 100, 6}, {b, 10, 14, 5}, {b, 20, 21, 0}} {
		if n := countRows(t, pool, want.gate, want.from, want.to); n != want.n {
			t.Errorf("gate %s seqs %d..%d: %d rows; want %d", want.gate, want.from, want.to, n, want.n)
		}
	}
	s := c.Stats()
	// The broker's PUBACK of the last ack may reach the collector after
	// the ack reached the gate, and only then is it counted.
	if s.Acks == 3 {
		s.Acks = 4
	}
	want := Stats{Messages: 7, Invalid: 1, Refused: 2, Records: 16, Inserted: 11, Duplicates: 5, Acks: 4, RosterVersion: 2}
	if s != want {
		t.Errorf("Stats() = %+v; want %+v", s, want)
	}
}

func TestCollectorSharedGroup(t *testing.T) {
	pool := testPool(t)
	broker := mqtttest.StartMosquitto(t)
	fleet := "shared"
	cfg := Config{Broker: broker.URL(), Fleet: fleet, Group: "collectors"}
	cfg.ClientID = "collector-1"
	c1, _, _ := startCollector(t, pool, NewWriter(pool, testLog(t)), cfg, testLog(t))
	cfg.ClientID = "collector-2"
	c2, _, _ := startCollector(t, pool, NewWriter(pool, testLog(t)), cfg, testLog(t))
	g := newFakeGate(t, broker.URL(), fleet)

	const batches, size = 40, 10
	gates := []string{gateName("shared-a"), gateName("shared-b")}
	for i := range batches {
		gate := gates[i%2]
		from := uint64(i/2*size + 1)
		g.send(gate, batch(gate, seqRange(from, from+size-1)...))
	}
	acked := map[gateAck]int{}
	timeout := time.After(waitLimit)
	for range batches {
		select {
		case a := <-g.acks:
			acked[a]++
		case <-timeout:
			t.Fatalf("%d acks of %d batches", len(acked), batches)
		}
	}
	for i := range batches {
		gate := gates[i%2]
		from := uint64(i/2*size + 1)
		if n := acked[gateAck{gate, wire.Ack{Gate: gate, From: from, Through: from + size - 1}}]; n != 1 {
			t.Errorf("batch %s %d..%d acked %d times; want once", gate, from, from+size-1, n)
		}
	}
	for _, gate := range gates {
		if n := countRows(t, pool, gate, 1, batches/2*size); n != batches/2*size {
			t.Errorf("gate %s: %d rows; want %d", gate, n, batches/2*size)
		}
	}
	s1, s2 := c1.Stats(), c2.Stats()
	t.Logf("collector-1: %+v", s1)
	t.Logf("collector-2: %+v", s2)
	if s1.Messages == 0 || s2.Messages == 0 {
		t.Errorf("messages %d and %d; want both collectors of the group to get some", s1.Messages, s2.Messages)
	}
	if s1.Messages+s2.Messages != batches || s1.Inserted+s2.Inserted != batches*size || s1.Duplicates+s2.Duplicates != 0 {
		t.Errorf("collectors together got %d messages, inserted %d, %d duplicates; want %d, %d, 0",
			s1.Messages+s2.Messages, s1.Inserted+s2.Inserted, s1.Duplicates+s2.Duplicates, batches, batches*size)
	}
}

// pgProxy forwards TCP connections to PostgreSQL while up, and refuses
// them (accept, then close) while down.
type pgProxy struct {
	l      net.Listener
	target string
	up     atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func startPGProxy(t *testing.T, target string) *pgProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{l: l, target: target}
	t.Cleanup(func() {
		l.Close()
		p.setUp(false)
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if !p.up.Load() {
				c.Close()
				continue
			}
			go p.forward(c)
		}
	}()
	return p
}

func (p *pgProxy) forward(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, c, s)
	p.mu.Unlock()
	go func() { io.Copy(s, c); s.Close() }()
	io.Copy(c, s)
	c.Close()
}

func (p *pgProxy) setUp(up bool) {
	p.up.Store(up)
	if !up {
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
		p.mu.Unlock()
	}
}

// logTap is a slog.Handler that sends every message to a channel.
type logTap chan string

func (l logTap) Enabled(context.Context, slog.Level) bool { return true }
func (l logTap) Handle(_ context.Context, r slog.Record) error {
	select {
	case l <- r.Message:
	default:
	}
	return nil
}
func (l logTap) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l logTap) WithGroup(string) slog.Handler      { return l }

func TestCollectorDatabaseDown(t *testing.T) {
	pool := testPool(t)
	proxy := startPGProxy(t, pgHostPort(t, pkgDBURL))
	proxied := openPool(t, proxyURL(t, pkgDBURL, proxy.l.Addr().String()))
	broker := mqtttest.StartMosquitto(t)
	fleet := "pgdown"
	tap := make(logTap, 1000)
	// The collector writes through the proxy; acks are checked directly.
	c, _, _ := startCollector(t, pool, NewWriter(proxied, slog.New(tap)),
		Config{Broker: broker.URL(), Fleet: fleet, ClientID: "collector-pgdown", Workers: 1}, slog.New(tap))
	g := newFakeGate(t, broker.URL(), fleet)

	a := gateName("pgdown-a")
	g.send(a, batch(a, 1, 2, 3, 4))
	timeout := time.After(waitLimit)
	for failures := 0; failures < 3; {
		select {
		case msg := <-tap:
			if msg == "cannot store records; not acking, retrying" {
				failures++
			}
		case <-timeout:
			t.Fatalf("collector did not retry 3 times with PostgreSQL down; stats %+v", c.Stats())
		}
	}
	g.wantNoAck()
	if s := c.Stats(); s.Acks != 0 || s.Errors < 3 || s.Inserted != 0 {
		t.Errorf("with PostgreSQL down: Stats() = %+v; want 0 acks, 0 inserted, at least 3 errors", s)
	}
	proxy.setUp(true)
	g.wantAck(a, 1, 4)
	if s := c.Stats(); s.Inserted != 4 {
		t.Errorf("after PostgreSQL came back: Stats() = %+v; want 4 inserted", s)
	}
}

func pgHostPort(t *testing.T, dbURL string) string {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(cfg.ConnConfig.Host, fmt.Sprint(cfg.ConnConfig.Port))
}

func proxyURL(t *testing.T, dbURL, addr string) string {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	host := cfg.ConnConfig.Host + ":" + fmt.Sprint(cfg.ConnConfig.Port)
	if !strings.Contains(dbURL, host) {
		t.Fatalf("cannot find %s in the test database URL to point it at the proxy", host)
	}
	return strings.Replace(dbURL, host, addr, 1)
}

// A collector that was away gets what the broker queued for its
// persistent session, even before it subscribes again.
func TestCollectorResumesSession(t *testing.T) {
	pool := testPool(t)
	broker := mqtttest.StartMosquitto(t)
	fleet := "resume"
	cfg := Config{Broker: broker.URL(), Fleet: fleet, ClientID: "collector-resume"}
	_, _, stop := startCollector(t, pool, NewWriter(pool, testLog(t)), cfg, testLog(t))
	g := newFakeGate(t, broker.URL(), fleet)
	a := gateName("resume-a")
	g.send(a, batch(a, 1, 2))
	g.wantAck(a, 1, 2)
	stop()

	g.send(a, batch(a, 3, 4))
	g.send(a, batch(a, 5))
	c, _, _ := startCollector(t, pool, NewWriter(pool, testLog(t)), cfg, testLog(t))
	g.wantAcks(gateAck{a, wire.Ack{Gate: a, From: 3, Through: 4}}, gateAck{a, wire.Ack{Gate: a, From: 5, Through: 5}})
	if n := countRows(t, pool, a, 1, 5); n != 5 {
		t.Errorf("%d rows; want 5", n)
	}
	if s := c.Stats(); s.Messages != 2 || s.Inserted != 3 || s.Resumed != 1 {
		t.Errorf("Stats() = %+v; want 2 messages, 3 inserted, 1 resumed session", s)
	}
}

// After the broker restarts without its state, the collector reconnects
// and subscribes again.
func TestCollectorBrokerRestart(t *testing.T) {
	pool := testPool(t)
	broker := mqtttest.StartMosquitto(t)
	fleet := "restart"
	_, watched, _ := startCollector(t, pool, NewWriter(pool, testLog(t)),
		Config{Broker: broker.URL(), Fleet: fleet, ClientID: "collector-restart"}, testLog(t))
	g := newFakeGate(t, broker.URL(), fleet)
	a := gateName("restart-a")
	g.send(a, batch(a, 1))
	g.wantAck(a, 1, 1)

	broker.Stop()
	broker.Start()
	waitSubscribed(t, watched)
	g = newFakeGate(t, broker.URL(), fleet)
	g.send(a, batch(a, 2, 3))
	g.wantAck(a, 2, 3)
}
