package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/device/gate"
)

// TestEmergencyAcknowledge runs the daemon on a simulated gate: a fire
// alarm frees the turnstile; while the alarm input is active neither
// wicketd ack-emergency nor the admin page locks it; once it clears, each
// of them locks the gate again without a restart, the next code opens it
// normally, and the access log says who acknowledged.
func TestEmergencyAcknowledge(t *testing.T) {
	dir := t.TempDir()
	cfgPath, f := gateFiles(t, dir)
	surfaces, _, metricsAddr, adminAddr := writeAdminToken(t, dir)
	appendConfig(t, cfgPath, surfaces)
	cfg, d, sim, lines, stdinW, stop := startSimDaemon(t, cfgPath, nil)
	waitReady(t, "http://"+metricsAddr)

	waitLine := func(want string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case l := <-lines:
				if strings.Contains(l, "emergency acknowledged") && !strings.Contains(want, "emergency acknowledged") {
					t.Fatalf("the gate locked while waiting for %q: %s", want, l)
				}
				if strings.Contains(l, want) {
					return
				}
			case <-timeout:
				t.Fatalf("no narration line with %q", want)
			}
		}
	}
	ackCLI := func() (int, string) { return ackEmergency(cfgPath) }
	ackPage := func() int {
		return post(t, "http://"+adminAddr+"/emergency/ack", "{}", map[string]string{
			"Authorization": "Basic " + basicAuth(adminToken), "Origin": "http://" + adminAddr, "Sec-Fetch-Site": "same-origin"})
	}
	free := func(when string) {
		t.Helper()
		if !d.ts.Unlocked() || d.ts.EmergencyState() == gate.EmergencyNormal {
			t.Fatalf("%s: gate unlocked %v, emergency %v; want it held free", when, d.ts.Unlocked(), d.ts.EmergencyState())
		}
	}

	for round, ack := range []struct {
		name string
		do   func() bool
	}{
		{"wicketd ack-emergency", func() bool {
			rc, out := ackCLI()
			if rc == exitDenied && strings.Contains(out, "still active") {
				return false
			}
			if rc != exitOK || !strings.Contains(out, "the gate is locked again") {
				t.Fatalf("ack-emergency = %d %q", rc, out)
			}
			return true
		}},
		{"the admin page", func() bool {
			switch code := ackPage(); code {
			case http.StatusConflict:
				return false
			case http.StatusOK:
				return true
			default:
				t.Fatalf("POST /emergency/ack = %d", code)
			}
			return false
		}},
	} {
		sim.Emergency.Set(true)
		waitLine("emergency input active")
		free(ack.name + ", alarm on")
		if ack.do() {
			t.Fatalf("round %d: %s acknowledged while the alarm input is active", round, ack.name)
		}
		free(ack.name + " refused")
		sim.Emergency.Set(false)
		waitLine("emergency input cleared")
		free(ack.name + ", alarm cleared, not acknowledged")
		if !ack.do() {
			t.Fatalf("round %d: %s refused after the alarm cleared", round, ack.name)
		}
		waitLine("emergency acknowledged: relay OFF (lock)")
		if d.ts.Unlocked() || d.ts.EmergencyState() != gate.EmergencyNormal {
			t.Fatalf("after %s: gate unlocked %v, emergency %v; want locked, normal", ack.name, d.ts.Unlocked(), d.ts.EmergencyState())
		}
		// The gate decides again: a valid code opens it.
		io.WriteString(stdinW, f.Issue(t, f.Ed, f.Claims(decoder.KindPrinted))+"\n")
		waitLine("relay ON (unlock) for")
		waitLine("relay OFF (lock)")
	}
	// Nothing to acknowledge: not an error.
	if rc, out := ackCLI(); rc != exitOK || !strings.Contains(out, "no emergency release to acknowledge") {
		t.Errorf("ack-emergency with no release = %d %q; want 0 saying there was nothing to do", rc, out)
	}
	stop()

	if acks := eventDetails(t, cfg.Path(cfg.Store.Path), "emergency_ack"); len(acks) != 2 || !strings.HasPrefix(acks[0], "admin API token from 127.0.0.1") {
		t.Errorf("access log acknowledgements %q; want two, saying who asked", acks)
	}
}

// basicAuth is the basic-auth credential a browser sends for password.
func basicAuth(password string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	req.SetBasicAuth("attendant", password)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// appendConfig adds lines to a config file.
func appendConfig(t *testing.T, path, lines string) {
	t.Helper()
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(cfg, lines...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ackEmergency runs wicketd ack-emergency and returns its exit code and
// output.
func ackEmergency(cfgPath string) (int, string) {
	var out, errb bytes.Buffer
	rc := dispatch(context.Background(), []string{"ack-emergency", "-config", cfgPath}, strings.NewReader(""), &out, &errb)
	return rc, out.String() + errb.String()
}
