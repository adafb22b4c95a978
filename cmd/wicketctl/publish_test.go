package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/decoder"
	"wicket/sync/mqtttest"
	"wicket/sync/wire"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	rc := dispatch(env{strings.NewReader(""), &out, &errb}, args)
	return rc, out.String(), errb.String()
}

// retainedOn reads the retained messages under a filter.
func retainedOn(t *testing.T, broker, filter string) map[string][]byte {
	t.Helper()
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("test-reader"))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(100)
	got := make(chan mqtt.Message, 64)
	cl.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) { got <- m }).Wait()
	out := map[string][]byte{}
	for {
		select {
		case m := <-got:
			out[m.Topic()] = m.Payload()
		case <-time.After(500 * time.Millisecond):
			return out
		}
	}
}

func TestPublishAndFleet(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	f := verifiertest.New(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	der, _ := x509.MarshalPKIXPublicKey(verifiertest.EdKey(1).Public())
	root := write("root.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	batch := func(v, base uint64) []byte {
		doc, err := verifier.SignBatch(f.Root, verifier.Batch{Version: v, Base: base, IssuedAt: verifiertest.Epoch})
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	common := []string{"-broker", b.URL(), "-fleet", "f1", "-roots", root}
	topics := wire.Topics{Fleet: "f1"}

	if rc, out, errs := run(t, append([]string{"publish"}, append(common, "-keyset", write("ks.cose", f.KeySetDoc),
		"-batch", write("s1.cose", batch(1, 0)), "-batch", write("d2.cose", batch(2, 1)))...)...); rc != exitOK {
		t.Fatalf("publish: %d %s %s", rc, out, errs)
	}
	got := retainedOn(t, b.URL(), topics.AllTrust())
	if !bytes.Equal(got[topics.KeySet()], f.KeySetDoc) || got[topics.Snapshot()] == nil || got[topics.Delta(2)] == nil {
		t.Fatalf("retained trust topics: %v", keys(got))
	}

	rc, out, _ := run(t, append([]string{"publish"}, append(common, "-batch", write("s3.cose", batch(3, 0)))...)...)
	if rc != exitOK || !strings.Contains(out, "cleared 1 retained deltas") {
		t.Fatalf("publishing snapshot 3: %d %s", rc, out)
	}
	if got := retainedOn(t, b.URL(), topics.AllDeltas()); len(got) != 0 {
		t.Errorf("superseded deltas still retained: %v", keys(got))
	}

	stranger, _ := decoder.NewSigner(verifiertest.EdKey(9), nil)
	forged, _ := verifier.SignBatch(stranger, verifier.Batch{Version: 9, IssuedAt: verifiertest.Epoch})
	if rc, _, errs := run(t, append([]string{"publish"}, append(common, "-batch", write("forged.cose", forged))...)...); rc == exitOK || !strings.Contains(errs, "not signed by a pinned root") {
		t.Errorf("publishing a forged batch: exit %d %q; want refused before publishing", rc, errs)
	}

	st, _ := json.Marshal(wire.Status{Gate: "G7", Venue: "V1", Online: true, KeySetVersion: 1, StatusVersion: 3, ClockTrusted: true, At: time.Now()})
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("test-gate"))
	cl.Connect().Wait()
	cl.Publish(topics.Status("G7"), 1, true, st).Wait()
	cl.Disconnect(100)
	rc, out, _ = run(t, "fleet", "-broker", b.URL(), "-fleet", "f1", "-wait", "500ms")
	// An unsigned status is no evidence of anything (fleet_test.go).
	if rc != exitOK || !strings.Contains(out, "G7") || !strings.Contains(out, "1 gates: 0 healthy, 1 need attention; 0 online") || !strings.Contains(out, "1 UNVERIFIED") {
		t.Fatalf("fleet: %d\n%s", rc, out)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
