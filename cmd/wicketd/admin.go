package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"wicket/cmd/wicketd/config"
	"wicket/cmd/wicketd/display"
	"wicket/device/gate"
)

// newDisplay builds the HTTP surfaces the config turns on: the passenger
// page, metrics and health, and the admin API with its credential.
func (d *daemon) newDisplay() (*display.Server, error) {
	cfg := d.cfg
	dc := display.Config{
		IdleAfter: cfg.Display.IdleAfter, Kiosk: cfg.Display.Kiosk, Gate: cfg.Gate.ID,
		MaxClients: cfg.Display.MaxClients, MaxPerSource: cfg.Display.MaxClientsPerSource,
		MetricsAddr: cfg.HTTP.Metrics.Addr, Hosts: cfg.HTTP.Hosts,
	}
	if cfg.Display.Enabled {
		dc.Addr = cfg.Display.Addr
	}
	if a := cfg.HTTP.Admin; a.Enabled() {
		token, tlsConf, err := cfg.AdminCredentials()
		if err != nil {
			return nil, err
		}
		dc.AdminAddr, dc.AdminToken, dc.AdminTLS = a.Addr, token, tlsConf
		if tlsConf == nil && !display.IsLoopback(a.Addr) {
			d.log.Warn("admin API beyond loopback without HTTPS: the token crosses the network in clear; set http.admin.cert_file and key_file", "addr", a.Addr)
		}
	} else if a.Addr != "" {
		d.log.Info("admin API off: no credential; set http.admin.token_file for the kiosk buttons and wicketd ack-emergency")
	}
	s := display.New(dc, d.log)
	s.Metrics().SetVersion(version)
	s.OnAttendant = d.attendant
	s.OnAcknowledge = d.acknowledgeEmergency
	s.OnClockReset = d.clockReset
	s.OnStatus = func() any { return d.liveStatus() }
	return s, nil
}

// acknowledgeEmergency ends a latched emergency release: the gate locks
// again, and ended is true. It refuses, with an error wrapping
// gate.ErrEmergencyActive and the gate left free, while the emergency
// input is still active, and does nothing (ended false) if there is no
// release to end. by says who asked, for the log and the access log
// ("admin API token from 10.0.0.5"). Every way to acknowledge goes through
// here: the admin page, wicketd ack-emergency and, once verified, a signed
// acknowledge from the authority.
func (d *daemon) acknowledgeEmergency(by string) (ended bool, err error) {
	before := d.ts.EmergencyState()
	if err := d.ts.Acknowledge(); err != nil {
		d.log.Warn("emergency acknowledge refused", "by", by, "err", err)
		return false, err
	}
	if before == gate.EmergencyNormal {
		return false, nil
	}
	d.log.Warn("emergency acknowledged: gate locked again", "by", by)
	d.system("emergency_ack", by)
	if d.disp != nil {
		st := d.disp.State()
		st.Emergency, st.EmergencyLatched = false, false
		d.disp.SetState(st)
	}
	return true, nil
}

// maxAdminAnswer bounds an answer of the admin API a field tool reads: a
// status is under 2 KiB.
const maxAdminAnswer = 16 << 10

// adminTimeout bounds one request of a field tool to the local admin API.
const adminTimeout = 10 * time.Second

// adminClient is what a field tool needs to talk to the running gate's
// admin API: its base URL, a client that trusts exactly the configured
// certificate (with HTTPS) and the token.
type adminClient struct {
	base   string
	client *http.Client
	token  string
}

// newAdminClient reads the config's admin section. It connects to the
// admin address, or to loopback where that is a wildcard.
func newAdminClient(cfg *config.Config) (*adminClient, error) {
	a := cfg.HTTP.Admin
	if !a.Enabled() {
		return nil, errors.New("the admin API is off: set http.admin.addr and http.admin.token_file, then restart wicketd")
	}
	token, tlsConf, err := cfg.AdminCredentials()
	if err != nil {
		return nil, err
	}
	if len(token) == 0 {
		return nil, errors.New("http.admin.token_file: not set; this gate's admin API takes client certificates only: use the admin page")
	}
	host, port, err := net.SplitHostPort(a.Addr)
	if err != nil {
		return nil, fmt.Errorf("http.admin.addr: %w", err)
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.Is6() {
			host = "::1"
		}
	}
	c := &adminClient{base: "http://" + net.JoinHostPort(host, port), token: string(token), client: &http.Client{Timeout: adminTimeout}}
	if tlsConf != nil {
		// Trust exactly the certificate the gate serves: the tool runs on
		// the gate, beside the file.
		want := tlsConf.Certificates[0].Certificate[0]
		c.base = "https://" + net.JoinHostPort(host, port)
		c.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{
			MinVersion:         tls.VersionTLS12,
			InsecureSkipVerify: true, // replaced by the pin below
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				if len(raw) == 0 || !bytes.Equal(raw[0], want) {
					return errors.New("the admin API's certificate is not http.admin.cert_file")
				}
				return nil
			},
		}}
	}
	return c, nil
}

// post sends a JSON body to path and decodes the answer into out (also on
// errors: the server's message is in its "error" field). It returns the
// status.
func (c *adminClient) post(ctx context.Context, path, body string, out any) (int, error) {
	return c.do(ctx, http.MethodPost, path, body, out)
}

// get is post for GET requests.
func (c *adminClient) get(ctx context.Context, path string, out any) (int, error) {
	return c.do(ctx, http.MethodGet, path, "", out)
}

func (c *adminClient) do(ctx context.Context, method, path, body string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("admin API at %s: %w (is wicketd running?)", c.base, err)
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(io.LimitReader(resp.Body, maxAdminAnswer)).Decode(out)
	return resp.StatusCode, nil
}

// cmdAckEmergency asks the running gate, through its local admin API, to
// end a latched emergency release. The gate locks again only once the
// emergency input has cleared.
func cmdAckEmergency(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	cfg, ok := loadForTool("ack-emergency", args, stderr, nil)
	if !ok {
		return exitUsage
	}
	c, err := newAdminClient(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "wicketd ack-emergency: %v\n", err)
		return exitUsage
	}
	var ans struct {
		display.AckResponse
		Error string `json:"error"`
	}
	code, err := c.post(ctx, "/emergency/ack", "{}", &ans)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "wicketd ack-emergency: %v\n", err)
		return exitUsage
	case code == http.StatusOK && ans.Ended:
		fmt.Fprintln(stdout, "emergency release acknowledged: the gate is locked again and decides codes as before")
		return exitOK
	case code == http.StatusOK:
		fmt.Fprintln(stdout, "no emergency release to acknowledge: the gate is in normal operation")
		return exitOK
	case code == http.StatusConflict:
		fmt.Fprintln(stderr, "wicketd ack-emergency: the emergency input is still active: the gate stays free until the alarm clears; acknowledge again then")
		return exitDenied
	case code == http.StatusUnauthorized:
		fmt.Fprintln(stderr, "wicketd ack-emergency: the gate refused the token: wicketd reads http.admin.token_file at start; restart it after changing the file")
		return exitUsage
	default:
		fmt.Fprintf(stderr, "wicketd ack-emergency: admin API answered %d: %s\n", code, ans.Error)
		return exitUsage
	}
}
