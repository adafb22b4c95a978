package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFirstHour follows docs/first-hour.md: the authority signs a key set
// and an empty first batch; the technician runs wicketd init, copies the
// files, runs check-config, and the first valid code is allowed. Without
// the first batch check-config warns and every code is trust_data_stale,
// the trap the page warns of.
func TestFirstHour(t *testing.T) {
	bin := buildWicketctl(t)
	auth := t.TempDir()
	// 0. What the authority prepares.
	ctl(t, bin, auth, "keygen", "-out", "root")
	ctl(t, bin, auth, "keygen", "-out", "gx")
	ctl(t, bin, auth, "keyset", "-root", "root.key", "-version", "1", "-out", "keyset.cose",
		"-key", "pub=gx.pub,issuer=GX,not-before="+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	ctl(t, bin, auth, "pseudonym", "-new", "-secret", "pseudo.secret")
	os.WriteFile(filepath.Join(auth, "empty.csv"), nil, 0o644)
	if out := ctl(t, bin, auth, "snapshot", "-root", "root.key", "-state", "authority-state.json", "-in", "empty.csv", "-out", "first-batch"); !strings.Contains(out, "snapshot version 1, 0 entries") {
		t.Fatalf("wicketctl snapshot on an empty list: %s", out)
	}

	// 1. Write the config.
	etc := t.TempDir()
	cfgPath := filepath.Join(etc, "wicketd.yaml")
	run := func(args ...string) (int, string) {
		var out bytes.Buffer
		rc := dispatch(context.Background(), args, strings.NewReader(""), &out, &out)
		return rc, out.String()
	}
	if rc, out := run("init", "-out", cfgPath, "-gate-id", "L2-S14-G03", "-venue", "V-450100-0042",
		"-scanner", "stdin", "-relay-pin", "GPIO17", "-passage-pin", "GPIO27", "-broker", "none"); rc != exitOK {
		t.Fatalf("wicketd init = %d\n%s", rc, out)
	}
	raw, _ := os.ReadFile(cfgPath)
	// The store goes where the test may write; everything else is init's.
	text := strings.Replace(string(raw), "/var/lib/wicket/wicket.db", filepath.Join(t.TempDir(), "wicket.db"), 1)
	os.WriteFile(cfgPath, []byte(text), 0o640)

	// 2. Copy the authority's files: first root.pub and keyset.cose only.
	install := func(name string) {
		b, err := os.ReadFile(filepath.Join(auth, name))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(filepath.Join(etc, name)), 0o750)
		if err := os.WriteFile(filepath.Join(etc, name), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	install("root.pub")
	install("keyset.cose")
	var issued struct{ Text string }
	if err := json.Unmarshal([]byte(ctl(t, bin, auth, "issue", "-json", "-key", "gx.key", "-issuer", "GX", "-kind", "printed",
		"-id-number", "450100200001011234", "-pseudonym-secret", "pseudo.secret", "-name", "张三明")), &issued); err != nil {
		t.Fatal(err)
	}
	code := issued.Text

	// 3. check-config: OK, with a warning that the first batch is missing,
	// and every code would be denied.
	if rc, out := run("check-config", cfgPath); rc != exitOK || !strings.Contains(out, "warning: trust.batches: none") {
		t.Errorf("check-config without the first batch = %d\n%s\nwant OK with the trust.batches warning", rc, out)
	}
	if rc, d := verifyJSON(t, cfgPath, code); rc != exitDenied || d["reason"] != "trust_data_stale" {
		t.Errorf("a valid code without the first batch = %d, %v; want trust_data_stale", rc, d["reason"])
	}

	// The first batch, as the page says.
	batch, _ := filepath.Glob(filepath.Join(auth, "first-batch", "*.cose"))
	if len(batch) != 1 {
		t.Fatalf("first-batch holds %v; want one document", batch)
	}
	install(filepath.Join("first-batch", filepath.Base(batch[0])))
	text = strings.Replace(text, "batches: []", "batches: ["+filepath.Join(etc, "first-batch", "*.cose")+"]", 1)
	os.WriteFile(cfgPath, []byte(text), 0o640)
	if rc, out := run("check-config", cfgPath); rc != exitOK || strings.Contains(out, "warning") {
		t.Errorf("check-config with the first batch = %d\n%s\nwant OK without warnings", rc, out)
	}

	// 5. The first valid code is allowed.
	if rc, d := verifyJSON(t, cfgPath, code); rc != exitOK || d["allow"] != true {
		t.Errorf("the first valid code = %d, %v; want allowed", rc, d)
	}
}
