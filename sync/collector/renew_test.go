package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jonboulle/clockwork"

	"wicket/internal/clock"
	"wicket/sync/mqtttest"
	"wicket/sync/wire"
)

// The wait before a silent subscription is renewed doubles with each
// renewal that finds it silent again, up to maxSilenceWait, and a message
// starts the waits over, counted from the message.
func TestSilenceWaitsDoubleAndReset(t *testing.T) {
	// The highest draw: each wait is exactly its bound.
	s := silence{waits: clock.Backoff{Min: silenceWait, Max: maxSilenceWait, Rand: func(n int64) int64 { return n - 1 }}}
	now := time.Hour
	s.start(now)
	renewals := func(waits ...time.Duration) {
		t.Helper()
		for _, w := range waits {
			w *= time.Minute
			if left := s.left(now+w-time.Second, 0); left != time.Second {
				t.Fatalf("%v into a silence of %v: %v left; want 1s", w-time.Second, w, left)
			}
			if left := s.left(now+w, 0); left != 0 {
				t.Fatalf("%v into a silence of %v: %v left; want 0 (renew)", w, w, left)
			}
			now += w
			s.start(now) // renewed
		}
	}
	renewals(1, 2, 4, 8, 16, 16, 16)

	heard := now + 5*time.Minute
	if left := s.left(heard+20*time.Second, heard); left != 40*time.Second {
		t.Fatalf("20s after a message: %v left; want 40s, of the first wait again", left)
	}
	if left := s.left(heard+time.Minute, heard); left != 0 {
		t.Fatalf("a minute after the message: %v left; want 0", left)
	}
	now = heard + time.Minute
	s.start(now)
	renewals(2, 4)
}

// renewClient is a Client for hold without a broker: it records the
// subscription calls, and fails the subscribes with subErr.
type renewClient struct {
	Client
	subErr       error
	mu           sync.Mutex
	calls        []string
	disconnected bool
}

func (r *renewClient) record(call string) {
	r.mu.Lock()
	r.calls = append(r.calls, call)
	r.mu.Unlock()
}

func (r *renewClient) Unsubscribe(topics ...string) mqtt.Token {
	r.record("unsubscribe " + strings.Join(topics, " "))
	return newDoneToken()
}

func (r *renewClient) Subscribe(topic string, qos byte, _ mqtt.MessageHandler) mqtt.Token {
	r.record(fmt.Sprintf("subscribe %s %d", topic, qos))
	tok := newDoneToken()
	tok.err = r.subErr
	return tok
}

func (r *renewClient) Disconnect(uint) {
	r.mu.Lock()
	r.disconnected = true
	r.mu.Unlock()
}

// holdUntil runs hold for c on the fake clock clk, advances it past the
// first silence wait, and returns what hold returned once stop (if not
// nil) reports it is time to end.
func holdUntil(t *testing.T, c *Collector, clk *clockwork.FakeClock, client Client, stop func() bool) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.hold(ctx, client) }()
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(silenceWait)
	for stop != nil && !stop() && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	if stop != nil {
		cancel()
	}
	return <-done
}

// A subscription silent for the wait is renewed: the records filters
// unsubscribed, then subscribed again at QoS 1; logged at Info and
// counted.
func TestHoldRenewsSilentSubscription(t *testing.T) {
	clk := clockwork.NewFakeClock()
	tap := make(recordTap, 10)
	c := testCollector(t, clk, slog.New(tap))
	client := &renewClient{}
	want := []string{"unsubscribe " + strings.Join(c.filters, " ")}
	for _, f := range c.filters {
		want = append(want, "subscribe "+f+" 1")
	}
	holdUntil(t, c, clk, client, func() bool {
		client.mu.Lock()
		defer client.mu.Unlock()
		return len(client.calls) == len(want)
	})
	if !slices.Equal(client.calls, want) || client.disconnected {
		t.Errorf("calls %q, disconnected %v; want %q, still connected", client.calls, client.disconnected, want)
	}
	if n := c.Stats().Renewals; n != 1 {
		t.Errorf("Stats().Renewals = %d; want 1", n)
	}
	var r slog.Record
	select {
	case r = <-tap:
	default:
		t.Fatal("no log line of the renewal")
	}
	silent, ok := attr(r, "silent_for")
	if r.Level != slog.LevelInfo || !strings.Contains(r.Message, "records filters again") || !ok ||
		silent.Kind() != slog.KindDuration || silent.Duration() < silenceWait/2 || silent.Duration() > silenceWait {
		t.Errorf("log %v %q silent_for %v; want Info, subscribing again, silent for %v to %v",
			r.Level, r.Message, silent, silenceWait/2, silenceWait)
	}
}

// A renewal the broker refuses ends the connection: hold disconnects
// and returns the error, as for a lost connection.
func TestHoldRenewFailureDisconnects(t *testing.T) {
	clk := clockwork.NewFakeClock()
	c := testCollector(t, clk, slog.New(slog.DiscardHandler))
	client := &renewClient{subErr: errors.New("no consumer")}
	err := holdUntil(t, c, clk, client, nil)
	if err == nil || !strings.Contains(err.Error(), "renew") || !strings.Contains(err.Error(), "no consumer") {
		t.Errorf("hold = %v; want the renewal's error", err)
	}
	if !client.disconnected || c.Stats().Renewals != 1 {
		t.Errorf("disconnected %v, %d renewals; want disconnected after 1", client.disconnected, c.Stats().Renewals)
	}
}

// silentClient wraps a collector's paho client so that its records
// subscriptions deliver nothing, as a NATS consumer that was granted but
// does not deliver: their messages are acknowledged and dropped until
// the collector unsubscribes them. That first unsubscribe waits until a
// message was dropped (closed first), then calls before.
type silentClient struct {
	Client
	roster    string
	before    func()
	renewed   atomic.Bool
	swallowed atomic.Int64
	first     chan struct{}
	once      sync.Once
}

func (s *silentClient) Subscribe(topic string, qos byte, cb mqtt.MessageHandler) mqtt.Token {
	if topic != s.roster && !s.renewed.Load() {
		cb = func(_ mqtt.Client, m mqtt.Message) {
			s.swallowed.Add(1)
			s.once.Do(func() { close(s.first) })
			m.Ack()
		}
	}
	return s.Client.Subscribe(topic, qos, cb)
}

func (s *silentClient) Unsubscribe(topics ...string) mqtt.Token {
	if !slices.Contains(topics, s.roster) && s.renewed.CompareAndSwap(false, true) {
		select {
		case <-s.first:
		case <-time.After(waitLimit):
		}
		s.before()
	}
	return s.Client.Unsubscribe(topics...)
}

// A collector whose records subscription was granted but delivers
// nothing renews it after the silence wait, and the records the gate
// keeps resending reach PostgreSQL then, and only then.
func TestCollectorRenewsSilentSubscription(t *testing.T) {
	pool := testPool(t)
	broker := mqtttest.StartMosquitto(t)
	const fleet = "silent"
	gate := gateName("silent")
	var rowsAtRenewal atomic.Int64
	silent := &silentClient{roster: wire.Topics{Fleet: fleet}.Roster(), first: make(chan struct{})}
	silent.before = func() {
		var n int64
		if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM wicket_records WHERE gate = $1", gate).Scan(&n); err != nil {
			n = -1
		}
		rowsAtRenewal.Store(n)
	}
	cfg := Config{Broker: broker.URL(), Fleet: fleet, ClientID: "collector-silent",
		silenceMin: time.Second, silenceMax: 2 * time.Second,
		NewClient: func(o *mqtt.ClientOptions) Client {
			silent.Client = NewPahoClient(o)
			return silent
		}}
	c, _, _ := startCollector(t, pool, NewWriter(pool, testLog(t)), cfg, testLog(t))
	g := newFakeGate(t, broker.URL(), fleet)
	took := g.sendUntilAcked(gate, batch(gate, 1, 2, 3), waitLimit)
	t.Logf("acked after %v; %d messages swallowed before the renewal", took.Round(time.Millisecond), silent.swallowed.Load())
	if !silent.renewed.Load() || rowsAtRenewal.Load() != 0 || silent.swallowed.Load() == 0 {
		t.Errorf("renewed %v with %d rows stored, %d messages swallowed; want renewed with none stored, after some swallowed",
			silent.renewed.Load(), rowsAtRenewal.Load(), silent.swallowed.Load())
	}
	if n := countRows(t, pool, gate, 1, 3); n != 3 {
		t.Errorf("%d rows; want 3", n)
	}
	if s := c.Stats(); s.Renewals == 0 {
		t.Errorf("Stats() = %+v; want a renewal", s)
	}
}
