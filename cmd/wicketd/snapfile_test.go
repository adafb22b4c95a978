package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/decoder"
	"wicket/internal/testkit"
	"wicket/sync/snapfile"
	"wicket/sync/snapfile/snapfiletest"
	"wicket/sync/wire"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// TestDaemonSnapshotFiles: wicketd takes a snapshot manifest from the
// broker, downloads the parts from nginx, installs them, and its retained
// status says so; a forged manifest after that is refused, shown in the
// status, and changes nothing.
func TestDaemonSnapshotFiles(t *testing.T) {
	b, cfgPath, f := syncGate(t, func(dir string, f *verifiertest.Fixture, broker string) string {
		return "status_every: 1s, snapshot_jitter: 1ms, reconnect_min: 100ms, reconnect_max: 1s, " + enrolGate(t, f.Root, broker, "test", "CRASH-G1", dir)
	})
	files := t.TempDir()
	issued := time.Now().Add(-time.Minute)
	m := snapfile.Manifest{Version: 9, IssuedAt: issued}
	for p := range 3 {
		var entries []verifier.Entry
		for i := range 100 {
			entries = append(entries, verifier.Entry{Op: verifier.OpRevoke, Key: []byte{'f', 'i', 'l', 'e', 0, 0, byte(p), byte(i)}, Time: issued.Unix(), Expires: issued.Add(48 * time.Hour).Unix()})
		}
		raw, err := verifier.SignBatch(f.Root, verifier.Batch{Version: 9, IssuedAt: issued, Entries: entries, Part: uint32(p), Parts: 3})
		if err != nil {
			t.Fatal(err)
		}
		part := snapfile.PartOf(raw)
		if err := os.WriteFile(filepath.Join(files, part.Name()), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		m.Parts = append(m.Parts, part)
	}
	ng := snapfiletest.StartNginx(t, files)
	m.URLs = []string{ng.URL()}
	manifest, err := m.Sign(f.Root)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var status wire.Status
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("test-authority"))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(100)
	cl.Subscribe(wire.Topics{Fleet: "test"}.Status("CRASH-G1"), 1, func(_ mqtt.Client, msg mqtt.Message) {
		s, _, _ := wire.OpenStatus(msg.Payload())
		mu.Lock()
		status = s
		mu.Unlock()
	}).Wait()
	cl.Publish(snapfile.Topic("test"), 1, true, manifest).Wait()

	cmd := selfExec("run", "-config", cfgPath)
	stdin, _ := cmd.StdinPipe() // the scan source: open while the gate runs
	defer stdin.Close()
	logs := &testkit.Buffer{}
	cmd.Stdout, cmd.Stderr = io.Discard, logs
	defer func() {
		if t.Failed() {
			mu.Lock()
			t.Logf("last status: %+v\nwicketd log:\n%s", status, logs.String())
			mu.Unlock()
		}
	}()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	statusIs := func(what string, cond func(wire.Status) bool) {
		t.Helper()
		testkit.Eventually(t, what, 30*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return cond(status)
		})
	}
	statusIs("snapshot 9 from files in the status", func(s wire.Status) bool {
		return s.StatusVersion == 9 && s.StatusRecords == 300 && strings.HasPrefix(s.SnapshotFetch, "9: done 3/3")
	})
	if n := strings.Count(ng.AccessLog(), "\" 200 "); n != 3 {
		t.Errorf("nginx served %d parts, want 3:\n%s", n, ng.AccessLog())
	}

	stranger, _ := decoder.NewSigner(verifiertest.EdKey(9), nil)
	m.Version = 10
	forged, _ := m.Sign(stranger)
	cl.Publish(snapfile.Topic("test"), 1, true, forged).Wait()
	statusIs("the forged manifest refused in the status", func(s wire.Status) bool {
		return strings.Contains(s.SnapshotFetch, "1 refused, last: trust document not signed by a pinned root key")
	})
	mu.Lock()
	defer mu.Unlock()
	if status.StatusVersion != 9 {
		t.Errorf("status version %d after a forged manifest, want 9", status.StatusVersion)
	}
}
