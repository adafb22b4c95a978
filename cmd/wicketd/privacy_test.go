package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/internal/testkit"
	"wicket/sync/mqtttest"
	"wicket/sync/wire"
	"wicket/sync/wire/wiretest"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// TestPrivacy issues vouchers from names and ID numbers (and an EU DCC
// with a name and a birth date), runs a gate with fleet sync that decides
// on them, then searches the gate's store file, everything it logged and
// everything published to the broker for those names, ID numbers, birth
// date, masked names and raw identifiers. Only keyed hashes may be there.
func TestPrivacy(t *testing.T) {
	skipUnlessSelfExec(t)
	bin := buildWicketctl(t)
	dir := t.TempDir()
	ctl(t, bin, dir, "keygen", "-out", "root")
	ctl(t, bin, dir, "keygen", "-out", "gx")
	ctl(t, bin, dir, "pseudonym", "-new", "-secret", "pseudo.secret")
	dcc := verifiertest.NewDCCSigner(t, verifiertest.ESKey(10), "DE")
	if err := os.WriteFile(filepath.Join(dir, "de.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: dcc.Cert}), 0o644); err != nil {
		t.Fatal(err)
	}
	ctl(t, bin, dir, "keyset", "-root", "root.key", "-version", "1", "-out", "keyset.cose",
		"-key", "pub=gx.pub,issuer=GX,not-before="+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "-dcc", "de.pem")

	people := []struct{ name, masked, id string }{
		{"张三明", "张*明", "450100200001011234"},
		{"欧阳娜娜", "欧**娜", "110101199003074512"},
		{"李四", "李*", "31010419851212001X"},
	}
	// secret holds every string that must not leave the issuer.
	var secret []string
	var codes []string
	for i, p := range people {
		kind := []string{"dynamic", "printed", "watch"}[i]
		out := ctl(t, bin, dir, "issue", "-json", "-key", "gx.key", "-issuer", "GX", "-kind", kind,
			"-id-number", p.id, "-pseudonym-secret", "pseudo.secret", "-name", p.name)
		var r struct{ Text, Voucher_ID, Subject string }
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		codes = append(codes, r.Text)
		secret = append(secret, p.name, p.masked, p.id, p.id[6:14], r.Voucher_ID, r.Subject)
		for _, raw := range []string{r.Voucher_ID, r.Subject} {
			b, _ := hex.DecodeString(raw)
			secret = append(secret, string(b))
		}
	}
	iat := time.Now().Add(-time.Hour).Unix()
	codes = append(codes, verifiertest.IssueDCC(t, dcc, verifiertest.DCCPayload(t, "DE", iat, iat+86400,
		verifiertest.DCCVaccination(2, 2, time.Now().AddDate(0, -2, 0).Format("2006-01-02"))), nil))
	secret = append(secret, "MUSTERMANN", "Mustermann", "ERIKA", "Erika", "1964-08-12", "M* E*", "URN:UVCI")

	if err := os.WriteFile(filepath.Join(dir, "dcc.key"), verifiertest.DCCPseudonymKey, 0o600); err != nil {
		t.Fatal(err)
	}
	b := mqtttest.StartMosquitto(t)
	// Enrolment as an authority does it: the gate's key in the list,
	// wicketctl signs the roster and publishes it.
	identity := wiretest.IdentityFile(t, dir)
	members := "id,venue,station,role,key\nPRIV-G1,PRIV-V1,S1,gate," + verifier.FormatMemberKey(wiretest.GatePub) +
		"\n" + wiretest.CollectorID + ",,,collector," + verifier.FormatMemberKey(wiretest.CollectorPub) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "members.csv"), []byte(members), 0o644); err != nil {
		t.Fatal(err)
	}
	ctl(t, bin, dir, "roster", "sign", "-root", "root.key", "-version", "1", "-members", "members.csv", "-out", "roster.cose")
	ctl(t, bin, dir, "roster", "publish", "-broker", b.URL(), "-fleet", "priv", "-roots", "root.pub", "roster.cose")
	cfgPath := filepath.Join(dir, "wicketd.yaml")
	err := os.WriteFile(cfgPath, []byte(`gate: {id: PRIV-G1, venue: PRIV-V1}
trust: {root_keys: [root.pub], key_set: keyset.cose, dcc_pseudonym_key: dcc.key}
policy:
  max_status_age: 0s
  profiles:
    dcc: {accept: [vaccination]}
store: {path: wicket.db}
scanner: {type: stdin, hold_off: 0s}
turnstile: {backend: sim, pulse_width: 50ms, open_timeout: 1s}
log: {level: debug}
sync: {enabled: true, fleet: priv, broker: "`+b.URL()+`", status_every: 1s, ack_timeout: 2s, reconnect_min: 100ms, reconnect_max: 1s, identity_key: "`+identity+`"}
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var published bytes.Buffer
	decisions := 0
	topics := wire.Topics{Fleet: "priv"}
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("privacy-collector"))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(100)
	cl.Subscribe("#", 1, func(c mqtt.Client, m mqtt.Message) {
		mu.Lock()
		published.WriteString(m.Topic() + " ")
		published.Write(m.Payload())
		published.WriteByte('\n')
		mu.Unlock()
		if r, err := wiretest.OpenRecords("priv", m.Payload()); err == nil && len(r.Records) > 0 {
			mu.Lock()
			for _, e := range r.Records {
				if e.Type == "decision" {
					decisions++
				}
			}
			mu.Unlock()
			c.Publish(topics.Ack(r.Gate), 1, false, wiretest.Ack("priv", r.Gate, r.Records[0].Seq, r.Records[len(r.Records)-1].Seq))
		}
	}).Wait()

	cmd := selfExec("run", "-config", cfgPath)
	stdin, _ := cmd.StdinPipe()
	logs := &testkit.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	defer func() {
		if t.Failed() {
			t.Logf("wicketd log:\n%s", logs.String())
		}
	}()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	for _, c := range codes {
		io.WriteString(stdin, c+"\n")
		// A denied code and a garbage line too: they are logged as well.
		io.WriteString(stdin, c[:len(c)-9]+"\n")
	}
	testkit.Eventually(t, fmt.Sprintf("%d decisions at the broker", 2*len(codes)), 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return decisions >= 2*len(codes)
	})
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("wicketd after SIGTERM: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), `"reason":"ok"`) {
		t.Fatalf("the gate allowed nothing; the search below would prove little:\n%s", logs.String())
	}
	store, err := os.ReadFile(filepath.Join(dir, "wicket.db"))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for where, data := range map[string][]byte{"store file": store, "log": []byte(logs.String()), "broker": published.Bytes()} {
		for _, s := range secret {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s holds %q", where, s)
				if where == "log" {
					for _, l := range strings.Split(logs.String(), "\n") {
						if strings.Contains(l, s) {
							t.Log(l)
						}
					}
				}
			}
		}
	}
	t.Logf("searched %d bytes of store, %d of log, %d published for %d strings", len(store), len(logs.String()), published.Len(), len(secret))
}
