package main

import (
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"wicket/internal/testkit"
	"wicket/sync/wire/wiretest"
)

// TestStatusStationLocalOnly: a gate whose broker is down says in its
// status and metrics that its anti-passback is local-only, and why.
func TestStatusStationLocalOnly(t *testing.T) {
	skipUnlessSelfExec(t)
	dir := t.TempDir()
	cfgPath, _ := gateFiles(t, dir)
	surfaces, _, metricsAddr, _ := writeAdminToken(t, dir)
	key := wiretest.IdentityFile(t, dir)
	appendConfig(t, cfgPath, surfaces+"sync: {enabled: true, fleet: test, broker: 'tcp://127.0.0.1:1', identity_key: "+key+"}\n")

	cmd := selfExec("run", "-config", cfgPath)
	stdin, _ := cmd.StdinPipe()
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		stdin.Close()
		cmd.Wait()
	}()
	waitReady(t, "http://"+metricsAddr)

	rc, out, errs := status(cfgPath)
	if rc != exitOK || !strings.Contains(out, "station passback: local-only since ") {
		t.Errorf("status with the broker down = %d\n%s%s\nwant station passback: local-only since …", rc, out, errs)
	}
	testkit.Eventually(t, "wicket_station_passback_shared 0 in /metrics", 10*time.Second, func() bool {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), "\nwicket_station_passback_shared 0\n")
	})
}
