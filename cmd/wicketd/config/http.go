package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"wicket/cmd/wicketd/display"
)

// HTTP says where the gate's HTTP surfaces listen besides the passenger
// page (display.addr) and who may use them. docs/SECURITY.md describes
// who can reach what.
type HTTP struct {
	// Hosts are the names by which the gate is reached over HTTP, besides
	// its IP addresses and localhost (e.g. gate-07.station.example). A
	// request naming any other host is refused on every surface: a
	// DNS-rebinding web page presents its own name.
	Hosts []string `yaml:"hosts"`
	// Metrics serves /metrics and /healthz.
	Metrics Metrics `yaml:"metrics"`
	// Admin is the attendant/admin API: the kiosk page with its buttons,
	// emergency acknowledge (wicketd ack-emergency). It needs a credential.
	Admin Admin `yaml:"admin"`
}

// Metrics is the observability surface.
type Metrics struct {
	// Addr is where /metrics and /healthz listen; empty: not served. The
	// fleet's Prometheus scrapes it, so it may listen beyond loopback
	// (firewalled to the scraper); it changes nothing on the gate.
	Addr string `yaml:"addr"`
}

// Admin is the attendant/admin API.
type Admin struct {
	// Addr is where it listens; empty: no admin API. It is served only
	// with a credential (TokenFile or ClientCAFile); on loopback without
	// one it stays off, beyond loopback without one the config is
	// refused.
	Addr string `yaml:"addr"`
	// TokenFile holds the admin token (at least 32 characters; make one
	// with: head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'),
	// owned by the gate's user with mode 0600. A browser is asked for it
	// (any user name, the token as password); the CLI sends it as a
	// bearer token.
	TokenFile string `yaml:"token_file"`
	// CertFile and KeyFile make the admin API speak HTTPS with this
	// certificate (PEM); use them whenever Addr is beyond loopback, or
	// the token crosses the network in clear.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile (PEM) makes a client certificate signed by one of its
	// CAs a credential (needs CertFile and KeyFile). With a token file
	// too, either credential is enough.
	ClientCAFile string `yaml:"client_ca_file"`
}

// DefaultAdminAddr is where the admin API listens when it has a
// credential and no address is set.
const DefaultAdminAddr = "127.0.0.1:8081"

// minAdminToken is the shortest admin token taken: 128 bits in hex.
const minAdminToken = 32

// HasCredential reports whether the admin API has a token file or a
// client CA configured.
func (a Admin) HasCredential() bool { return a.TokenFile != "" || a.ClientCAFile != "" }

// Enabled reports whether the admin API is served.
func (a Admin) Enabled() bool { return a.Addr != "" && a.HasCredential() }

// checkAddr keeps a problem if addr is not host:port.
func checkAddr(cs *checks, field, addr, example string) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		cs.add(fmt.Errorf("%s: %q: want host:port, e.g. %s", field, addr, example))
	}
}

// validate checks the passenger page's section when the page is served.
func (d Display) validate(cs *checks) {
	if !d.Enabled {
		return
	}
	checkAddr(cs, "display.addr", d.Addr, "127.0.0.1:8080")
	cs.check(d.IdleAfter < time.Second || d.IdleAfter > time.Minute, "display.idle_after: %v is out of range 1s..1m", d.IdleAfter)
	cs.check(d.MaxClients < 1 || d.MaxClients > 256, "display.max_clients: %d is out of range 1..256", d.MaxClients)
	cs.check(d.MaxClientsPerSource < 1 || d.MaxClientsPerSource > d.MaxClients, "display.max_clients_per_source: %d is out of range 1..max_clients (%d)", d.MaxClientsPerSource, d.MaxClients)
}

// validate checks the host names, the metrics and admin sections, and
// that no two surfaces (d's page among them) share an address.
func (h HTTP) validate(cs *checks, d Display) {
	for i, name := range h.Hosts {
		cs.check(name == "" || strings.ContainsAny(name, ":/ []"), "http.hosts[%d]: %q: want a host name without port or scheme, e.g. gate-07.station.example", i, name)
	}
	if h.Metrics.Addr != "" {
		checkAddr(cs, "http.metrics.addr", h.Metrics.Addr, "127.0.0.1:9101")
	}
	h.Admin.validate(cs, d)
	h.validateShared(cs, d)
}

// validate checks the admin API's address and credentials, and that the
// kiosk page d may ask for has them.
func (a Admin) validate(cs *checks, d Display) {
	if a.Addr != "" {
		checkAddr(cs, "http.admin.addr", a.Addr, DefaultAdminAddr)
	}
	cs.check(a.Addr != "" && !a.HasCredential() && !display.IsLoopback(a.Addr), "http.admin.addr: %s is reachable from the network but the admin API has no credential; set http.admin.token_file (or client_ca_file), or listen on %s", a.Addr, DefaultAdminAddr)
	cs.check(d.Enabled && d.Kiosk && !a.Enabled(), "display.kiosk: the attendant's buttons are on the admin API, which needs http.admin.addr and a credential; set http.admin.token_file")
	cs.check((a.CertFile == "") != (a.KeyFile == ""), "http.admin.cert_file/key_file: set both for HTTPS, or neither")
	cs.check(a.ClientCAFile != "" && a.CertFile == "", "http.admin.client_ca_file: client certificates need HTTPS; set http.admin.cert_file and key_file")
}

// validateShared checks that the page, metrics and admin API served each
// listen on their own address.
func (h HTTP) validateShared(cs *checks, d Display) {
	page := ""
	if d.Enabled {
		page = d.Addr
	}
	a := h.Admin
	if a.Enabled() {
		cs.check(page == a.Addr, "http.admin.addr: %s is also display.addr; the admin API needs its own address", a.Addr)
		cs.check(h.Metrics.Addr == a.Addr, "http.admin.addr: %s is also http.metrics.addr; the admin API needs its own address", a.Addr)
	}
	cs.check(page != "" && page == h.Metrics.Addr, "http.metrics.addr: %s is also display.addr; metrics need their own address", page)
}

// AdminCredentials reads what the admin API needs: the token (trimmed of
// surrounding space) and the TLS config. It refuses a token file others
// or the group can read or write, a short token, and unreadable or
// unparseable certificate files, naming the field and the fix.
func (c *Config) AdminCredentials() (token []byte, tlsConf *tls.Config, err error) {
	a := c.HTTP.Admin
	if a.TokenFile != "" {
		path := c.Path(a.TokenFile)
		st, err := os.Stat(path)
		if err != nil {
			return nil, nil, fmt.Errorf("http.admin.token_file: %w", err)
		}
		if m := st.Mode().Perm(); m&0o077 != 0 {
			return nil, nil, fmt.Errorf("http.admin.token_file: %s has mode %04o: anyone who reads it can open the gate; fix with chmod 0600 %s", path, m, path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("http.admin.token_file: %w", err)
		}
		token = []byte(strings.TrimSpace(string(b)))
		if len(token) < minAdminToken {
			return nil, nil, fmt.Errorf("http.admin.token_file: %s holds %d characters, fewer than %d; make one with: head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > %s", path, len(token), minAdminToken, path)
		}
	}
	if a.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.Path(a.CertFile), c.Path(a.KeyFile))
		if err != nil {
			return nil, nil, fmt.Errorf("http.admin.cert_file/key_file: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if a.ClientCAFile != "" {
		pem, err := os.ReadFile(c.Path(a.ClientCAFile))
		if err != nil {
			return nil, nil, fmt.Errorf("http.admin.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("http.admin.client_ca_file: %s holds no PEM certificate", c.Path(a.ClientCAFile))
		}
		tlsConf.ClientCAs = pool
		tlsConf.ClientAuth = tls.RequireAndVerifyClientCert
		if token != nil {
			// Either credential is enough: a certificate, if given, must
			// verify; without one the token is asked for.
			tlsConf.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	return token, tlsConf, nil
}
