package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
	rc, out, errs := run(t, "fleet", "-broker", b.URL(), "-fleet", "f1", "-roots", rootPub, "-wait", "500ms", "-all")
	if rc != exitOK || !strings.Contains(out, "5 gates: 1 healthy, 4 need attention; 1 online") || !strings.Contains(out, "4 UNVERIFIED") {
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
	rc, out, _ = run(t, "fleet", "-broker", b.URL(), "-fleet", "f1", "-roots", rootPub, "-wait", "500ms", "-json", "-all")
	var rep fleetReport
	if rc != exitOK || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Gates) != 5 {
		t.Fatalf("fleet -json: %d %s", rc, out)
	}
	for _, r := range rep.Gates {
		if r.Verified != (r.Gate == "G1") {
			t.Errorf("fleet -json: %s verified=%v (%s)", r.Gate, r.Verified, r.Unverified)
		}
		if !r.Verified && (r.StatusVersion != 0 || r.Online) {
			t.Errorf("fleet -json: unverified %s carries its claims: %+v", r.Gate, r.Status)
		}
	}
	// A forged status claiming v99 must not make the genuine one look behind.
	if rep.Summary.NewestStatus != 99 || rep.Summary.Problems["status_behind"] != 0 {
		t.Errorf("fleet -json summary: %+v", rep.Summary)
	}
}

// TestFleetAtScale: 5,000 gates' signed statuses on a real broker. The
// summary counts every gate and every problem exactly; only the gates
// that need attention are listed; the filters narrow the list; -json
// carries the same.
func TestFleetAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("5,000 statuses")
	}
	const n = 5000
	b := mqtttest.StartMosquitto(t)
	f := verifiertest.New(t)
	rootPub, _ := writeRoot(t, t.TempDir())
	topics := wire.Topics{Fleet: "f1"}
	now := time.Now()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("S%03d-G%02d", i/10, i%10)
	}
	// Every 500th gate, from the 1st, has one problem; the rest are healthy.
	faults := map[int]func(*wire.Status){
		1: func(s *wire.Status) { s.Online = false },
		2: func(s *wire.Status) { s.At = now.Add(-10 * time.Minute) },
		3: func(s *wire.Status) { s.Emergency = "active" },
		4: func(s *wire.Status) { s.ClockTrusted = false },
		5: func(s *wire.Status) { s.KeySetVersion = 6 },
		6: func(s *wire.Status) { s.Dropped = 3 },
		7: func(s *wire.Status) { s.Outbox = 5000; s.LastAck = now.Add(-time.Minute); s.LastRecord = now },
		8: func(s *wire.Status) {
			s.Outbox = 12
			s.LastAck = now.Add(-2 * time.Hour)
			s.LastRecord = now.Add(-time.Hour)
		},
		9:  func(s *wire.Status) { s.StatusVersion = 119 },
		10: func(s *wire.Status) { s.TrustRefused = 2 },
		11: func(s *wire.Status) {
			s.Unsubscribed = "[wicket/f1/trust/#]: subscription refused by the broker (SUBACK 0x80)"
			s.SubscribeRefused = 3
		},
	}
	want := map[string]int{}
	names := map[int]string{1: "offline", 2: "stale", 3: "emergency", 4: "clock_untrusted", 5: "key_set_behind",
		6: "dropped", 7: "outbox_backlog", 8: "unacked", 9: "status_behind", 10: "refusals", 11: "unsubscribed"}
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("gates").SetMaxResumePubInFlight(100))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(100)
	var toks []mqtt.Token
	toks = append(toks, cl.Publish(topics.Roster(), 1, true, wiretest.Roster(t, f.Root, 1, ids...)))
	for i, id := range ids {
		venue := "V1"
		if i%2 == 1 {
			venue = "V2"
		}
		st := wire.Status{Gate: id, Venue: venue, Online: true, KeySetVersion: 7, StatusVersion: 120, ClockTrusted: true, At: now}
		if fault := faults[i%500]; fault != nil {
			fault(&st)
			want[names[i%500]]++
		}
		p, err := wire.Sign(wire.KindStatus, "f1", id, wiretest.GateKey, st)
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, cl.Publish(topics.Status(id), 1, true, p))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	common := []string{"fleet", "-broker", b.URL(), "-fleet", "f1", "-roots", rootPub, "-wait", "1s"}
	start := time.Now()
	rc, out, errs := run(t, common...)
	t.Logf("wicketctl fleet over %d gates: %v", n, time.Since(start))
	attention := len(faults) * (n / 500)
	if rc != exitOK || !strings.Contains(out, fmt.Sprintf("%d gates: %d healthy, %d need attention", n, n-attention, attention)) {
		t.Fatalf("fleet: %d\n%.2000s%s", rc, out, errs)
	}
	if !strings.Contains(out, "newest key set v7, revocations v120") {
		t.Errorf("fleet summary: %.300s", out)
	}
	rows := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "S") {
			rows++
		}
	}
	if rows != attention {
		t.Errorf("fleet listed %d gates; want only the %d that need attention", rows, attention)
	}
	rc, out, _ = run(t, append(common, "-json")...)
	var rep fleetReport
	if rc != exitOK || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("fleet -json: %d %.300s", rc, out)
	}
	for p, w := range want {
		if rep.Summary.Problems[p] != w {
			t.Errorf("problem %s: %d gates; want %d", p, rep.Summary.Problems[p], w)
		}
	}
	if len(rep.Summary.Problems) != len(want) || len(rep.Gates) != attention || rep.Summary.Online != n-want["offline"] {
		t.Errorf("fleet -json summary %+v with %d gates listed", rep.Summary, len(rep.Gates))
	}
	rc, out, _ = run(t, append(common, "-json", "-problem", "emergency", "-venue", "V2")...)
	rep = fleetReport{}
	if rc != exitOK || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("fleet -problem -venue: %d %.300s", rc, out)
	}
	for _, g := range rep.Gates {
		if g.Venue != "V2" || !slices.Contains(g.Problems, "emergency") {
			t.Errorf("fleet -problem emergency -venue V2 listed %s (%s, %v)", g.Gate, g.Venue, g.Problems)
		}
	}
	if len(rep.Gates) != want["emergency"] { // the odd gates are in V2, and so is every 500th from the 3rd
		t.Errorf("fleet -problem emergency -venue V2: %d gates; want %d", len(rep.Gates), want["emergency"])
	}
	rc, out, _ = run(t, append(common, "-all", "-gate", "S12?-G0[0]")...)
	rows = 0
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "S") {
			rows++
			if !strings.HasPrefix(line, "S12") {
				t.Errorf("-gate S12?-G0[0] listed %q", line)
			}
		}
	}
	if rc != exitOK || rows != 10 {
		t.Errorf("fleet -all -gate S12?-G0[0]: %d rows; want 10", rows)
	}
	if rc, _, e := run(t, append(common, "-problem", "sad")...); rc == exitOK || !strings.Contains(e, "offline") {
		t.Errorf("fleet -problem sad: %d %s; want a usage error naming the problems", rc, e)
	}
	if rc, o, e := run(t, append(common, "-fleet", "f9")...); rc != exitOK || !strings.HasPrefix(o, "0 gates") || !strings.Contains(e, "no gate status on wicket/f9/") {
		t.Errorf("fleet -fleet f9 (no gate there): %d %q %q; want 0 gates and a hint to check -fleet", rc, o, e)
	}
	for _, bad := range [][]string{{"-stale", "-1s"}, {"-unacked", "0s"}, {"-outbox", "0"}, {"-wait", "0s"}} {
		if rc, _, e := run(t, append(common, bad...)...); rc == exitOK || !strings.Contains(e, bad[0]) {
			t.Errorf("fleet %s %s: %d %s; want a usage error naming the flag", bad[0], bad[1], rc, e)
		}
	}
}
