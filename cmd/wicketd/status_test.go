package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func status(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	rc := dispatch(context.Background(), append([]string{"status"}, args...), strings.NewReader(""), &out, &errb)
	return rc, out.String(), errb.String()
}

// TestStatusBesideRunningGate: wicketd status FILE works while the gate
// runs (through its admin API) and shows trust versions, clock, broker
// state with the sync fault, and alerts; once the gate stops it reads the
// store of that FILE, not /etc/wicket's.
func TestStatusBesideRunningGate(t *testing.T) {
	skipUnlessSelfExec(t)
	dir := t.TempDir()
	cfgPath, _ := gateFiles(t, dir)
	surfaces, _, metricsAddr, _ := writeAdminToken(t, dir)
	os.WriteFile(filepath.Join(dir, "junk-ca.pem"), []byte("junk\n"), 0o644)
	appendConfig(t, cfgPath, surfaces+"sync: {enabled: true, fleet: test, broker: 'tls://127.0.0.1:8883', ca_file: junk-ca.pem}\n")

	cmd := selfExec("run", "-config", cfgPath)
	stdin, _ := cmd.StdinPipe()
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitReady(t, "http://"+metricsAddr)

	rc, out, errs := status(cfgPath)
	if rc != exitOK {
		t.Fatalf("status beside a running gate = %d\n%s%s", rc, out, errs)
	}
	for _, want := range []string{
		"gate:             CRASH-G1 (venue CRASH-V1)", "running",
		"key set:          version 1, issued 20",
		"clock:            now ", ": trusted",
		"broker:           fault: ca_file " + filepath.Join(dir, "junk-ca.pem") + ": no PEM certificate",
		"alerts:           sync fault",
		"last sync:        last ack never",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status beside a running gate says:\n%s\nwant %q", out, want)
		}
	}

	cmd.Process.Signal(syscall.SIGTERM)
	stdin.Close()
	cmd.Wait()
	rc, out, errs = status(cfgPath)
	if rc != exitOK || !strings.Contains(out, "CRASH-G1") || !strings.Contains(out, "not running") || !strings.Contains(out, filepath.Join(dir, "wicket.db")) {
		t.Errorf("status FILE with the gate stopped = %d\n%s%s\nwant the store of FILE", rc, out, errs)
	}
	if rc, _, errs := status(cfgPath, "other.yaml"); rc != exitUsage || !strings.Contains(errs, "one config file") {
		t.Errorf("status with two files = %d, %s; want refused", rc, errs)
	}
	if rc, _, errs := status("-config", cfgPath, "other.yaml"); rc != exitUsage || !strings.Contains(errs, "given twice") {
		t.Errorf("status -config A B = %d, %s; want refused", rc, errs)
	}
}
