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
	_, ts, _ := newTestServer(t, Config{Gate: `G1 <b>"north"</b>`, Kiosk: true})
	page := getPage(t, ts.URL)
	for _, id := range []string{
		"screen", "idle", "gate", "verdict", "icon", "msg-zh", "msg-en", "holder", "name", "class", "kind",
		"test-age", "doses", "attendant", "attendant-prompt", "attendant-actions", "btn-confirm", "btn-reject",
		"banner-emergency", "banner-offline", "banner-stale", "banner-clock", "banner-notready", "conn",
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
	for _, want := range []string{`data-kiosk="true"`, `data-idle-ms="5000"`, `data-attendant-ms="30000"`, "EventSource", "clamp(", "vmin"} {
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
	// The only request the page makes besides /events is the attendant POST.
	if strings.Contains(page, "fetch(") && !strings.Contains(page, "fetch('attendant'") {
		t.Error("page fetches something other than the attendant endpoint")
	}
}

func TestPageNotKiosk(t *testing.T) {
	_, ts, _ := newTestServer(t, Config{})
	if page := getPage(t, ts.URL); !strings.Contains(page, `data-kiosk="false"`) {
		t.Error("kiosk flag not off")
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
