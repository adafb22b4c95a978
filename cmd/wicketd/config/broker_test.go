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
