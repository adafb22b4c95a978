package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"wicket/decoder"
)

// TestDisplayKiosk runs wicketd with the page on: an elderly voucher that
// needs a photo check reaches the page as an attendant prompt, the
// attendant's confirmation opens the turnstile, and /healthz and /metrics
// answer.
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfgPath, f := gateFiles(t, dir)
	cfg, _ := os.ReadFile(cfgPath)
	cfg = []byte(strings.Replace(string(cfg), "policy: {max_status_age: 0s}", "policy: {max_status_age: 0s, "+kc.policy+"}", 1))
	cfg = append(cfg, []byte("display: {enabled: true, kiosk: true, addr: \""+addr+"\"}\n"+kc.extra)...)
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
	base := "http://" + addr
	var resp *http.Response
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err = http.Get(base + "/healthz")
		if err == nil && resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never ready: %v %v", err, resp)
		}
		if resp != nil {
			resp.Body.Close()
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp.Body.Close()

	events, err := http.Get(base + "/events")
	if err != nil {
		t.Fatal(err)
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
	req, _ := http.NewRequest("POST", base+"/attendant", strings.NewReader(`{"seq":`+itoa(ev.Seq)+`,"action":"confirm"}`))
	req.Header.Set("Content-Type", "application/json")
	ar, err := http.DefaultClient.Do(req)
	if err != nil || ar.StatusCode/100 != 2 {
		t.Fatalf("attendant confirm: %v %v", err, ar)
	}
	ar.Body.Close()
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
	mr, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mr.Body)
	mr.Body.Close()
	if !strings.Contains(string(body), `wicket_decisions_total{`) || !strings.Contains(string(body), kc.reason) {
		t.Fatalf("/metrics lacks the decision:\n%s", body)
	}
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
