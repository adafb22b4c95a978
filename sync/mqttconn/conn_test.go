package mqttconn

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := Conn{Broker: "tcp://127.0.0.1:1883", ClientID: "g1"}
	for _, tc := range []struct {
		name    string
		mod     func(c *Conn)
		wantErr string
	}{
		{"ok", func(*Conn) {}, ""},
		{"tls ok", func(c *Conn) { c.Broker = "tls://broker:8883"; c.CAFile = "ca.pem" }, ""},
		{"no broker", func(c *Conn) { c.Broker = "" }, "broker: missing"},
		{"http", func(c *Conn) { c.Broker = "http://x:80" }, "scheme"},
		{"no port", func(c *Conn) { c.Broker = "tcp://host" }, "host:port"},
		{"no client id", func(c *Conn) { c.ClientID = "" }, "client_id"},
		{"cert without key", func(c *Conn) { c.Broker = "tls://b:8883"; c.CertFile = "c.pem" }, "go together"},
		{"ca on plain tcp", func(c *Conn) { c.CAFile = "ca.pem" }, "need a TLS broker"},
		{"max message below a trust document", func(c *Conn) { c.MaxMessage = 1 << 20 }, "MaxMessage"},
		{"max message at the minimum", func(c *Conn) { c.MaxMessage = MinMaxMessage }, ""},
		{"broker list", brokers("tcp://127.0.0.1:1", "tcp://127.0.0.1:2"), ""},
		{"tls list with a CA", func(c *Conn) { brokers("tls://a:8883", "tls://b:8883")(c); c.CAFile = "ca.pem" }, ""},
		{"broker and brokers", func(c *Conn) { c.Brokers = []string{"tcp://b:1883"} }, "not both"},
		{"bad list entry", brokers("tcp://a:1883", "tcp://b"), `sync.brokers: "tcp://b"`},
		{"listed twice", brokers("tcp://a:1883", "tcp://a:1883"), "listed twice"},
		{"mixed tls", brokers("tls://a:8883", "tcp://b:1883"), "mixes TLS and plaintext"},
		{"ca with a plaintext list", func(c *Conn) { brokers("tcp://a:1883")(c); c.CAFile = "ca.pem" }, "need a TLS broker"},
		{"too many brokers", brokers(make([]string, MaxBrokers+1)...), "want 1 to 16"},
	} {
		c := ok
		tc.mod(&c)
		err := c.Validate("sync.")
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("Validate(%s) = %v; want error containing %q", tc.name, err, tc.wantErr)
		}
	}
}

// brokers sets Brokers in place of Broker.
func brokers(urls ...string) func(*Conn) {
	return func(c *Conn) { c.Broker, c.Brokers = "", urls }
}
