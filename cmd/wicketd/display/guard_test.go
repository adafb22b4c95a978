package display

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"wicket/device/gate"
)

// adminCall is one request to a surface and what it must get.
type adminCall struct {
	name    string
	header  map[string]string
	code    int
	reaches bool // the action hook runs
}

// TestAdminRefusesWithoutCredential: the attendant and acknowledge actions
// of the admin API need the token; a plain curl, a wrong token, a forged
// Host or a foreign Origin gets nothing done.
func TestAdminRefusesWithoutCredential(t *testing.T) {
	s, _, _ := newTestServer(t, Config{Kiosk: true})
	admin := serve(t, s.AdminHandler())
	calls := 0
	s.OnAttendant = func(uint64, bool) error { calls++; return nil }
	s.OnAcknowledge = func(string) (bool, error) { calls++; return true, nil }
	host := strings.TrimPrefix(admin.URL, "http://")
	bearer := "Bearer " + testToken
	for _, path := range []string{"/attendant", "/emergency/ack"} {
		for _, tt := range []adminCall{
			{name: "curl, no credential", code: 401},
			{name: "wrong token", header: map[string]string{"Authorization": "Bearer " + strings.Repeat("0", len(testToken))}, code: 401},
			{name: "token prefix", header: map[string]string{"Authorization": "Bearer " + testToken[:16]}, code: 401},
			{name: "empty basic password", header: map[string]string{"Authorization": "Basic YXR0ZW5kYW50Og=="}, code: 401},
			{name: "forged host", header: map[string]string{"Authorization": bearer, "Host": "evil.example"}, code: 421},
			{name: "rebinding host with port", header: map[string]string{"Authorization": bearer, "Host": "rebind.evil.example:" + strings.Split(host, ":")[1]}, code: 421},
			{name: "foreign origin", header: map[string]string{"Authorization": bearer, "Origin": "http://evil.example"}, code: 403},
			{name: "https origin of the gate", header: map[string]string{"Authorization": bearer, "Origin": "https://" + host}, code: 403},
			{name: "cross-site fetch", header: map[string]string{"Authorization": bearer, "Sec-Fetch-Site": "cross-site"}, code: 403},
			{name: "bearer", header: map[string]string{"Authorization": bearer}, code: 200, reaches: true},
			{name: "same origin, basic auth", header: map[string]string{"Authorization": "Basic " + basic(testToken), "Origin": "http://" + host, "Sec-Fetch-Site": "same-origin"}, code: 200, reaches: true},
			{name: "localhost", header: map[string]string{"Authorization": bearer, "Host": "LocalHost."}, code: 200, reaches: true},
		} {
			calls = 0
			body := `{}`
			if path == "/attendant" {
				body = `{"seq":5,"action":"confirm"}`
			}
			header := map[string]string{"Content-Type": "application/json"}
			for k, v := range tt.header {
				header[k] = v
			}
			resp := request(t, http.MethodPost, admin.URL+path, body, header)
			if resp.StatusCode != tt.code {
				t.Errorf("%s %s = %d; want %d", path, tt.name, resp.StatusCode, tt.code)
			}
			if resp.StatusCode == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("%s %s: 401 without a basic-auth challenge", path, tt.name)
			}
			if (calls == 1) != tt.reaches {
				t.Errorf("%s %s: action ran %d times; want %v", path, tt.name, calls, tt.reaches)
			}
		}
	}
	// Reading the admin page and its events needs the credential too.
	for _, path := range []string{"/", "/events", "/state"} {
		if resp := request(t, http.MethodGet, admin.URL+path, "", nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without credential = %d; want 401", path, resp.StatusCode)
		}
	}
	// The operator sees the refusals.
	got := values(t, scrape(t, serve(t, s.MetricsHandler()).URL), "wicket_http_refused_total", dto.MetricType_COUNTER)
	want := map[string]float64{"reason=no_credential": 2*4 + 3, "reason=unknown_host": 2 * 2, "reason=cross_origin": 2 * 3}
	if !maps.Equal(got, want) {
		t.Errorf("wicket_http_refused_total = %v; want %v", got, want)
	}
}

func basic(password string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	req.SetBasicAuth("attendant", password)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// TestHostChecked: every surface refuses a Host that does not name the
// gate, and takes the configured names, localhost and the address the
// request came to.
func TestHostChecked(t *testing.T) {
	s, page, _ := newTestServer(t, Config{Hosts: []string{"Gate-07.Station.example."}})
	metrics := serve(t, s.MetricsHandler())
	addr := strings.TrimPrefix(page.URL, "http://")
	for _, tt := range []struct {
		host string
		code int
	}{
		{"evil.example", 421},
		{"gate-07.station.example.evil.example", 421},
		{"192.0.2.9", 421},
		{addr, 200},
		{"localhost:80", 200},
		{"[::1]:8080", 200},
		{"gate-07.station.example", 200},
		{"GATE-07.station.example.:8080", 200},
	} {
		for _, base := range []string{page.URL + "/", metrics.URL + "/metrics"} {
			if resp := request(t, http.MethodGet, base, "", map[string]string{"Host": tt.host}); resp.StatusCode != tt.code {
				t.Errorf("GET %s with Host %q = %d; want %d", base, tt.host, resp.StatusCode, tt.code)
			}
		}
	}
}

// TestAcknowledgeEndpoint: POST /emergency/ack reports the gate's answer:
// 409 while the input is still active, 200 once it locked.
func TestAcknowledgeEndpoint(t *testing.T) {
	s, _, _ := newTestServer(t, Config{})
	admin := withToken(serve(t, s.AdminHandler()).URL)
	post := func(body string) int {
		t.Helper()
		return request(t, http.MethodPost, admin+"/emergency/ack", body, map[string]string{"Content-Type": "application/json"}).StatusCode
	}
	if code := post(`{}`); code != http.StatusServiceUnavailable {
		t.Errorf("ack with no hook = %d; want 503", code)
	}
	var by []string
	active := true
	s.OnAcknowledge = func(who string) (bool, error) {
		by = append(by, who)
		if active {
			return false, fmt.Errorf("acknowledge: %w", gate.ErrEmergencyActive)
		}
		return true, nil
	}
	if code := post(`{}`); code != http.StatusConflict {
		t.Errorf("ack while the input is active = %d; want 409", code)
	}
	active = false
	if code := post(``); code != http.StatusOK {
		t.Errorf("ack after the input cleared = %d; want 200", code)
	}
	if code := post(`{"force":true}`); code != http.StatusBadRequest {
		t.Errorf("ack with an unknown field = %d; want 400", code)
	}
	if len(by) != 2 || by[1] != "admin API token from 127.0.0.1" {
		t.Errorf("hook told %q; want who asked, twice", by)
	}
	s.OnAcknowledge = func(string) (bool, error) { return false, errors.New("relay write failed") }
	if code := post(`{}`); code != http.StatusInternalServerError {
		t.Errorf("ack with a failing relay = %d; want 500", code)
	}
}

// TestServeRefusesAdminWithoutCredential: Serve does not open an admin
// API that would take anyone.
func TestServeRefusesAdminWithoutCredential(t *testing.T) {
	s := New(Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(context.Background(), Listeners{Admin: ln}); !errors.Is(err, ErrNoCredential) {
		t.Fatalf("Serve without a credential = %v; want ErrNoCredential", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Error("listener left open")
	}
}

// TestRunKeepsServingWhenAPortIsTaken: a surface whose port another
// process holds is retried while the others serve, and comes up once the
// port is free; Run refuses an admin API without a credential at once.
func TestRunKeepsServingWhenAPortIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pageAddr := free.Addr().String()
	free.Close()
	s, _, fc := newTestServer(t, Config{Addr: pageAddr, MetricsAddr: taken.Addr().String()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	if err := fc.BlockUntilContext(ctx, 1); err != nil { // the metrics retry
		t.Fatal(err)
	}
	waitUp(t, "http://"+pageAddr+"/", "the page while the metrics port is taken")
	taken.Close()
	fc.Advance(listenRetry)
	waitUp(t, "http://"+taken.Addr().String()+"/metrics", "metrics once the port is free")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v; want nil after ctx ended", err)
	}

	s2 := New(Config{AdminAddr: "127.0.0.1:0"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := s2.Run(context.Background()); !errors.Is(err, ErrNoCredential) {
		t.Errorf("Run with an admin API and no credential = %v; want ErrNoCredential", err)
	}
}

// waitUp polls url until it answers 200.
func waitUp(t *testing.T, url, what string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered 200: %v %v", what, err, resp)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
