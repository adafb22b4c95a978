package config

import (
	"bytes"
	"strings"
	"testing"

	"wicket/sync/mqttconn"
)

func TestBrokerWarnings(t *testing.T) {
	const plaintext, anonymous = "plaintext", "no client certificate"
	for _, tc := range []struct {
		name string
		sync Sync
		want []string // substrings, one per warning, in order
	}{
		{"sync off", Sync{Conn: mqttconn.Conn{Broker: "tcp://broker.example:1883"}}, nil},
		{"loopback plaintext", Sync{Enabled: true, Conn: mqttconn.Conn{Broker: "tcp://127.0.0.1:1883"}}, nil},
		{"localhost", Sync{Enabled: true, Conn: mqttconn.Conn{Broker: "tcp://localhost:1883"}}, nil},
		{"ipv6 loopback", Sync{Enabled: true, Conn: mqttconn.Conn{Broker: "tcp://[::1]:1883"}}, nil},
		{"remote plaintext, anonymous", Sync{Enabled: true, Conn: mqttconn.Conn{Broker: "tcp://broker.example:1883"}}, []string{plaintext, anonymous}},
		{"remote plaintext with a password", Sync{Enabled: true, Conn: mqttconn.Conn{Broker: "mqtt://10.0.0.5:1883", Username: "g1", PasswordFile: "/p"}}, []string{plaintext}},
		{"remote TLS, no identity", Sync{Enabled: true, Conn: mqttconn.Conn{Broker: "tls://broker.example:8883", CAFile: "ca.pem"}}, []string{anonymous}},
		{"remote TLS with a certificate", Sync{Enabled: true, Conn: mqttconn.Conn{Broker: "ssl://broker.example:8883", CertFile: "g.crt", KeyFile: "g.key"}}, nil},
		{"remote TLS with a username", Sync{Enabled: true, Conn: mqttconn.Conn{Broker: "tls://broker.example:8883", Username: "g1"}}, nil},
		{"loopback cluster", Sync{Enabled: true, Conn: mqttconn.Conn{Brokers: []string{"tcp://127.0.0.1:1883", "tcp://127.0.0.2:1883"}}}, nil},
		{"cluster, one node remote plaintext", Sync{Enabled: true, Conn: mqttconn.Conn{Brokers: []string{"tcp://127.0.0.1:1883", "tcp://n2.example:1883", "tcp://n3.example:1883"}}}, []string{"sync.brokers tcp://n2.example:1883 is plaintext", "sync.brokers tcp://n3.example:1883 is plaintext", anonymous}},
		{"TLS cluster with a certificate", Sync{Enabled: true, Conn: mqttconn.Conn{Brokers: []string{"tls://n1.example:8883", "tls://n2.example:8883"}, CertFile: "g.crt", KeyFile: "g.key"}}, nil},
		{"TLS cluster, no identity", Sync{Enabled: true, Conn: mqttconn.Conn{Brokers: []string{"tls://n1.example:8883", "tls://n2.example:8883"}}}, []string{"remote broker tls://n1.example:8883"}},
	} {
		got := tc.sync.BrokerWarnings()
		ok := len(got) == len(tc.want)
		for i := 0; ok && i < len(got); i++ {
			ok = strings.Contains(got[i], tc.want[i])
		}
		if !ok {
			t.Errorf("BrokerWarnings(%s) = %q; want %d warnings containing %q", tc.name, got, len(tc.want), tc.want)
		}
	}
}

func TestWarnBroker(t *testing.T) {
	c := Default()
	c.Sync.Enabled, c.Sync.Broker = true, "tcp://192.0.2.7:1883"
	var out bytes.Buffer
	c.WarnBroker(&out)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "WARNING: sync.broker tcp://192.0.2.7:1883 is plaintext") || !strings.HasPrefix(lines[1], "WARNING: sync: no client certificate") {
		t.Errorf("WarnBroker wrote %q; want two WARNING lines, plaintext then no identity", out.String())
	}
}

// TestBrokersKey: sync.brokers lists a cluster's nodes in place of
// sync.broker; a bad entry, or both keys, is an error at the line of
// sync.brokers.
func TestBrokersKey(t *testing.T) {
	base := "gate: {id: G1, venue: V1}\ntrust: {root_keys: [r.pub]}\nscanner: {type: stdin}\nturnstile: {backend: sim}\nsync:\n  enabled: true\n  fleet: f1\n"
	c, err := Parse([]byte(base+"  brokers: [tcp://127.0.0.1:4001, tcp://127.0.0.1:4002]\n"), "/etc/wicket")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Sync.URLs(); len(got) != 2 || got[1] != "tcp://127.0.0.1:4002" {
		t.Errorf("URLs() = %q; want the two listed nodes", got)
	}
	if c, err = Parse([]byte(base+"  broker: tcp://127.0.0.1:4001\n"), "/etc/wicket"); err != nil || len(c.Sync.URLs()) != 1 {
		t.Errorf("the single broker key: %v, URLs %q", err, c.Sync.URLs())
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"bad node", "  brokers: [tcp://127.0.0.1:4001, tcp://n2]\n", `line 8: sync.brokers: "tcp://n2": want scheme://host:port`},
		{"both keys", "  broker: tcp://127.0.0.1:4001\n  brokers: [tcp://127.0.0.1:4002]\n", "line 9: sync.brokers: set broker or brokers, not both"},
	} {
		_, err := Parse([]byte(base+tc.yaml), "/etc/wicket")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v; want an error containing %q", tc.name, err, tc.want)
		}
	}
}
