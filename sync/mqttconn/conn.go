// Package mqttconn is how every Wicket MQTT client connects: the broker
// URL, or the nodes of a clustered broker tried in turn (failover, see
// Guard), client id, credentials and TLS files (Conn), paho's options
// built from them. Gates, collectors and wicketctl share it; the jittered
// backoff between attempts is internal/clock's Backoff.
//
// Two guards come with every client built from Conn.Options, so that
// nothing on the broker can exhaust a client's memory or wedge its
// session:
//
//   - Bounded memory per message. The connection parses the MQTT stream
//     as it is read (the plaintext stream, inside TLS). A PUBLISH larger
//     than Conn.MaxMessage (DefaultMaxMessage, 9 MiB) is never buffered:
//     its payload is read and dropped piece by piece, and paho receives a
//     small marker in its place, with the same packet id and QoS, on
//     OversizedPrefix + the original topic. Oversized recognises it.
//     paho acknowledges it like any message, so the broker does not send
//     it again on this session (a retained one comes again on the next
//     subscribe, and is dropped again). While it drops the payload the
//     connection hands paho a PINGRESP every 64 KiB, so a slow link does
//     not trip paho's keepalive. A broker stream that is not MQTT
//     (a remaining length over four bytes, a PUBLISH topic overrunning its
//     packet, any other packet over the limit) fails the read with
//     ErrProtocol and paho drops the connection.
//   - Unrouted messages are acknowledged. paho acknowledges a QoS 1
//     message only after a handler returns, and has none for a message
//     that matches no route: the broker's in-flight window (20 on
//     Mosquitto) then stays full and the session stops delivering. Options
//     sets DropHandler as the default handler, so such messages are
//     acknowledged, dropped and counted. Queued messages of a persistent
//     session arrive right after CONNACK, before any Subscribe returns: a
//     client that must not drop them adds its routes (Client.AddRoute)
//     before Connect. A client with its own default handler hands what it
//     does not want to DropHandler.
//
// Both are counted in Conn.Counters, when set. A client that builds its
// own paho options gets the first with Guard and should set DropHandler,
// or acknowledge every message in its own default handler.
package mqttconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Conn says how to reach the broker. Gates, collectors and wicketctl use
// it alike.
type Conn struct {
	// Broker is tcp://host:1883, or tls://host:8883 (also ssl://).
	Broker string `yaml:"broker"`
	// Brokers, instead of Broker, lists the nodes of one clustered broker
	// (or brokers sharing their sessions): a connect tries them in turn,
	// and after a connection is lost the next connect starts with the
	// node after the one that was in use (see Guard). At most MaxBrokers.
	Brokers []string `yaml:"brokers"`
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
	// about 1.5 times this. 0 means DefaultKeepAlive.
	KeepAlive time.Duration `yaml:"keepalive"`
	// MaxMessage is the largest MQTT packet, in bytes, the client reads
	// into memory; a larger PUBLISH is dropped as it streams in and
	// replaced by a marker (see Oversized). 0 means DefaultMaxMessage
	// (9 MiB); at least MinMaxMessage, so every trust document fits. Not
	// a config file option: the limit follows the wire format, not the
	// site.
	MaxMessage int64 `yaml:"-" json:"-"`
	// ConnectTimeout bounds one connection attempt to one node: the TCP
	// (and TLS) handshake and the wait for CONNACK. A connect that tries
	// every node of Brokers may take len(Brokers) times this. 0 means
	// DefaultConnectTimeout. Not a config file option: tests and the
	// fleet simulator shorten it.
	ConnectTimeout time.Duration `yaml:"-" json:"-"`
	// Counters, if set, counts oversized and unrouted messages of clients
	// built from Options.
	Counters *Counters `yaml:"-" json:"-"`
}

// Validate checks the fields, naming the bad one.
func (c Conn) Validate(prefix string) error {
	switch {
	case c.Broker == "" && len(c.Brokers) == 0:
		return fmt.Errorf("%sbroker: missing; e.g. tls://broker.example:8883 (or %sbrokers: a list of cluster nodes)", prefix, prefix)
	case c.Broker != "" && len(c.Brokers) > 0:
		return fmt.Errorf("%sbrokers: set broker or brokers, not both (brokers lists the nodes of one cluster)", prefix)
	case c.ClientID == "" || len(c.ClientID) > 23*4:
		return fmt.Errorf("%sclient_id: must be set and stable (at most 92 characters)", prefix)
	case (c.CertFile == "") != (c.KeyFile == ""):
		return fmt.Errorf("%scert_file and key_file go together", prefix)
	case c.KeepAlive < 0:
		return fmt.Errorf("%skeepalive: must not be negative", prefix)
	case c.ConnectTimeout < 0:
		return fmt.Errorf("%sConnectTimeout: must not be negative; 0 means %v", prefix, DefaultConnectTimeout)
	case c.MaxMessage != 0 && c.MaxMessage < MinMaxMessage:
		return fmt.Errorf("%sMaxMessage: %d is below %d bytes, the largest trust document plus headers; leave it 0 for %d", prefix, c.MaxMessage, int64(MinMaxMessage), int64(DefaultMaxMessage))
	}
	field := prefix + "broker"
	if len(c.Brokers) > 0 {
		field = prefix + "brokers"
	}
	tlsURLs, err := CheckBrokers(c.URLs())
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	if !tlsURLs && (c.CAFile != "" || c.CertFile != "") {
		return fmt.Errorf("%sca_file, cert_file: need a TLS broker URL (tls://...), not %s://", prefix, c.scheme())
	}
	return nil
}

// CheckBrokers checks the URLs of one broker or of the nodes of one
// cluster: at least one and at most MaxBrokers, each as CheckBroker
// wants it, none twice, all TLS or all plaintext. It reports whether
// they are TLS.
func CheckBrokers(urls []string) (tls bool, err error) {
	if len(urls) == 0 || len(urls) > MaxBrokers {
		return false, fmt.Errorf("%d URLs; want 1 to %d", len(urls), MaxBrokers)
	}
	seen := make(map[string]bool)
	for i, broker := range urls {
		scheme, err := CheckBroker(broker)
		switch {
		case err != nil:
			return false, fmt.Errorf("%q: %w", broker, err)
		case seen[broker]:
			return false, fmt.Errorf("%q is listed twice", broker)
		case i == 0:
			tls = TLSSchemes[scheme]
		case TLSSchemes[scheme] != tls:
			return false, fmt.Errorf("%q: mixes TLS and plaintext nodes; use tls:// for all of them", broker)
		}
		seen[broker] = true
	}
	return tls, nil
}

// URLs are the broker URLs a client connects to, in order: Brokers, or
// Broker alone.
func (c Conn) URLs() []string {
	if len(c.Brokers) > 0 {
		return c.Brokers
	}
	return []string{c.Broker}
}

// connectTimeout is ConnectTimeout, or its default.
func (c Conn) connectTimeout() time.Duration {
	if c.ConnectTimeout == 0 {
		return DefaultConnectTimeout
	}
	return c.ConnectTimeout
}

// ConnectWait is the longest one Connect of a client built from Options
// can take: every node tried once, each for at most the connect timeout.
// A caller that gives up on a Connect sooner leaves paho connecting, and
// must not call Connect again until that one has finished.
func (c Conn) ConnectWait() time.Duration {
	return time.Duration(len(c.URLs())) * c.connectTimeout()
}

// scheme is the scheme of the first broker URL ("" if it does not parse).
func (c Conn) scheme() string {
	scheme, _ := CheckBroker(c.URLs()[0])
	return scheme
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
// where the URLs ask for it, every URL of URLs in turn (see Guard), no
// automatic reconnect (callers run their own loop with backoff and
// jitter, see internal/clock.Backoff), reads bounded by MaxMessage and DropHandler as
// the default handler (see the package doc).
func (c Conn) Options() (*mqtt.ClientOptions, error) {
	o := mqtt.NewClientOptions()
	for _, broker := range c.URLs() {
		o.AddBroker(broker)
	}
	o.SetClientID(c.ClientID).
		SetProtocolVersion(4).SetCleanSession(false).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(c.connectTimeout()).SetWriteTimeout(10 * time.Second).SetOrderMatters(false).
		SetDefaultPublishHandler(DropHandler(c.Counters))
	Guard(o, c.MaxMessage, c.Counters)
	ka := c.KeepAlive
	if ka == 0 {
		ka = DefaultKeepAlive
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
	if TLSSchemes[c.scheme()] {
		tc, err := TLSConfig(c.CAFile, c.CertFile, c.KeyFile)
		if err != nil {
			return nil, err
		}
		o.SetTLSConfig(tc)
	}
	return o, nil
}

// Guard makes the connections of a client built from o read through the
// size guard: a PUBLISH over maxMessage bytes (0 means DefaultMaxMessage)
// is never held in memory but replaced by a marker (see Oversized) and
// counted in n, which may be nil. Options applies it. A client that builds
// its own options calls it too, and sets DropHandler, or a default handler
// of its own that acknowledges every message, so markers and unrouted
// messages cannot wedge its session. It dials the schemes CheckBroker
// accepts, with o's TLS config and connect timeout.
//
// With several brokers in o (call Guard after adding them) the client
// fails over: paho tries each of them once per Connect, and Guard hands
// them out in turn, so every Connect starts with the broker after the
// one the previous Connect used or failed on. A client whose connection
// to one node dropped thus tries the next node first, not the one that
// went away (which may hang until the connect timeout). n.Broker tells
// which broker the last connection was made to.
func Guard(o *mqtt.ClientOptions, maxMessage int64, n *Counters) *mqtt.ClientOptions {
	if maxMessage == 0 {
		maxMessage = DefaultMaxMessage
	}
	r := &rotation{urls: slices.Clone(o.Servers)}
	return o.SetCustomOpenConnectionFn(func(u *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
		u = r.next(u)
		conn, err := dial(u, o)
		if err != nil {
			return nil, err
		}
		n.setBroker(u.String())
		return &guardedConn{Conn: conn, g: newGuard(conn, maxMessage, func(string, int64) { n.addOversized() })}, nil
	})
}

// rotation hands out a client's broker URLs in turn, one per dial.
type rotation struct {
	urls []*url.URL
	n    atomic.Uint64
}

// next is the URL to dial: the one after the last one handed out. paho
// asks for each of its servers once per Connect, in its own order; which
// one it asks for does not matter, only how many times. With no URLs
// (options built without a broker) it is paho's u.
func (r *rotation) next(u *url.URL) *url.URL {
	if len(r.urls) == 0 {
		return u
	}
	return r.urls[(r.n.Add(1)-1)%uint64(len(r.urls))]
}

// dial connects to the broker u names: TCP, and TLS with o.TLSConfig for
// the TLS schemes, within o.ConnectTimeout.
func dial(u *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	tlsScheme := TLSSchemes[u.Scheme]
	if !tlsScheme && u.Scheme != "tcp" && u.Scheme != "mqtt" {
		return nil, fmt.Errorf("broker scheme %q: use tcp:// or tls://", u.Scheme)
	}
	ctx := context.Background()
	if o.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.ConnectTimeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil || !tlsScheme {
		return conn, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.TLSConfig != nil {
		tc = o.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = u.Hostname()
	}
	tconn := tls.Client(conn, tc)
	if err := tconn.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tconn, nil
}
