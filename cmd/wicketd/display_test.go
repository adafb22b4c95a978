package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/internal/testkit"
)

// TestDisplayKiosk runs wicketd with the page on: an elderly voucher that
// needs a photo check reaches the kiosk page as an attendant prompt; a
// curl without the admin token, a forged Host and a foreign Origin leave
// the turnstile locked; the attendant's confirmation with the token opens
// it, and /healthz and /metrics answer on their own address.
func TestDisplayKiosk(t *testing.T) {
	runKiosk(t, kioskCase{
		policy: "classes: {elderly: attendant}", class: decoder.ClassElderly,
		reason: "attendant_required",
	})
}

// TestFeverKiosk: at a gate that screens temperature, a green code with a
// fever reading is denied in red with an alert and an attendant prompt;
// the relay stays locked until the attendant, having measured by hand,
// confirms at the kiosk.
func TestFeverKiosk(t *testing.T) {
	runKiosk(t, kioskCase{
		policy: "temperature: {required: true, timeout: 2s}", extra: "thermometer: {type: sim, sim: [38.6]}\n",
		class: decoder.ClassAdult, reason: "fever", temperature: "fever", alert: true,
	})
}

// adminToken is the admin token of the test gates.
const adminToken = "5f0c2a9e8b7d4c1a6e3f9b2d8c7a1e4f"

// writeAdminToken writes adminToken to dir/admin.token, mode 0600, and
// returns the config lines of the three HTTP surfaces on free ports.
func writeAdminToken(t *testing.T, dir string) (yaml, page, metrics, admin string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	page, metrics, admin = freeAddr(t), freeAddr(t), freeAddr(t)
	yaml = "http: {metrics: {addr: \"" + metrics + "\"}, admin: {addr: \"" + admin + "\", token_file: admin.token}}\n"
	return yaml, page, metrics, admin
}

// waitReady polls /healthz until the gate is ready.
func waitReady(t *testing.T, base string) {
	t.Helper()
	// 60 s is a ceiling: a gate under qemu-user on a busy machine starts slowly.
	var last string
	met := false
	defer func() {
		if !met {
			t.Logf("last /healthz: %s", last)
		}
	}()
	testkit.Eventually(t, base+"/healthz ready", 60*time.Second, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			last = err.Error()
			return false
		}
		resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK
	})
	met = true
}

// post sends a JSON body to url with extra headers ("Host" sets the
// request's host) and returns the status.
func post(t *testing.T, url, body string, header map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// kioskCase is a code the kiosk must hold for an attendant.
type kioskCase struct {
	policy      string // policy fields added to the gate's
	extra       string // config sections added
	class       decoder.Class
	reason      string
	temperature string
	alert       bool
}

// runKiosk runs the daemon with a kiosk page, scans a code of the case's
// class, waits for the attendant prompt on the page, confirms it, and
// checks the turnstile opens only then.
func runKiosk(t *testing.T, kc kioskCase) {
	skipUnlessSelfExec(t)
	dir := t.TempDir()
	cfgPath, f := gateFiles(t, dir)
	surfaces, addr, metricsAddr, adminAddr := writeAdminToken(t, dir)
	cfg, _ := os.ReadFile(cfgPath)
	cfg = []byte(strings.Replace(string(cfg), "policy: {max_status_age: 0s}", "policy: {max_status_age: 0s, "+kc.policy+"}", 1))
	cfg = append(cfg, []byte("display: {enabled: true, kiosk: true, addr: \""+addr+"\"}\n"+surfaces+kc.extra)...)
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := selfExec("run", "-config", cfgPath)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); stdin.Close(); cmd.Wait() }()
	narration := make(chan string, 256)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			narration <- sc.Text()
		}
		close(narration)
	}()
	base, admin := "http://"+addr, "http://"+adminAddr
	waitReady(t, "http://"+metricsAddr)

	// The kiosk page's events, as the attendant's browser gets them.
	req, _ := http.NewRequest(http.MethodGet, admin+"/events", nil)
	req.SetBasicAuth("attendant", adminToken)
	events, err := http.DefaultClient.Do(req)
	if err != nil || events.StatusCode != http.StatusOK {
		t.Fatalf("kiosk events: %v %v", err, events)
	}
	defer events.Body.Close()
	c := f.Claims(decoder.KindPrinted)
	c.Voucher.Class = kc.class
	io.WriteString(stdin, f.Issue(t, f.Ed, c)+"\n")
	sc := bufio.NewScanner(events.Body)
	var ev struct {
		Verdict     string `json:"verdict"`
		Reason      string `json:"reason"`
		Attendant   bool   `json:"attendant"`
		Alert       bool   `json:"alert"`
		Temperature string `json:"temperature"`
		Seq         uint64 `json:"seq"`
		Name        string `json:"name"`
	}
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		json.Unmarshal([]byte(line), &ev)
		if ev.Attendant {
			break
		}
	}
	if !ev.Attendant || ev.Seq == 0 || ev.Name != "张*明" || ev.Reason != kc.reason || ev.Alert != kc.alert || ev.Temperature != kc.temperature {
		t.Fatalf("page event %+v; want an attendant prompt for %s with the masked name", ev, kc.reason)
	}
	// Nothing opens before the attendant answers.
	for drained := false; !drained; {
		select {
		case l := <-narration:
			if strings.Contains(l, "relay ON") {
				t.Fatalf("the turnstile opened before the attendant confirmed: %s", l)
			}
		default:
			drained = true
		}
	}
	confirm := `{"seq":` + itoa(ev.Seq) + `,"action":"confirm"}`
	bearer := "Bearer " + adminToken
	for _, tt := range []struct {
		name, url string
		header    map[string]string
		code      int
	}{
		{"curl on the passenger page", base + "/attendant", nil, http.StatusNotFound},
		{"curl without the token", admin + "/attendant", nil, http.StatusUnauthorized},
		{"a wrong token", admin + "/attendant", map[string]string{"Authorization": "Bearer " + strings.Repeat("a", len(adminToken))}, http.StatusUnauthorized},
		{"a forged Host", admin + "/attendant", map[string]string{"Authorization": bearer, "Host": "rebind.evil.example"}, http.StatusMisdirectedRequest},
		{"a foreign Origin", admin + "/attendant", map[string]string{"Authorization": bearer, "Origin": "http://evil.example"}, http.StatusForbidden},
	} {
		if code := post(t, tt.url, confirm, tt.header); code != tt.code {
			t.Errorf("POST /attendant with %s = %d; want %d", tt.name, code, tt.code)
		}
	}
	// None of them reached the gate: the prompt is answered only once, so
	// the attendant's confirmation below would get 409 had one of them
	// confirmed it.
	if code := post(t, admin+"/attendant", confirm, map[string]string{"Authorization": bearer, "Origin": admin, "Sec-Fetch-Site": "same-origin"}); code != http.StatusOK {
		t.Fatalf("attendant confirm with the token = %d; want 200", code)
	}
	opened := false
	for l := range narration {
		if strings.Contains(l, "relay ON") {
			opened = true
			break
		}
	}
	if !opened {
		t.Fatal("the attendant's confirmation did not open the turnstile")
	}
	mr, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mr.Body)
	mr.Body.Close()
	if !strings.Contains(string(body), `wicket_decisions_total{`) || !strings.Contains(string(body), kc.reason) {
		t.Fatalf("/metrics lacks the decision:\n%s", body)
	}
	for _, path := range []string{"/metrics", "/healthz"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s on the passenger page = %d; want 404: it has its own address", path, resp.StatusCode)
		}
	}
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
