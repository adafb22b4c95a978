package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/sync/mqtttest"
	"wicket/sync/wire"
	"wicket/verifier"
)

// TestClockResetAndEmergencyAck: wicketctl signs a clock reset to a file
// that verifies with the root and names the gate, publishes it retained
// on the gate's order topic, and publishes a signed emergency
// acknowledge for a station, not retained.
func TestClockResetAndEmergencyAck(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	dir := t.TempDir()
	stem := filepath.Join(dir, "root")
	if rc, _, errs := run(t, "keygen", "-out", stem); rc != exitOK {
		t.Fatalf("keygen: %s", errs)
	}
	roots, err := loadRoots([]string{stem + ".pub"})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "reset.cose")
	floor := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	if rc, so, errs := run(t, "clock-reset", "sign", "-root", stem+".key", "-gate", "G7", "-floor", floor.Format(time.RFC3339), "-out", out); rc != exitOK || !strings.Contains(so, "clock reset serial") {
		t.Fatalf("clock-reset sign: %d %s %s", rc, so, errs)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	o, err := roots.ParseOrder(raw, verifier.OrderClockReset)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Floor.Equal(floor) || len(o.Targets) != 1 || o.Targets[0] != (verifier.Target{Gate: "G7"}) || o.Expires.Sub(o.IssuedAt) != defaultClockResetLife {
		t.Errorf("signed reset %+v; want floor %v for gate G7, valid %v", o, floor, defaultClockResetLife)
	}
	if rc, _, errs := run(t, "clock-reset", "sign", "-root", stem+".key", "-gate", "G7", "-out", out); rc == exitOK || !strings.Contains(errs, "exists") {
		t.Errorf("signing over an existing file: %d %q; want refused", rc, errs)
	}
	if rc, _, errs := run(t, "clock-reset", "sign", "-root", stem+".key", "-gate", "G7", "-floor", time.Now().Add(time.Hour).Format(time.RFC3339), "-out", out+"2"); rc == exitOK || !strings.Contains(errs, "floor is after") {
		t.Errorf("signing a floor in the future: %d %q; want refused", rc, errs)
	}

	common := []string{"-broker", b.URL(), "-fleet", "f1"}
	topics := wire.Topics{Fleet: "f1"}
	if rc, so, errs := run(t, append(append([]string{"clock-reset", "publish"}, common...), "-roots", stem+".pub", out)...); rc != exitOK || !strings.Contains(so, "published clock reset") {
		t.Fatalf("clock-reset publish: %d %s %s", rc, so, errs)
	}
	if got := retainedOn(t, b.URL(), topics.Order(wire.OrderClockReset, "gate=G7")); !bytes.Equal(got[topics.Order(wire.OrderClockReset, "gate=G7")], raw) {
		t.Errorf("retained on the order topic: %v; want the signed reset", keys(got))
	}

	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("test-gate"))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(100)
	got := make(chan mqtt.Message, 4)
	cl.Subscribe(topics.Order(wire.OrderEmergencyAck, "+"), 1, func(_ mqtt.Client, m mqtt.Message) { got <- m }).Wait()
	if rc, so, errs := run(t, append(append([]string{"emergency-ack"}, common...), "-root", stem+".key", "-station", "metro/central")...); rc != exitOK || !strings.Contains(so, "published emergency acknowledge") {
		t.Fatalf("emergency-ack: %d %s %s", rc, so, errs)
	}
	select {
	case m := <-got:
		a, err := roots.ParseOrder(m.Payload(), verifier.OrderEmergencyAck)
		if err != nil {
			t.Fatal(err)
		}
		if m.Retained() || m.Topic() != topics.Order(wire.OrderEmergencyAck, "venue=metro,station=central") ||
			a.Targets[0] != (verifier.Target{Venue: "metro", Station: "central"}) || a.Expires.Sub(a.IssuedAt) != defaultEmergencyAckLife {
			t.Errorf("acknowledge on %s (retained %v): %+v; want station metro/central, valid %v", m.Topic(), m.Retained(), a, defaultEmergencyAckLife)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no emergency acknowledge published")
	}
	if rc, _, errs := run(t, append(append([]string{"emergency-ack"}, common...), "-root", stem+".key", "-station", "central")...); rc != exitUsage || !strings.Contains(errs, "VENUE/STATION") {
		t.Errorf("-station without a venue: %d %q; want a usage error", rc, errs)
	}
}
