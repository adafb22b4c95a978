package mqttsync

import (
	"strings"
	"testing"
	"time"

	"wicket/sync/mqttconn"
)

// TestConfigRefusesBadValues: a value no default stands for is refused
// with the field and the fix, never replaced; zero fields take the
// defaults.
func TestConfigRefusesBadValues(t *testing.T) {
	base := Config{Conn: mqttconn.Conn{Broker: "tcp://127.0.0.1:1883", ClientID: "g"}, Fleet: "f", Gate: "g"}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"batch over the wire limit", func(c *Config) { c.BatchSize = 501 }, "sync.batch_size: 501: use 1 to 500"},
		{"negative batch", func(c *Config) { c.BatchSize = -1 }, "sync.batch_size"},
		{"negative inflight", func(c *Config) { c.MaxInflight = -2 }, "sync.max_inflight"},
		{"negative ack timeout", func(c *Config) { c.AckTimeout = -time.Second }, "sync.ack_timeout"},
		{"negative status", func(c *Config) { c.StatusEvery = -time.Second }, "sync.status_every"},
		{"reconnect min over max", func(c *Config) { c.ReconnectMin, c.ReconnectMax = time.Minute, time.Second }, "sync.reconnect_min/reconnect_max"},
		{"reconnect min over the default max", func(c *Config) { c.ReconnectMin = time.Hour }, "sync.reconnect_min/reconnect_max"},
	} {
		c := base
		tc.edit(&c)
		if _, err := New(c, nil, nil, nil, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%s) = %v; want an error containing %q", tc.name, err, tc.want)
		}
	}
	d := base.withDefaults()
	if d.BatchSize != DefaultBatchSize || d.MaxInflight != DefaultMaxInflight || d.AckTimeout != DefaultAckTimeout ||
		d.StatusEvery != DefaultStatusEvery || d.ReconnectMin != DefaultReconnectMin || d.ReconnectMax != DefaultReconnectMax {
		t.Errorf("withDefaults() = %+v; want every zero field at its default", d)
	}
	if err := base.validate(); err != nil {
		t.Errorf("validate(zero fields) = %v; want nil", err)
	}
}
