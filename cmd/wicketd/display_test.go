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
	if out, err := selfExec("version").CombinedOutput(); err != nil {
		t.Skipf("cannot run this test binary as a child process: %v %s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfgPath, f := gateFiles(t, dir)
	cfg, _ := os.ReadFile(cfgPath)
	cfg = []byte(strings.Replace(string(cfg), "policy: {max_status_age: 0s}", "policy: {max_status_age: 0s, classes: {elderly: attendant}}", 1))
	cfg = append(cfg, []byte("display: {enabled: true, kiosk: true, addr: \""+addr+"\"}\n")...)
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
	c.Voucher.Class = decoder.ClassElderly
	io.WriteString(stdin, f.Issue(t, f.Ed, c)+"\n")
	sc := bufio.NewScanner(events.Body)
	var ev struct {
		Verdict   string `json:"verdict"`
		Attendant bool   `json:"attendant"`
		Seq       uint64 `json:"seq"`
		Name      string `json:"name"`
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
	if !ev.Attendant || ev.Seq == 0 || ev.Name != "张*明" {
		t.Fatalf("page event %+v; want an attendant prompt with the masked name", ev)
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
	if !strings.Contains(string(body), `wicket_decisions_total{`) || !strings.Contains(string(body), `attendant_required`) {
		t.Fatalf("/metrics lacks the decision:\n%s", body)
	}
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
