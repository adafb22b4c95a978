package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/sync/mqtttest"
	"wicket/sync/wire"
	"wicket/sync/wire/wiretest"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// writeRoot writes the fixture's root public and private keys in dir.
func writeRoot(t *testing.T, dir string) (pub, priv string) {
	t.Helper()
	der, _ := x509.MarshalPKIXPublicKey(verifiertest.EdKey(1).Public())
	pub = filepath.Join(dir, "root.pub")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	pk8, _ := x509.MarshalPKCS8PrivateKey(verifiertest.EdKey(1))
	priv = filepath.Join(dir, "root.key")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// TestRosterSignPublishShow: a roster signed from the technician's list
// (an enrolment line, a key text, a collector's .pub file) is published
// once; the same version again, or an older one, is refused with the
// version to use.
func TestRosterSignPublishShow(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	dir := t.TempDir()
	rootPub, rootKey := writeRoot(t, dir)
	der, _ := x509.MarshalPKIXPublicKey(wiretest.CollectorPub)
	collPub := filepath.Join(dir, "collector.pub")
	os.WriteFile(collPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	key := verifier.FormatMemberKey(wiretest.GatePub)
	members := filepath.Join(dir, "members.csv")
	os.WriteFile(members, []byte("id,venue,station,role,key\n"+
		"# line 2 of the list\n"+
		"L2-S14-G03,V1,S14,gate,wicket-enrol:1:L2-S14-G03:V1:"+key+"\n"+
		"L2-S14-G04,V1,S14,gate,"+key+"\n"+
		"central-1,,,collector,"+collPub+"\n"), 0o644)
	out := func(name string) string { return filepath.Join(dir, name) }
	if rc, o, e := run(t, "roster", "sign", "-root", rootKey, "-version", "2", "-members", members, "-out", out("r2.cose")); rc != exitOK || !strings.Contains(o, "2 gates, 1 collectors") {
		t.Fatalf("roster sign: %d %s %s", rc, o, e)
	}
	os.WriteFile(out("bad.csv"), []byte("G9,V1,S1,gate,wicket-enrol:1:G8:V1:"+key+"\n"), 0o644)
	if rc, _, e := run(t, "roster", "sign", "-root", rootKey, "-version", "3", "-members", out("bad.csv"), "-out", out("bad.cose")); rc == exitOK || !strings.Contains(e, `enrolment line of gate "G8" given for "G9"`) {
		t.Errorf("roster sign with another gate's enrolment line: %d %s", rc, e)
	}
	common := []string{"-broker", b.URL(), "-fleet", "f1", "-roots", rootPub}
	if rc, o, e := run(t, append(append([]string{"roster", "publish"}, common...), out("r2.cose"))...); rc != exitOK || !strings.Contains(o, "published roster version 2") {
		t.Fatalf("roster publish: %d %s %s", rc, o, e)
	}
	run(t, "roster", "sign", "-root", rootKey, "-version", "1", "-members", members, "-out", out("r1.cose"))
	if rc, _, e := run(t, append(append([]string{"roster", "publish"}, common...), out("r1.cose"))...); rc == exitOK || !strings.Contains(e, "-version 3") {
		t.Errorf("publishing an older roster: %d %s; want refused, naming version 3", rc, e)
	}
	rc, o, e := run(t, append([]string{"roster", "show"}, common...)...)
	if rc != exitOK || !strings.Contains(o, "roster version 2") || !strings.Contains(o, "L2-S14-G04,V1,S14,gate,"+key) || !strings.Contains(o, "central-1,,,collector,") {
		t.Errorf("roster show: %d %s %s", rc, o, e)
	}
}

// TestFleetUnverifiedStatus (seen-problem 7): a status not signed by the
// gate of its topic with the key the roster holds for it is shown as
// UNVERIFIED, none of its claims as fact.
func TestFleetUnverifiedStatus(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	f := verifiertest.New(t)
	rootPub, _ := writeRoot(t, t.TempDir())
	topics := wire.Topics{Fleet: "f1"}
	healthy := func(gate string) wire.Status {
		return wire.Status{Gate: gate, Venue: "V1", Online: true, KeySetVersion: 1, StatusVersion: 99, ClockTrusted: true, At: time.Now()}
	}
	sign := func(signer string, st wire.Status) []byte {
		p, err := wire.Sign(wire.KindStatus, "f1", signer, wiretest.GateKey, st)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	unsigned, _ := json.Marshal(healthy("G2"))
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("anonymous"))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	for topic, p := range map[string][]byte{
		topics.Roster():     wiretest.Roster(t, f.Root, 1, "G1", "G4"),
		topics.Status("G1"): sign("G1", healthy("G1")),
		topics.Status("G2"): unsigned,
		topics.Status("G3"): sign("G3", healthy("G3")), // not enrolled
		topics.Status("G4"): sign("G1", healthy("G4")), // another gate's signature
		topics.Status("G5"): sign("G5", healthy("G1")), // not enrolled, claims to be G1
	} {
		cl.Publish(topic, 1, true, p).Wait()
	}
	cl.Disconnect(100)
	rc, out, errs := run(t, "fleet", "-broker", b.URL(), "-fleet", "f1", "-roots", rootPub, "-wait", "500ms")
	if rc != exitOK || !strings.Contains(out, "5 gates, 1 online, 4 UNVERIFIED") {
		t.Fatalf("fleet: %d\n%s%s", rc, out, errs)
	}
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 3 {
			continue
		}
		switch fields[0] {
		case "G1":
			if fields[2] != "online" {
				t.Errorf("genuine status shown as %q", line)
			}
		case "G2", "G3", "G4", "G5":
			if fields[2] != "UNVERIFIED" || strings.Contains(line, "v99") {
				t.Errorf("forged status shown as %q", line)
			}
		}
	}
	rc, out, _ = run(t, "fleet", "-broker", b.URL(), "-fleet", "f1", "-roots", rootPub, "-wait", "500ms", "-json")
	var rows []gateStatus
	if rc != exitOK || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 5 {
		t.Fatalf("fleet -json: %d %s", rc, out)
	}
	for _, r := range rows {
		if r.Verified != (r.Gate == "G1") {
			t.Errorf("fleet -json: %s verified=%v (%s)", r.Gate, r.Verified, r.Unverified)
		}
	}
}
