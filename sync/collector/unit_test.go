package collector

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jonboulle/clockwork"

	"wicket/sync/mqtttest"
	"wicket/sync/wire"
)

func TestConfigCheck(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := withIdentity(t, Config{Broker: "tcp://127.0.0.1:1883", Fleet: "metro", ClientID: "collector-1", Group: "collectors"})
	for _, tc := range []struct {
		name    string
		mutate  func(*Config)
		wantErr string // "" for valid
	}{
		{"valid", func(*Config) {}, ""},
		{"no group", func(c *Config) { c.Group = "" }, ""},
		{"tls", func(c *Config) { c.Broker = "ssl://broker.example:8883" }, ""},
		{"no broker", func(c *Config) { c.Broker = "" }, "Broker: missing"},
		{"http broker", func(c *Config) { c.Broker = "http://x:80" }, "Broker"},
		{"no port", func(c *Config) { c.Broker = "tcp://localhost" }, "host:port"},
		{"bad fleet", func(c *Config) { c.Fleet = "a/b" }, "Fleet"},
		{"no client id", func(c *Config) { c.ClientID = "" }, "ClientID"},
		{"bad group", func(c *Config) { c.Group = "a+b" }, "Group"},
		{"password alone", func(c *Config) { c.Password = "x" }, "Username"},
		{"cert without key", func(c *Config) { c.Broker, c.CertFile = "ssl://b:8883", "c.pem" }, "KeyFile"},
		{"CA over tcp", func(c *Config) { c.CAFile = ca }, "ssl://"},
		{"bad CA", func(c *Config) { c.Broker, c.CAFile = "ssl://b:8883", ca }, "no PEM certificate"},
		{"missing CA", func(c *Config) { c.Broker, c.CAFile = "tls://b:8883", ca+".missing" }, "ca_file"},
		{"workers", func(c *Config) { c.Workers = MaxWorkers + 1 }, "Workers"},
		{"no id", func(c *Config) { c.ID = "" }, "ID"},
		{"no key", func(c *Config) { c.Key = nil }, "Key"},
		{"no roots", func(c *Config) { c.Roots = nil }, "Roots"},
		{"forged roster", func(c *Config) { c.Roster = []byte("not a roster") }, "Roster"},
		{"cluster nodes", func(c *Config) { c.Broker, c.Brokers = "", []string{"tcp://n1:1883", "tcp://n2:1883"} }, ""},
		{"broker and brokers", func(c *Config) { c.Brokers = []string{"tcp://n1:1883"} }, "not both"},
		{"mixed nodes", func(c *Config) { c.Broker, c.Brokers = "", []string{"tls://n1:8883", "tcp://n2:1883"} }, "mixes TLS"},
		{"slice", func(c *Config) { c.Slice = wire.Slice{I: 1, N: 4} }, ""},
		{"slice out of range", func(c *Config) { c.Slice = wire.Slice{I: 4, N: 4} }, "Slice"},
	} {
		cfg := ok
		tc.mutate(&cfg)
		_, err := New(cfg, &Writer{}, slog.New(slog.DiscardHandler))
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: New = %v; want no error", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: New = %v; want an error mentioning %q", tc.name, err, tc.wantErr)
		}
	}
}

func testCollector(t *testing.T, clock clockwork.Clock, log *slog.Logger) *Collector {
	t.Helper()
	c, err := New(withIdentity(t, Config{Broker: "tcp://127.0.0.1:1883", Fleet: "unit", ClientID: "unit", Clock: clock}), &Writer{}, log)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The message handler never blocks: beyond QueueSize it drops.
func TestOnMessageDropsWhenFull(t *testing.T) {
	c := testCollector(t, clockwork.NewFakeClock(), slog.New(slog.DiscardHandler))
	payload := []byte(`{"gate":"g","records":[{"seq":1,"gate":"g"}]}`)
	for range QueueSize + 5 {
		c.onMessage(nil, mqtttest.NewMessage(c.topics.Records("g"), payload))
	}
	c.onMessage(nil, mqtttest.NewMessage(c.topics.Records("g"), make([]byte, 2<<20)))
	s := c.Stats()
	if s.Messages != QueueSize+6 || s.Dropped != 5 || s.Invalid != 1 || len(c.queue) != QueueSize {
		t.Errorf("Stats() = %+v, queued %d; want %d messages, 5 dropped, 1 invalid, %d queued",
			s, len(c.queue), QueueSize+6, QueueSize)
	}
	// The queue holds copies.
	payload[0] = 'X'
	if m := <-c.queue; m.payload[0] != '{' {
		t.Errorf("queued payload changed with the caller's buffer")
	}
}

// recordTap is a slog.Handler that sends every record to a channel.
type recordTap chan slog.Record

func (l recordTap) Enabled(context.Context, slog.Level) bool { return true }
func (l recordTap) Handle(_ context.Context, r slog.Record) error {
	l <- r.Clone()
	return nil
}
func (l recordTap) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l recordTap) WithGroup(string) slog.Handler      { return l }

func attr(r slog.Record, key string) (slog.Value, bool) {
	var v slog.Value
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v, found = a.Value, true
			return false
		}
		return true
	})
	return v, found
}

func TestProgressLog(t *testing.T) {
	clock := clockwork.NewFakeClock()
	tap := make(recordTap, 10)
	c := testCollector(t, clock, slog.New(tap))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.progress(ctx)
		close(done)
	}()
	defer func() { cancel(); <-done }()
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	c.records.Add(250)
	clock.Advance(progressEvery)
	r := <-tap
	rate, ok := attr(r, "records_per_s")
	if r.Message != "progress" || !ok || rate.Float64() != 25 {
		t.Errorf("progress line %q with records_per_s %v; want \"progress\" with 25", r.Message, rate)
	}
	if v, _ := attr(r, "records"); v.Uint64() != 250 {
		t.Errorf("progress records = %v; want 250", v)
	}
}

func TestComplainRateLimited(t *testing.T) {
	clock := clockwork.NewFakeClock()
	tap := make(recordTap, 10)
	c := testCollector(t, clock, slog.New(tap))
	var k complaints
	for range 5 {
		c.complain(&k, "bad", "n", 1)
	}
	clock.Advance(complainEvery)
	c.complain(&k, "bad")
	var warns []slog.Record
	for range 6 {
		if r := <-tap; r.Level == slog.LevelWarn {
			warns = append(warns, r)
		}
	}
	if len(warns) != 2 {
		t.Fatalf("%d warnings; want 2", len(warns))
	}
	if v, ok := attr(warns[1], "suppressed"); !ok || v.Int64() != 4 {
		t.Errorf("second warning suppressed = %v; want 4", v)
	}
}
