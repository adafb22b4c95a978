package main

import (
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/decoder"
	"wicket/internal/testkit"
	"wicket/sync/mqtttest"
	"wicket/sync/wire"
	"wicket/sync/wire/wiretest"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// TestDaemonSync runs wicketd with fleet sync against a real broker: its
// decisions reach a collector and leave the outbox when acked, an override
// published to the fleet reaches it, and its retained status says online,
// then offline after SIGTERM.
func TestDaemonSync(t *testing.T) {
	b, cfgPath, f := syncGate(t, func(dir string, f *verifiertest.Fixture, broker string) string {
		return "status_every: 1s, ack_timeout: 2s, reconnect_min: 100ms, reconnect_max: 1s, " + enrolGate(t, f.Root, broker, "test", "CRASH-G1", dir)
	})
	topics := wire.Topics{Fleet: "test"}

	var mu sync.Mutex
	seen := map[uint64]string{}
	var status wire.Status
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("test-collector"))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(100)
	cl.Subscribe(topics.AllRecords(), 1, func(c mqtt.Client, m mqtt.Message) {
		r, err := wiretest.OpenRecords("test", m.Payload())
		if err != nil {
			return
		}
		mu.Lock()
		for _, e := range r.Records {
			seen[e.Seq] = e.Type + ":" + e.Reason
		}
		mu.Unlock()
		c.Publish(topics.Ack(r.Gate), 1, false, wiretest.Ack("test", r.Gate, r.Records[0].Seq, r.Records[len(r.Records)-1].Seq))
	}).Wait()
	cl.Subscribe(topics.Status("CRASH-G1"), 1, func(_ mqtt.Client, m mqtt.Message) {
		s, sm, _ := wire.OpenStatus(m.Payload())
		if sm == nil || sm.Verify(wire.KindStatus, "test", wiretest.GatePub) != nil {
			t.Errorf("status not signed by the gate: %s", m.Payload())
		}
		mu.Lock()
		status = s
		mu.Unlock()
	}).Wait()

	cmd := selfExec("run", "-config", cfgPath)
	stdin, _ := cmd.StdinPipe()
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	for i := range 3 {
		c := f.Claims(decoder.KindPrinted)
		c.ID = []byte{'d', 'a', 'e', 'm', 'o', 'n', 's', byte(i)}
		io.WriteString(stdin, f.Issue(t, f.Ed, c)+"\n")
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		testkit.Eventually(t, what, 20*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return cond()
		})
	}
	eventually("3 allowed decisions at the collector", func() bool {
		n := 0
		for _, s := range seen {
			if s == "decision:ok" {
				n++
			}
		}
		return n == 3
	})
	eventually("an online status with key set 1 and an empty outbox", func() bool {
		return status.Online && status.KeySetVersion == 1 && status.Outbox == 0 && status.Decisions == 3
	})

	batch, err := verifier.SignBatch(f.Root, verifier.Batch{Version: 7, IssuedAt: time.Now().Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	cl.Publish(topics.Snapshot(), 1, true, batch).Wait()
	eventually("the snapshot applied", func() bool { return status.StatusVersion == 7 })

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("wicketd after SIGTERM: %v", err)
	}
	eventually("an offline status", func() bool { return !status.Online && status.Gate == "CRASH-G1" })
	mu.Lock()
	defer mu.Unlock()
	var types []string
	for _, s := range seen {
		types = append(types, s)
	}
	if !strings.Contains(strings.Join(types, " "), "system:start") {
		t.Errorf("records %v lack the start event", types)
	}
}

// enrolGate gives the gate whose files are in dir the identity key of
// the test gates, and publishes, retained, a roster of the fleet that
// enrols it and the test collector, signed by root. It returns the
// sync.identity_key setting for the gate's config.
func enrolGate(t testing.TB, root *decoder.Signer, broker, fleet, gate, dir string) string {
	t.Helper()
	path := wiretest.IdentityFile(t, dir)
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("test-enrol"))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(100)
	if tok := cl.Publish(wire.Topics{Fleet: fleet}.Roster(), 1, true, wiretest.Roster(t, root, 1, gate)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	return "identity_key: " + strconv.Quote(path)
}

// TestUnenrolledGateDecides: a gate whose identity key is missing (not
// made yet, not enrolled) still decides; only its records wait.
func TestUnenrolledGateDecides(t *testing.T) {
	_, cfgPath, f := syncGate(t, func(string, *verifiertest.Fixture, string) string { return "identity_key: missing.key" })
	c := f.Claims(decoder.KindPrinted)
	c.ID = []byte("unenrolled-gate-1")
	committed, _ := runAndKill(t, cfgPath, []string{f.Issue(t, f.Ed, c)}, time.Second)
	if len(committed) == 0 {
		t.Fatal("a gate without its identity key decided nothing")
	}
}

// syncGate writes a gate's files with fleet sync on fleet "test" of a
// new Mosquitto, the sync settings extended by what more returns. It
// skips when the test binary cannot run as wicketd.
func syncGate(t *testing.T, more func(dir string, f *verifiertest.Fixture, broker string) string) (*mqtttest.Broker, string, *verifiertest.Fixture) {
	t.Helper()
	skipUnlessSelfExec(t)
	b := mqtttest.StartMosquitto(t)
	dir := t.TempDir()
	cfgPath, f := gateFiles(t, dir)
	cfg, _ := os.ReadFile(cfgPath)
	cfg = append(cfg, []byte("sync: {enabled: true, fleet: test, broker: \""+b.URL()+"\", "+more(dir, f, b.URL())+"}\n")...)
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	return b, cfgPath, f
}

// TestStatusSpreadYAML: sync.status_spread 0s reaches mqttsync as "at
// once" (negative), not as its default; other values pass as they are.
func TestStatusSpreadYAML(t *testing.T) {
	if got := statusSpread(0); got >= 0 {
		t.Errorf("status_spread 0s -> %v; want negative (at once)", got)
	}
	if got := statusSpread(3 * time.Second); got != 3*time.Second {
		t.Errorf("status_spread 3s -> %v; want 3s", got)
	}
}
