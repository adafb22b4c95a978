package config

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"

	"wicket/sync/mqttconn"
)

// BrokerWarnings says how the sync broker connection is open to others,
// one sentence each: plaintext MQTT to a host that is not this machine
// (for each such URL of sync.broker or sync.brokers), and a remote broker
// with neither a client certificate nor a username (the broker cannot
// tell this gate from anyone, so its ACL cannot stop others writing the
// gate's records or forging its acks). Nothing when sync is off or every
// broker is on loopback.
func (s Sync) BrokerWarnings() []string {
	if !s.Enabled {
		return nil
	}
	field := "sync.broker"
	if len(s.Brokers) > 0 {
		field = "sync.brokers"
	}
	var w []string
	remote := ""
	for _, broker := range s.URLs() {
		u, err := url.Parse(broker)
		if err != nil || isLoopback(u.Hostname()) {
			continue
		}
		if remote == "" {
			remote = broker
		}
		if !mqttconn.TLSSchemes[u.Scheme] {
			w = append(w, fmt.Sprintf("%s %s is plaintext to a remote host: records, acks and trust data cross the network unencrypted, and anyone on the path can read or change them; use tls://%s:8883 with sync.ca_file, sync.cert_file and sync.key_file (docs/mqtt.md, Broker configuration)", field, broker, u.Hostname()))
		}
	}
	if remote != "" && s.CertFile == "" && s.Username == "" {
		w = append(w, fmt.Sprintf("sync: no client certificate (sync.cert_file) and no sync.username for the remote broker %s: the broker cannot tell this gate from any other client, so nothing stops others from writing its records or forging its acks; give each gate its own certificate (docs/SECURITY.md, Broker)", remote))
	}
	return w
}

// WarnBroker writes each of c.Sync.BrokerWarnings to w as a line starting
// "WARNING:". It only reports; the config stays valid.
func (c *Config) WarnBroker(w io.Writer) {
	for _, s := range c.Sync.BrokerWarnings() {
		fmt.Fprintf(w, "WARNING: %s\n", s)
	}
}

// isLoopback reports whether host is this machine: localhost or a
// loopback address. Names are not resolved.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
