// Package mqttconn is how every Wicket MQTT client connects: the broker
// URL, client id, credentials and TLS files (Conn), paho's options built
// from them, and the jittered backoff between attempts. Gates, collectors
// and wicketctl share it.
package mqttconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Conn says how to reach the broker. Gates, collectors and wicketctl use
// it alike.
type Conn struct {
	// Broker is tcp://host:1883, or tls://host:8883 (also ssl://).
	Broker string `yaml:"broker"`
	// ClientID must be stable per client: the broker keeps its session
	// (subscriptions, queued QoS 1 messages) under it.
	ClientID string `yaml:"client_id"`
	// Username and PasswordFile, if the broker wants them.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// CAFile verifies the broker's certificate (default: system roots);
	// CertFile and KeyFile are this client's certificate for mutual TLS.
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// KeepAlive is the MQTT keep-alive; a dead link is noticed within
	// about 1.5 times this.
	KeepAlive time.Duration `yaml:"keepalive"`
}

// Validate checks the fields, naming the bad one.
func (c Conn) Validate(prefix string) error {
	switch {
	case c.Broker == "":
		return fmt.Errorf("%sbroker: missing; e.g. tls://broker.example:8883", prefix)
	case c.ClientID == "" || len(c.ClientID) > 23*4:
		return fmt.Errorf("%sclient_id: must be set and stable (at most 92 characters)", prefix)
	case (c.CertFile == "") != (c.KeyFile == ""):
		return fmt.Errorf("%scert_file and key_file go together", prefix)
	case c.KeepAlive < 0:
		return fmt.Errorf("%skeepalive: must not be negative", prefix)
	}
	scheme, err := CheckBroker(c.Broker)
	if err != nil {
		return fmt.Errorf("%sbroker: %q: %w", prefix, c.Broker, err)
	}
	if !TLSSchemes[scheme] && (c.CAFile != "" || c.CertFile != "") {
		return fmt.Errorf("%sca_file, cert_file: need a TLS broker URL (tls://...), not %s://", prefix, scheme)
	}
	return nil
}

// TLSSchemes are the broker URL schemes paho connects with TLS.
var TLSSchemes = map[string]bool{"ssl": true, "tls": true, "mqtts": true}

// CheckBroker returns the scheme of a broker URL, checking it names a
// host and port paho can dial.
func CheckBroker(broker string) (string, error) {
	u, err := url.Parse(broker)
	if err != nil {
		return "", err
	}
	if u.Scheme != "tcp" && u.Scheme != "mqtt" && !TLSSchemes[u.Scheme] {
		return "", fmt.Errorf("scheme %q: use tcp:// or tls:// (also ssl://)", u.Scheme)
	}
	if u.Hostname() == "" || u.Port() == "" {
		return "", errors.New("want scheme://host:port")
	}
	return u.Scheme, nil
}

// TLSConfig reads a CA file and a client certificate pair: TLS 1.2 or
// later, the system roots unless caFile is set. Empty names are skipped.
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", caFile)
		}
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Options builds paho's options: MQTT 3.1.1, persistent session, TLS 1.2+
// where the URL asks for it, no automatic reconnect (callers run their own
// loop with backoff and jitter, see Backoff).
func (c Conn) Options() (*mqtt.ClientOptions, error) {
	o := mqtt.NewClientOptions().AddBroker(c.Broker).SetClientID(c.ClientID).
		SetProtocolVersion(4).SetCleanSession(false).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(10 * time.Second).SetWriteTimeout(10 * time.Second).SetOrderMatters(false)
	ka := c.KeepAlive
	if ka == 0 {
		ka = 30 * time.Second
	}
	o.SetKeepAlive(ka).SetPingTimeout(ka / 2)
	if c.Username != "" {
		o.SetUsername(c.Username)
	}
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("password_file: %w", err)
		}
		o.SetPassword(strings.TrimRight(string(b), "\r\n"))
	}
	if scheme, _ := CheckBroker(c.Broker); TLSSchemes[scheme] {
		tc, err := TLSConfig(c.CAFile, c.CertFile, c.KeyFile)
		if err != nil {
			return nil, err
		}
		o.SetTLSConfig(tc)
	}
	return o, nil
}
