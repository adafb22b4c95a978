package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"wicket/decoder"
)

// TestSyncFaultKeepsDeciding: a bad sync CA file used to make run exit
// (and systemd restart it every 2 s, forever). Now the gate decides
// offline and says at error priority why sync is off.
func TestSyncFaultKeepsDeciding(t *testing.T) {
	skipUnlessSelfExec(t)
	dir := t.TempDir()
	cfgPath, f := gateFiles(t, dir)
	os.WriteFile(filepath.Join(dir, "junk-ca.pem"), []byte("not a certificate\n"), 0o644)
	cfg, _ := os.ReadFile(cfgPath)
	cfg = append(cfg, "sync: {enabled: true, fleet: test, broker: 'tls://127.0.0.1:8883', ca_file: junk-ca.pem}\n"...)
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := selfExec("run", "-config", cfgPath)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	c := f.Claims(decoder.KindPrinted)
	c.ID = []byte("syncfault")
	io.WriteString(stdin, f.Issue(t, f.Ed, c)+"\n")
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(30 * time.Second)
	for decided := false; !decided; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("wicketd ended before deciding; stderr:\n%s", stderr.String())
			}
			if strings.HasPrefix(l, "display:") {
				if !strings.Contains(l, "[ok;") {
					t.Fatalf("decision with sync misconfigured: %s; want allowed", l)
				}
				decided = true
			}
		case <-timeout:
			t.Fatalf("no decision; stderr:\n%s", stderr.String())
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	go io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Errorf("wicketd exit after SIGTERM: %v", err)
	}
	var fault string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, "fleet sync is off") {
			fault = l
		}
	}
	if !strings.Contains(fault, `"level":"ERROR"`) || !strings.Contains(fault, "no PEM certificate") {
		t.Errorf("log line of the sync fault = %q; want level ERROR naming the CA problem; stderr:\n%s", fault, stderr.String())
	}
}
