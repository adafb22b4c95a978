package mqttsync

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
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

// dynsecBroker starts a Mosquitto with its dynamic security plugin:
// every client may publish, anonymous clients may subscribe to the
// gates' topics only, so a SUBSCRIBE to the trust tree gets the failure
// code 0x80 (Mosquitto's ACL file never refuses a SUBSCRIBE, it only
// withholds messages). allow grants the trust tree to anonymous clients
// through the plugin's control topic, as an operator's mosquitto_ctrl
// would, without restarting the broker.
func dynsecBroker(t *testing.T) (b *mqtttest.Broker, allow func()) {
	t.Helper()
	const plugin = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
	if _, err := os.Stat(plugin); err != nil {
		t.Skipf("Mosquitto's dynamic security plugin: %v", err)
	}
	dir := t.TempDir()
	salt := []byte("wicket-salt!")
	hash, err := pbkdf2.Key(sha512.New, "admin-password", salt, 101, 64)
	if err != nil {
		t.Fatal(err)
	}
	acl := func(kind, topic string) map[string]any {
		return map[string]any{"acltype": kind, "topic": topic, "priority": 0, "allow": true}
	}
	doc, _ := json.Marshal(map[string]any{
		"defaultACLAccess": map[string]bool{"publishClientSend": true, "publishClientReceive": true, "subscribe": false, "unsubscribe": true},
		"clients": []any{map[string]any{"username": "admin", "password": base64.StdEncoding.EncodeToString(hash),
			"salt": base64.StdEncoding.EncodeToString(salt), "iterations": 101, "roles": []any{map[string]string{"rolename": "admin"}}}},
		"groups":         []any{map[string]any{"groupname": "anonymous", "roles": []any{map[string]string{"rolename": "gates"}}}},
		"anonymousGroup": "anonymous",
		"roles": []any{
			map[string]any{"rolename": "gates", "acls": []any{acl("subscribePattern", "wicket/test/gate/#")}},
			map[string]any{"rolename": "admin", "acls": []any{acl("publishClientSend", "$CONTROL/dynamic-security/#")}},
		},
	})
	dynsec := filepath.Join(dir, "dynsec.json")
	conf := filepath.Join(dir, "broker.conf")
	if err := os.WriteFile(dynsec, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("listener 1883\nallow_anonymous true\npersistence false\nplugin "+plugin+"\nplugin_opt_config_file "+dynsec+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b = mqtttest.StartMosquitto(t, mqtttest.ConfigFile(conf, nil))
	return b, func() {
		t.Helper()
		// Granting it through the default access rather than a role
		// of the anonymous group: the plugin disconnects the clients of
		// a role it changes, and the gate must get the subscription on
		// the connection it has.
		cmd, _ := json.Marshal(map[string]any{"commands": []any{map[string]any{"command": "setDefaultACLAccess",
			"acls": []any{map[string]any{"acltype": "subscribe", "allow": true}}}}})
		opts := mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("test-admin").SetUsername("admin").SetPassword("admin-password")
		publishWith(t, opts, "$CONTROL/dynamic-security/v1", false, cmd)
	}
}

// TestSubscribeRefusedIsRetried: a broker that refuses the trust
// subscription (SUBACK 0x80; here a Mosquitto ACL, on a NATS cluster a
// JetStream consumer the node could not create) leaves the gate
// connected without it. The gate says so in its state, subscribes again
// with backoff, and once the broker takes the subscription it gets its
// key set and snapshot on the same connection.
func TestSubscribeRefusedIsRetried(t *testing.T) {
	b, allow := dynsecBroker(t)
	f := verifiertest.New(t)
	topics := wire.Topics{Fleet: "test"}
	enrol(t, f, b.URL(), "GS")
	publishRetained(t, b.URL(), map[string][]byte{topics.KeySet(): f.KeySetDoc, topics.Snapshot(): signBatch(t, f, 10, 0)})
	g := startGate(t, f, b.URL(), "GS", time.Hour)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("state %+v\nbroker log:\n%s", g.sync.State(), b.Log())
		}
	})
	testkit.Eventually(t, "the refused subscription tried twice and shown in the state", 15*time.Second, func() bool {
		st := g.sync.State()
		return st.Connected && st.SubscribeRefused >= 2 && strings.Contains(st.Unsubscribed, topics.AllTrust())
	})
	if v := g.st.Info().Version; v != 0 {
		t.Fatalf("version %d without a trust subscription; want 0 (does the ACL refuse it?)", v)
	}
	st := g.sync.State()
	if strings.Contains(st.Unsubscribed, topics.Ack("GS")) {
		t.Errorf("Unsubscribed = %q; the ack subscription was allowed", st.Unsubscribed)
	}
	allow()
	testkit.Eventually(t, "key set 1 and snapshot 10 once the broker allows the subscription", 15*time.Second, func() bool {
		return g.st.Info().Version >= 10 && g.v.KeySet() != nil
	})
	after := g.sync.State()
	if after.Unsubscribed != "" {
		t.Errorf("Unsubscribed = %q after the subscription was taken; want empty", after.Unsubscribed)
	}
	if after.Attempts != st.Attempts {
		t.Errorf("%d connection attempts, %d while refused: the gate reconnected instead of subscribing again", after.Attempts, st.Attempts)
	}
}

// connectCounter wraps a paho client and counts Connect calls made while
// an earlier Connect had not finished.
type connectCounter struct {
	Client
	mu       sync.Mutex
	last     mqtt.Token
	overlaps int
}

func (c *connectCounter) Connect() mqtt.Token {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last != nil {
		select {
		case <-c.last.Done():
		default:
			c.overlaps++
		}
	}
	c.last = c.Client.Connect()
	return c.last
}

func (c *connectCounter) firstDone() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		return false
	}
	select {
	case <-c.last.Done():
		return true
	default:
		return false
	}
}

// blackHole accepts TCP connections and never answers, as a cluster node
// too busy to load a session does; it closes them when the test ends.
func blackHole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return "tcp://" + l.Addr().String()
}

// TestSlowConnectNeverOverlaps: the first node takes the whole connect
// timeout to fail, so paho's Connect (first node, then the second) lasts
// longer than publishWait. The gate waits for it: it never calls Connect
// while one is in flight (a second connect under the same client id
// takes over the first one's session on a cluster), and it uses the
// connection paho makes to the second node.
func TestSlowConnectNeverOverlaps(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	f := verifiertest.New(t)
	enrol(t, f, b.URL(), "GC")
	st := storetest.Open(t, store.Options{Logger: slog.New(slog.DiscardHandler)})
	v, _ := verifier.New(verifier.NewTrustedClock(f.Clock, time.Time{}), st, &f.Policy)
	tr := trust.New(f.Roots(), st, v, slog.New(slog.DiscardHandler))
	clk := clockwork.NewFakeClock()
	cc := &connectCounter{}
	s, err := New(Config{
		Conn:  mqttconn.Conn{Brokers: []string{blackHole(t), b.URL()}, ClientID: "wicket-test-GC", KeepAlive: 5 * time.Second, ConnectTimeout: 2 * time.Second},
		Fleet: "test", Gate: "GC", AckTimeout: time.Hour, StatusEvery: time.Hour,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond,
		Key: wiretest.GateKey, Roots: f.Roots(), Clock: clk,
		NewClient: func(o *mqtt.ClientOptions) Client { cc.Client = mqtt.NewClient(o); return cc },
	}, st, tr, func() wire.Status { return wire.Status{Gate: "GC"} }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	// While paho waits on the first node, the gate's clock passes
	// publishWait and then the longest reconnect backoff: a gate that
	// gave up on the connect after publishWait would connect again now.
	block := func() {
		bctx, bcancel := context.WithTimeout(ctx, 30*time.Second)
		defer bcancel()
		if err := clk.BlockUntilContext(bctx, 1); err != nil {
			t.Fatalf("the gate never waited on its clock: %v", err)
		}
	}
	block()
	clk.Advance(publishWait + time.Millisecond)
	block()
	clk.Advance(500 * time.Millisecond)
	testkit.Eventually(t, "paho's first connect to finish", 15*time.Second, cc.firstDone)
	testkit.Eventually(t, "the gate connected to the second node", 10*time.Second, func() bool { return s.State().Connected })
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.overlaps != 0 {
		t.Errorf("%d Connect calls while a connect was in flight; want 0", cc.overlaps)
	}
}

// TestTrustSilenceResubscribes: the broker resumes the gate's session
// without its trust subscription and says nothing (here another client
// took the session over and unsubscribed; on a NATS cluster a consumer
// the node could not restore). A delta published after the reconnect
// reaches the gate once TrustSilence has passed without a trust message:
// the gate unsubscribes and subscribes again, and the retained delta
// comes with the subscription.
func TestTrustSilenceResubscribes(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	p := mqtttest.StartProxy(t, b.URL()[len("tcp://"):])
	f := verifiertest.New(t)
	topics := wire.Topics{Fleet: "test"}
	const silence = 2 * time.Second
	g := synced(t, f, b.URL(), p.URL(), "GQ", func(c *Config) { c.TrustSilence = silence })
	attempts := g.sync.State().Attempts
	// The gate cannot come back while the session is taken over.
	p.Refuse(5 * time.Second)
	thief := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("wicket-test-GQ").SetCleanSession(false))
	if tok := thief.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("take the session over: %v", tok.Error())
	}
	if tok := thief.Unsubscribe(topics.AllTrust()); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("unsubscribe: %v", tok.Error())
	}
	thief.Disconnect(100)
	p.Refuse(0)
	testkit.Eventually(t, "the gate back on its session", 15*time.Second, func() bool {
		st := g.sync.State()
		return st.Connected && st.Attempts > attempts
	})
	publishRetained(t, b.URL(), map[string][]byte{topics.Delta(11): revokeDelta(t, f, 11, "voucher-00011")})
	back := time.Now()
	testkit.Eventually(t, "delta 11 after the silence check", 15*time.Second, func() bool { return g.st.Info().Version == 11 })
	if took := time.Since(back); took < silence/2 {
		t.Errorf("delta 11 arrived %v after publishing, before the silence check could have run: the trust subscription was not lost", took)
	}
}
