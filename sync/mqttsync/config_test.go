package mqttsync

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

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

// TestNewRefusesBadValues: a bad value is an error naming its field,
// never replaced by a default; zero means the default.
func TestNewRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"batch size negative", func(c *Config) { c.BatchSize = -1 }, "sync.batch_size"},
		{"batch size over the wire limit", func(c *Config) { c.BatchSize = wire.MaxRecordsPerBatch + 1 }, "sync.batch_size"},
		{"inflight negative", func(c *Config) { c.MaxInflight = -1 }, "sync.max_inflight"},
		{"inflight over the limit", func(c *Config) { c.MaxInflight = MaxInflightLimit + 1 }, "sync.max_inflight"},
		{"ack timeout negative", func(c *Config) { c.AckTimeout = -time.Second }, "sync.ack_timeout"},
		{"status every negative", func(c *Config) { c.StatusEvery = -time.Second }, "sync.status_every"},
		{"reconnect min negative", func(c *Config) { c.ReconnectMin = -time.Second }, "sync.reconnect_min"},
		{"reconnect max negative", func(c *Config) { c.ReconnectMax = -time.Second }, "sync.reconnect_max"},
		{"reconnect max below min", func(c *Config) { c.ReconnectMin, c.ReconnectMax = time.Minute, time.Second }, "sync.reconnect_max"},
		{"short key", func(c *Config) { c.Key = ed25519.PrivateKey("short") }, "identity key"},
		{"bad fleet", func(c *Config) { c.Fleet = "a/b" }, "sync.fleet"},
		{"no broker", func(c *Config) { c.Broker = "" }, "sync.broker"},
	} {
		cfg := testConfig(nil)
		tc.mod(&cfg)
		_, err := New(cfg, nil, nil, nil, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("New(%s) = %v; want an error naming %q", tc.name, err, tc.wantErr)
		}
	}

	f := verifiertest.New(t)
	s, _ := newSync(t, f, testConfig(nil))
	want := Config{BatchSize: DefaultBatchSize, MaxInflight: DefaultMaxInflight, AckTimeout: DefaultAckTimeout,
		StatusEvery: DefaultStatusEvery, ReconnectMin: DefaultReconnectMin, ReconnectMax: DefaultReconnectMax}
	got := s.cfg
	if got.BatchSize != want.BatchSize || got.MaxInflight != want.MaxInflight || got.AckTimeout != want.AckTimeout ||
		got.StatusEvery != want.StatusEvery || got.ReconnectMin != want.ReconnectMin || got.ReconnectMax != want.ReconnectMax {
		t.Errorf("zero values became %d, %d, %v, %v, %v, %v; want the defaults %d, %d, %v, %v, %v, %v",
			got.BatchSize, got.MaxInflight, got.AckTimeout, got.StatusEvery, got.ReconnectMin, got.ReconnectMax,
			want.BatchSize, want.MaxInflight, want.AckTimeout, want.StatusEvery, want.ReconnectMin, want.ReconnectMax)
	}
	cfg := testConfig(nil)
	cfg.ReconnectMin = 5 * time.Minute
	s, _ = newSync(t, f, cfg)
	if s.cfg.ReconnectMax != cfg.ReconnectMin {
		t.Errorf("ReconnectMax 0 with ReconnectMin %v became %v; want %v", cfg.ReconnectMin, s.cfg.ReconnectMax, cfg.ReconnectMin)
	}
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
