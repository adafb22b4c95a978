package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// buildWicketctl builds the wicketctl binary for the round-trip test. It
// is skipped where the test runs under emulation for another architecture.
func buildWicketctl(t testing.TB) string { return buildCmd(t, "wicketctl") }

// buildCmd builds ../<name> (wicketctl, or "." for wicketd) without cgo.
func buildCmd(t testing.TB, name string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not in PATH")
	}
	host, err := exec.Command(goBin, "env", "GOHOSTARCH").Output()
	if err != nil || strings.TrimSpace(string(host)) != runtime.GOARCH {
		t.Skip("running under emulation: the round trip runs on the host")
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(name))
	cmd := exec.Command(goBin, "build", "-o", bin, "../"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	return bin
}

func ctl(t *testing.T, bin, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("wicketctl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

// verifyJSON runs wicketd verify in-process and returns the exit code and
// the decoded decision.
func verifyJSON(t *testing.T, cfg, code string, extra ...string) (int, map[string]any) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args := append([]string{"verify", "-config", cfg, "-json"}, extra...)
	args = append(args, code)
	rc := dispatch(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	var d map[string]any
	if rc != exitUsage {
		if err := json.Unmarshal(stdout.Bytes(), &d); err != nil {
			t.Fatalf("verify output %q: %v (stderr %s)", stdout.String(), err, stderr.String())
		}
	}
	return rc, d
}

// TestRoundTrip: keygen → keyset → issue each kind → wicketd verify allows;
// then revoked, overridden, tampered, expired and unknown-key codes are
// denied with their reasons, through the real command lines.
func TestRoundTrip(t *testing.T) {
	bin := buildWicketctl(t)
	dir := t.TempDir()
	ctl(t, bin, dir, "keygen", "-out", "root")
	ctl(t, bin, dir, "keygen", "-alg", "EdDSA", "-out", "gx")
	ctl(t, bin, dir, "keygen", "-alg", "ES256", "-out", "gd")
	ctl(t, bin, dir, "keygen", "-out", "stranger")
	st, err := os.Stat(filepath.Join(dir, "gx.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("gx.key mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}
	ctl(t, bin, dir, "keyset", "-root", "root.key", "-version", "1", "-out", "keyset.cose",
		"-key", "pub=gx.pub,issuer=GX,not-before="+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "-key", "pub=gd.pub,issuer=GD,kinds=printed")
	ctl(t, bin, dir, "pseudonym", "-new", "-secret", "pseudo.secret")

	cfg := filepath.Join(dir, "wicketd.yaml")
	writeCfg := func(batches ...string) {
		b := "gate: {id: G1, venue: V1}\ntrust:\n  root_keys: [root.pub]\n  key_set: keyset.cose\n"
		if len(batches) > 0 {
			b += "  batches: [" + strings.Join(batches, ", ") + "]\n"
		} else {
			b += "policy: {max_status_age: 0s, max_key_set_age: 2000h}\n"
		}
		b += "store: {path: wicket.db}\nscanner: {type: stdin}\nturnstile: {backend: sim}\n"
		if err := os.WriteFile(cfg, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg()

	issue := func(args ...string) (text, id, subject string) {
		out := ctl(t, bin, dir, append([]string{"issue", "-json"}, args...)...)
		var r struct{ Text, Voucher_ID, Subject string }
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		return r.Text, r.Voucher_ID, r.Subject
	}
	for _, kind := range []string{"dynamic", "printed", "watch"} {
		text, _, _ := issue("-key", "gx.key", "-issuer", "GX", "-kind", kind, "-id-number", "450100200001011234",
			"-pseudonym-secret", "pseudo.secret", "-name", "张三明")
		if strings.Contains(text, "450100") {
			t.Fatal("ID number in clear in the voucher")
		}
		rc, d := verifyJSON(t, cfg, text)
		if rc != exitOK || d["allow"] != true {
			t.Fatalf("%s voucher: exit %d, decision %v; want allowed", kind, rc, d)
		}
		if v := d["voucher"].(map[string]any); v["masked_name"] != "张*明" || v["kind"] != kind {
			t.Errorf("%s voucher: %v; want masked name 张*明 and kind %s", kind, v, kind)
		}
	}
	esText, _, _ := issue("-key", "gd.key", "-issuer", "GD", "-kind", "printed", "-subject", "00112233445566778899aabbccddeeff")
	if rc, d := verifyJSON(t, cfg, esText); rc != exitOK {
		t.Fatalf("ES256 printed voucher: exit %d, %v", rc, d)
	}

	text, id, sub := issue("-key", "gx.key", "-issuer", "GX", "-kind", "printed", "-subject", "00112233445566778899aabbccddeeff")
	deny := func(name, code, want string, extra ...string) {
		t.Helper()
		rc, d := verifyJSON(t, cfg, code, extra...)
		if rc != exitDenied || d["reason"] != want {
			t.Errorf("%s: exit %d reason %v (%v); want exit 1, %s", name, rc, d["reason"], d["detail"], want)
		}
	}
	gdDynamic, _, _ := issue("-key", "gd.key", "-issuer", "GD", "-kind", "dynamic", "-subject", "00112233445566778899aabbccddeeff")
	deny("key not allowed for kind", gdDynamic, "key_kind_not_allowed")
	strangerText, _, _ := issue("-key", "stranger.key", "-issuer", "GX", "-kind", "printed", "-subject", sub)
	deny("unknown key", strangerText, "unknown_kid")
	deny("expired", text, "expired", "-at", time.Now().Add(40*24*time.Hour).UTC().Format(time.RFC3339))
	future, _, _ := issue("-key", "gx.key", "-issuer", "GX", "-kind", "printed", "-subject", sub, "-issued-at", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	deny("not yet valid", future, "not_yet_valid")
	tampered := []byte(text)
	tampered[len(tampered)/2] ^= 1
	rc, d := verifyJSON(t, cfg, string(tampered))
	if rc != exitDenied {
		t.Errorf("tampered code: exit %d %v; want denied", rc, d)
	}

	ctl(t, bin, dir, "revoke", "-root", "root.key", "-state", "state.json", "-version", "1", "-snapshot", "-yes", "-voucher-id", id, "-out", "b1.cose")
	writeCfg("b1.cose")
	deny("revoked", text, "revoked")
	ctl(t, bin, dir, "override", "-root", "root.key", "-state", "state.json", "-version", "2", "-base", "1", "-subject", sub, "-colour", "red", "-out", "b2.cose")
	writeCfg("b1.cose", "b2.cose")
	other, _, _ := issue("-key", "gx.key", "-issuer", "GX", "-kind", "printed", "-subject", sub, "-issued-at", time.Now().Add(-time.Minute).UTC().Format(time.RFC3339))
	rc, d = verifyJSON(t, cfg, other)
	if rc != exitDenied || d["reason"] != "colour_red" || d["alert"] != true || d["overridden"] != true {
		t.Errorf("overridden to red: exit %d %v; want colour_red with alert and overridden", rc, d)
	}
	writeCfg("b2.cose")
	var stderr bytes.Buffer
	if rc := dispatch(context.Background(), []string{"verify", "-config", cfg, text}, nil, &bytes.Buffer{}, &stderr); rc != exitUsage || !strings.Contains(stderr.String(), "does not follow") {
		t.Errorf("delta without its base: exit %d %q; want exit 2 naming the gap", rc, stderr.String())
	}
	if rc := dispatch(context.Background(), []string{"verify", "-config", filepath.Join(dir, "nope.yaml"), text}, nil, &bytes.Buffer{}, &bytes.Buffer{}); rc != exitUsage {
		t.Errorf("missing config: exit %d; want 2", rc)
	}

	var out bytes.Buffer
	insp := exec.Command(bin, "inspect", "-json", text)
	insp.Stdout = &out
	if err := insp.Run(); err != nil {
		t.Fatalf("inspect: %v", err)
	}
	if !strings.Contains(out.String(), `"voucher_id": "`+id+`"`) {
		t.Errorf("inspect -json does not show the voucher id: %s", out.String())
	}
}
