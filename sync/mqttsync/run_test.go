package mqttsync

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jonboulle/clockwork"

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

// testConfig is a valid Config whose client is c.
func testConfig(c Client) Config {
	return Config{
		Conn:  mqttconn.Conn{Broker: "tcp://127.0.0.1:1883", ClientID: "wicket-test-g1"},
		Fleet: "test", Gate: "g1",
		NewClient: func(*mqtt.ClientOptions) Client { return c },
	}
}

// newSync returns a Sync on a real store and trust Applier.
func newSync(t *testing.T, f *verifiertest.Fixture, cfg Config) (*Sync, *store.Store) {
	t.Helper()
	cfg.Roots = f.Roots()
	st := storetest.Open(t, store.Options{})
	v, err := verifier.New(verifier.NewTrustedClock(f.Clock, time.Time{}), st, &f.Policy)
	if err != nil {
		t.Fatal(err)
	}
	tr := trust.New(f.Roots(), st, v, slog.New(slog.DiscardHandler))
	s, err := New(cfg, st, tr, func() wire.Status { return wire.Status{Gate: cfg.Gate} }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, st
}

// TestRunJoinsWorker: Run returns only after its worker finished what it
// was doing with the store, so the store may be closed after Run.
func TestRunJoinsWorker(t *testing.T) {
	f := verifiertest.New(t)
	c := &fakeClient{disconnected: make(chan struct{})}
	s, st := newSync(t, f, testConfig(c))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	testkit.Eventually(t, "connected", 10*time.Second, func() bool { return s.State().Connected })

	// An open write transaction holds the worker's next store write.
	held, err := st.Prepare(&store.Event{Type: store.TypeSystem, At: verifiertest.Epoch}, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.onMessage(nil, mqtttest.NewMessage(s.topics.Roster(), wiretest.Roster(t, f.Root, 1, "g1")))
	testkit.Eventually(t, "the worker taking the roster", 10*time.Second, func() bool { return len(s.incoming) == 0 })
	cancel()
	<-c.disconnected
	go held.Commit() //nolint:errcheck // the store's own tests check Commit
	if err := <-ran; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if s.Roster() == nil {
		t.Fatalf("Run returned before its worker installed the roster it had taken (state %+v)", s.State())
	}
	if raw, _, err := st.TrustDoc(rosterDoc); err != nil || raw == nil {
		t.Fatalf("stored roster after Run = %d bytes, %v; want it stored", len(raw), err)
	}
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("a second Run returned nil; want an error")
	}
}

// fakeClient is a broker that accepts everything at once.
type fakeClient struct {
	once         sync.Once
	disconnected chan struct{}
}

func (c *fakeClient) Connect() mqtt.Token                                    { return doneToken{} }
func (c *fakeClient) Publish(string, byte, bool, any) mqtt.Token             { return doneToken{} }
func (c *fakeClient) Subscribe(string, byte, mqtt.MessageHandler) mqtt.Token { return doneToken{} }
func (c *fakeClient) Unsubscribe(...string) mqtt.Token                       { return doneToken{} }
func (c *fakeClient) Disconnect(uint) {
	if c.disconnected != nil {
		c.once.Do(func() { close(c.disconnected) })
	}
}

// doneToken is a completed MQTT operation.
type doneToken struct{}

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (doneToken) Wait() bool                     { return true }
func (doneToken) WaitTimeout(time.Duration) bool { return true }
func (doneToken) Done() <-chan struct{}          { return closed }
func (doneToken) Error() error                   { return nil }

var (
	_ Client     = (*fakeClient)(nil)
	_ mqtt.Token = doneToken{}
)

// statusClient is fakeClient that counts the status messages published.
type statusClient struct {
	fakeClient
	topic string
	mu    sync.Mutex
	n     int
}

func (c *statusClient) Publish(topic string, _ byte, _ bool, _ any) mqtt.Token {
	if topic == c.topic {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
	return doneToken{}
}

func (c *statusClient) statuses() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// qosClient is fakeClient that keeps the QoS of each subscription.
type qosClient struct {
	fakeClient
	mu  sync.Mutex
	qos map[string]byte
}

func (c *qosClient) Subscribe(topic string, qos byte, _ mqtt.MessageHandler) mqtt.Token {
	c.mu.Lock()
	c.qos[topic] = qos
	c.mu.Unlock()
	return doneToken{}
}

func (c *qosClient) granted(topic string) (byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	q, ok := c.qos[topic]
	return q, ok
}

// TestSubscriptionQoS: the trust tree is subscribed at QoS 1 (what is
// published while the gate is away waits in its session), its acks at
// QoS 0 (a lost ack costs a resend, and on a NATS cluster a QoS 1
// subscription is a JetStream consumer).
func TestSubscriptionQoS(t *testing.T) {
	c := &qosClient{qos: map[string]byte{}}
	s, _ := newSync(t, verifiertest.New(t), testConfig(c))
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	topics := wire.Topics{Fleet: "test"}
	testkit.Eventually(t, "both subscriptions made", 10*time.Second, func() bool {
		_, ack := c.granted(topics.Ack("g1"))
		_, tree := c.granted(topics.AllTrust())
		return ack && tree
	})
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if q, _ := c.granted(topics.Ack("g1")); q != 0 {
		t.Errorf("ack subscription at QoS %d; want 0", q)
	}
	if q, _ := c.granted(topics.AllTrust()); q != 1 {
		t.Errorf("trust subscription at QoS %d; want 1", q)
	}
}

// TestTrustSubscriptionQoS0: Config.TrustQoS0 subscribes to the trust
// tree at QoS 0.
func TestTrustSubscriptionQoS0(t *testing.T) {
	c := &qosClient{qos: map[string]byte{}}
	cfg := testConfig(c)
	cfg.TrustQoS0 = true
	s, _ := newSync(t, verifiertest.New(t), cfg)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	topics := wire.Topics{Fleet: "test"}
	testkit.Eventually(t, "the trust subscription made", 10*time.Second, func() bool {
		_, tree := c.granted(topics.AllTrust())
		return tree
	})
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if q, _ := c.granted(topics.AllTrust()); q != 0 {
		t.Errorf("trust subscription at QoS %d; want 0", q)
	}
}

// TestStatusSpread: the status changes ask for waits up to StatusSpread,
// and changes within the wait share one status.
func TestStatusSpread(t *testing.T) {
	f := verifiertest.New(t)
	c := &statusClient{topic: wire.Topics{Fleet: "test"}.Status("g1")}
	clk := clockwork.NewFakeClock()
	cfg := testConfig(c)
	cfg.Clock, cfg.StatusEvery, cfg.StatusSpread = clk, 24*time.Hour, time.Hour
	s, _ := newSync(t, f, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	testkit.Eventually(t, "the status at connect", 10*time.Second, func() bool { return c.statuses() == 1 })
	for range 3 {
		s.StatusChanged()
	}
	// The fake clock stands still: the changes wait.
	time.Sleep(100 * time.Millisecond)
	if n := c.statuses(); n != 1 {
		t.Fatalf("%d statuses before the clock moved; want 1 (the changes' status waits up to StatusSpread)", n)
	}
	clk.Advance(time.Hour)
	testkit.Eventually(t, "the changes' status", 10*time.Second, func() bool { return c.statuses() >= 2 })
	time.Sleep(100 * time.Millisecond)
	if n := c.statuses(); n != 2 {
		t.Fatalf("%d statuses after three changes; want 2 (one at connect, one shared by the changes)", n)
	}
}

// recordsClient is fakeClient that notes the fake clock's time of each
// records batch published.
type recordsClient struct {
	fakeClient
	topic string
	clk   clockwork.Clock
	mu    sync.Mutex
	at    []time.Time
}

func (c *recordsClient) Publish(topic string, _ byte, _ bool, _ any) mqtt.Token {
	if topic == c.topic {
		c.mu.Lock()
		c.at = append(c.at, c.clk.Now())
		c.mu.Unlock()
	}
	return doneToken{}
}

func (c *recordsClient) sends() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.at)
}

// TestResendBackoff: with no ack at all, the first resend comes after
// AckTimeout and each later one after twice the wait before (a quarter
// more at most at random), up to 8 x AckTimeout, so a collector that
// fell behind sees the resends thin out.
func TestResendBackoff(t *testing.T) {
	f := verifiertest.New(t)
	clk := clockwork.NewFakeClock()
	c := &recordsClient{topic: wire.Topics{Fleet: "test"}.Records("g1"), clk: clk}
	cfg := testConfig(c)
	const ackTimeout = 10 * time.Second
	cfg.Clock, cfg.StatusEvery, cfg.AckTimeout, cfg.Key = clk, 24*time.Hour, ackTimeout, wiretest.GateKey
	s, st := newSync(t, f, cfg)
	ev := store.Event{Type: "decision", At: time.Now(), Gate: "g1", Venue: "V", Allow: true, Reason: "ok"}
	if _, err := st.Append(&ev, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	testkit.Eventually(t, "the first send", 10*time.Second, func() bool { return len(c.sends()) == 1 })
	// Step the clock a second at a time, waiting for the loop's tick at
	// each, over 200 s: sends at 0, then about 10, 30, 70, 150 s.
	for range 200 {
		clk.Advance(time.Second)
		time.Sleep(2 * time.Millisecond)
	}
	testkit.Eventually(t, "five sends", 10*time.Second, func() bool { return len(c.sends()) >= 5 })
	at := c.sends()
	for i := 1; i < len(at); i++ {
		gap := at[i].Sub(at[i-1])
		base := ackTimeout << min(i-1, 3)
		hi := base + base/4 + 2*time.Second // the tick and the last step
		if i == 1 {
			hi = base + 2*time.Second
		}
		if gap < base || gap > hi {
			t.Errorf("resend %d came %v after the send before; want %v to %v", i, gap, base, hi)
		}
	}
	if len(at) > 6 {
		t.Errorf("%d sends in 200 s without an ack; want at most 6 with the backoff", len(at))
	}
}
