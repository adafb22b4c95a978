package display

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func getPage(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPage(t *testing.T) {
	s, _, _ := newTestServer(t, Config{Gate: `G1 <b>"north"</b>`, Kiosk: true})
	page := getPage(t, withToken(serve(t, s.AdminHandler()).URL))
	for _, id := range []string{
		"screen", "idle", "gate", "verdict", "icon", "msg-zh", "msg-en", "holder", "name", "class", "kind",
		"test-age", "doses", "attendant", "attendant-prompt", "attendant-actions", "btn-confirm", "btn-reject",
		"banner-emergency", "emergency-ack", "btn-ack", "banner-offline", "banner-stale", "banner-clock", "banner-notready", "conn",
	} {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("page has no element id %q", id)
		}
	}
	for _, colour := range []string{"#1a9e4b", "#f2c200", "#d7263d", "#6b7280", "#1d4ed8"} {
		if !strings.Contains(page, colour) {
			t.Errorf("page lacks colour %s", colour)
		}
	}
	for _, want := range []string{`data-kiosk="true"`, `data-admin="true"`, `data-idle-ms="5000"`, `data-attendant-ms="30000"`, "EventSource", "clamp(", "vmin"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|\bsrc\s*=|\bhref\s*=|@import|url\(`)
	if m := external.FindAllString(page, -1); len(m) > 0 {
		t.Errorf("page refers to outside resources: %q", m)
	}
	if strings.Contains(page, "<b>") || !strings.Contains(page, "G1 &lt;b&gt;") {
		t.Error("gate name is not escaped")
	}
	// The only requests the page makes besides /events are the attendant
	// answer and the emergency acknowledge.
	for _, m := range regexp.MustCompile(`fetch\([^,]*`).FindAllString(page, -1) {
		if m != "fetch('attendant'" && m != "fetch('emergency/ack'" {
			t.Errorf("page makes a request other than the admin actions: %s", m)
		}
	}
}

// TestPageNotKiosk: the passenger page has no attendant or admin
// actions, even in kiosk mode.
func TestPageNotKiosk(t *testing.T) {
	_, ts, _ := newTestServer(t, Config{Kiosk: true})
	if page := getPage(t, ts.URL); !strings.Contains(page, `data-kiosk="false"`) || !strings.Contains(page, `data-admin="false"`) {
		t.Error("kiosk or admin flag not off on the passenger page")
	}
	for _, path := range []string{"/attendant", "/emergency/ack"} {
		resp, err := http.Post(ts.URL+path, "application/json", strings.NewReader(`{"seq":1,"action":"confirm"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST %s on the passenger page = %d; want 404 or 405", path, resp.StatusCode)
		}
	}
	resp, err := http.Get(ts.URL + "/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nothing = %d; want 404", resp.StatusCode)
	}
}
