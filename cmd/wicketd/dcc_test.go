package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wicket/cmd/wicketd/config"
	"wicket/sync/store"
	"wicket/sync/store/storetest"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// TestVerifyDCC: DCC signer certificates go into the key set with
// wicketctl keyset -dcc, and wicketd verify decides on HC1 certificates
// under policy.profiles.dcc, printing the mapped fields with -json and
// never the holder's name or birth date.
func TestVerifyDCC(t *testing.T) {
	bin := buildWicketctl(t)
	dir := t.TempDir()
	ctl(t, bin, dir, "keygen", "-out", "root")
	de := verifiertest.NewDCCSigner(t, verifiertest.ESKey(10), "DE", verifiertest.OIDDCCVaccination)
	pemFile := filepath.Join(dir, "de.pem")
	if err := os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: de.Cert}), 0o644); err != nil {
		t.Fatal(err)
	}
	out := ctl(t, bin, dir, "keyset", "-root", "root.key", "-version", "1", "-out", "keyset.cose", "-dcc", "de.pem")
	if !strings.Contains(out, "dcc signer DE kid") || !strings.Contains(out, ", v") {
		t.Errorf("keyset output does not list the signer and its types:\n%s", out)
	}
	if err := os.WriteFile(filepath.Join(dir, "dcc.key"), verifiertest.DCCPseudonymKey, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "wicketd.yaml")
	err := os.WriteFile(cfg, []byte(`gate: {id: G1, venue: V1}
trust:
  root_keys: [root.pub]
  key_set: keyset.cose
  dcc_pseudonym_key: dcc.key
policy:
  max_status_age: 0s
  max_key_set_age: 2000h
  profiles:
    dcc:
      accept: [vaccination, test]
      vaccination: {complete: true, min_age: 336h}
      test: {max_age: 72h, types: [naat]}
store: {path: wicket.db}
scanner: {type: stdin}
turnstile: {backend: sim}
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	iat := now.Add(-time.Hour).Unix()
	at := "-at=" + now.UTC().Format(time.RFC3339)
	text := verifiertest.IssueDCC(t, de, verifiertest.DCCPayload(t, "DE", iat, iat+30*86400,
		verifiertest.DCCVaccination(2, 2, now.AddDate(0, -2, 0).Format("2006-01-02"))), nil)

	rc, d := verifyJSON(t, cfg, text, at)
	if rc != exitOK || d["allow"] != true {
		t.Fatalf("vaccination DCC: exit %d, %v", rc, d)
	}
	v := d["voucher"].(map[string]any)
	dcc, _ := v["dcc"].(map[string]any)
	if v["profile"] != "dcc" || v["issuer"] != "DE" || dcc["type"] != "vaccination" || dcc["dose"] != 2.0 || dcc["doses"] != 2.0 {
		t.Errorf("mapped fields: %v", v)
	}
	var stdout, stderr strings.Builder
	if rc := dispatch(t.Context(), []string{"verify", "-config", cfg, "-json", at, text}, strings.NewReader(""), &stdout, &stderr); rc != exitOK {
		t.Fatalf("exit %d: %s", rc, stderr.String())
	}
	for _, personal := range []string{"MUSTERMANN", "Mustermann", "ERIKA", "1964"} {
		if strings.Contains(stdout.String(), personal) {
			t.Errorf("verify output holds %q:\n%s", personal, stdout.String())
		}
	}

	// The signer may sign vaccinations only; a test it signed is refused.
	testCert := verifiertest.IssueDCC(t, de, verifiertest.DCCPayload(t, "DE", iat, iat+86400,
		verifiertest.DCCTest("LP6464-4", "260415000", now.Add(-2*time.Hour))), nil)
	if rc, d := verifyJSON(t, cfg, testCert, at); rc != exitDenied || d["reason"] != "dcc_signer_not_allowed" {
		t.Errorf("test signed by a vaccination signer: exit %d, %v", rc, d["reason"])
	}

	stdout.Reset()
	dispatch(t.Context(), []string{"verify", "-config", cfg, at, text}, strings.NewReader(""), &stdout, &stderr)
	if !strings.Contains(stdout.String(), "dcc:       vaccination, dose 2 of 2") {
		t.Errorf("text output:\n%s", stdout.String())
	}
}

// TestDCCOperatorTools: the authority's side of DCCs end to end. A trust
// list with a P-384 signer still gives a key set with the usable one; the
// fleet's pseudonym key comes from wicketctl dcc pseudonym -new; an EU
// gateway revocation batch (UCI) imported with wicketctl dcc revocations
// revokes the certificate at wicketd verify, and a red override made
// from the holder's pseudonym turns another certificate of the holder red.
func TestDCCOperatorTools(t *testing.T) {
	bin := buildWicketctl(t)
	dir := t.TempDir()
	ctl(t, bin, dir, "keygen", "-out", "root")
	de := verifiertest.NewDCCSigner(t, verifiertest.ESKey(10), "DE")
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	it := verifiertest.NewDCCSigner(t, p384, "IT")
	b64 := base64.StdEncoding.EncodeToString
	list, _ := json.Marshal(map[string]any{"certificates": []any{
		map[string]any{"kid": b64(it.Kid), "country": "IT", "rawData": b64(it.Cert)},
		map[string]any{"kid": b64(de.Kid), "country": "DE", "rawData": b64(de.Cert)},
	}})
	write := func(name string, b []byte, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), b, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("trustlist.json", list, 0o644)
	out := ctl(t, bin, dir, "keyset", "-root", "root.key", "-version", "1", "-out", "keyset.cose", "-dcc", "trustlist.json")
	if !strings.Contains(out, "dcc signer skipped") || !strings.Contains(out, "P-384") || !strings.Contains(out, "dcc signer DE kid") {
		t.Fatalf("keyset with a P-384 signer:\n%s", out)
	}
	ctl(t, bin, dir, "dcc", "pseudonym", "-new", "-secret", "dcc.key")

	now := time.Now().Truncate(time.Second)
	iat := now.Add(-2 * time.Hour).Unix()
	vacc := func(ci string) string {
		e := verifiertest.DCCWith(verifiertest.DCCVaccination(2, 2, now.AddDate(0, -2, 0).Format("2006-01-02")), "ci", ci)
		return verifiertest.IssueDCC(t, de, verifiertest.DCCPayload(t, "DE", iat, iat+30*86400, e), nil)
	}
	revoked, other := vacc("URN:UVCI:01:DE:REVOKED#1"), vacc("URN:UVCI:01:DE:OTHER#2")
	uci := sha256.Sum256([]byte("URN:UVCI:01:DE:REVOKED#1"))
	gw, _ := json.Marshal(map[string]any{"country": "DE", "expires": now.Add(90 * 24 * time.Hour).UTC().Format(time.RFC3339),
		"kid": b64(de.Kid), "hashType": "UCI", "entries": []any{map[string]any{"hash": b64(uci[:16])}}})
	write("gw-uci.json", gw, 0o644)
	out = ctl(t, bin, dir, "dcc", "revocations", "-root", "root.key", "-state", "authority-state.json", "-version", "1", "-snapshot", "-yes", "-out", "rev.cose", "gw-uci.json")
	if !strings.Contains(out, "UCI, 1 entries") {
		t.Errorf("dcc revocations output:\n%s", out)
	}
	sub := strings.TrimSpace(ctl(t, bin, dir, "dcc", "pseudonym", "-secret", "dcc.key", "-fnt", "MUSTERMANN", "-gnt", "ERIKA", "-dob", "1964-08-12"))
	ctl(t, bin, dir, "override", "-root", "root.key", "-state", "authority-state.json", "-version", "2", "-base", "1", "-subject", sub, "-colour", "red",
		"-at", now.Add(-time.Hour).UTC().Format(time.RFC3339), "-out", "red.cose")

	cfg := filepath.Join(dir, "wicketd.yaml")
	writeConfig := func(batches string) {
		write("wicketd.yaml", []byte(`gate: {id: G1, venue: V1}
trust:
  root_keys: [root.pub]
  key_set: keyset.cose
  dcc_pseudonym_key: dcc.key
  batches: [`+batches+`]
policy:
  max_status_age: 0s
  max_key_set_age: 2000h
  profiles:
    dcc: {accept: [vaccination]}
store: {path: wicket.db}
scanner: {type: stdin}
turnstile: {backend: sim}
`), 0o644)
	}
	at := "-at=" + now.UTC().Format(time.RFC3339)
	writeConfig("rev.cose")
	if rc, d := verifyJSON(t, cfg, revoked, at); rc != exitDenied || d["reason"] != "revoked" {
		t.Errorf("certificate on the EU list: exit %d, %v", rc, d)
	}
	if rc, d := verifyJSON(t, cfg, other, at); rc != exitOK {
		t.Errorf("certificate not on the list: exit %d, %v", rc, d)
	}
	writeConfig("rev.cose, red.cose")
	if rc, d := verifyJSON(t, cfg, other, at); rc != exitDenied || d["reason"] != "colour_red" {
		t.Errorf("holder overridden red: exit %d, %v", rc, d)
	}

	// The same batch in a gate's store: the revocation files the daemon
	// decides with (sync/revset behind store.Standing).
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := loadRoots(c)
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.Open(t, store.Options{Path: filepath.Join(dir, "gate.db"), LockTimeout: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b, err := readBatch(roots, filepath.Join(dir, "rev.cose"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ApplyBatch(b, now); err != nil {
		t.Fatal(err)
	}
	ks, err := readKeySet(roots, filepath.Join(dir, "keyset.cose"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := verifier.New(verifier.NewTrustedClock(verifier.FixedClock(now), time.Time{}), st, &c.Policy)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.InstallKeySet(ks); err != nil {
		t.Fatal(err)
	}
	if err := loadDCCPseudonymKey(c, v); err != nil {
		t.Fatal(err)
	}
	if d := v.Verify([]byte(revoked)); d.Reason != verifier.ReasonRevoked {
		t.Errorf("EU-revoked certificate with the gate's store: %v (%s)", d.Reason, d.Detail)
	}
	if d := v.Verify([]byte(other)); !d.Allow {
		t.Errorf("certificate not on the list with the gate's store: %v (%s)", d.Reason, d.Detail)
	}
}
