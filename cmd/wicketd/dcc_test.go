package main

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
