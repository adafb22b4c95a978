package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"wicket/decoder"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// TestReloadTrustFailureKeepsPolicy: a reload whose trust files fail is
// refused whole: the new policy does not come into force, the running
// config and log level stay, and the gate decides as before. Once the
// trust file is fixed, the same reload applies.
func TestReloadTrustFailureKeepsPolicy(t *testing.T) {
	dir := t.TempDir()
	cfgPath, f := gateFiles(t, dir)
	wall := &verifiertest.Clock{}
	wall.Set(f.Clock.Now())
	r := newClockRig(t, cfgPath, wall)
	r.d.level = new(slog.LevelVar)
	old := r.d.cfg
	c := f.Claims(decoder.KindPrinted)
	c.ID = []byte("reload-printed")
	code := f.Issue(t, f.Ed, c)
	if res := r.scan(code); !res.Decision.Allow {
		t.Fatalf("before reload: %s; want allowed", res.Decision.Reason)
	}

	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(b), "policy: {max_status_age: 0s}", "policy: {max_status_age: 0s, kinds: {printed: {accept: false}}}", 1)
	changed = strings.Replace(changed, "log: {level: info,", "log: {level: debug,", 1)
	broken := strings.Replace(changed, "key_set: keyset.cose", "key_set: broken.cose", 1)
	if broken == changed || changed == string(b) {
		t.Fatal("test config did not change; gateFiles changed shape")
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.cose"), []byte("not a signed key set"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	r.d.reload()
	if r.d.cfg != old {
		t.Error("a reload whose trust files failed replaced the running config")
	}
	if p := r.d.v.Policy(); !acceptsPrinted(p) {
		t.Error("a reload whose trust files failed put the new policy in force")
	}
	if lvl := r.d.level.Level(); lvl != slog.LevelInfo {
		t.Errorf("log level after a refused reload = %v; want info", lvl)
	}
	c.ID = []byte("reload-printed-2")
	if res := r.scan(f.Issue(t, f.Ed, c)); !res.Decision.Allow {
		t.Fatalf("after a refused reload: %s; want the old policy's allow", res.Decision.Reason)
	}

	if err := os.WriteFile(cfgPath, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	r.d.reload()
	if r.d.cfg == old || acceptsPrinted(r.d.v.Policy()) || r.d.level.Level() != slog.LevelDebug {
		t.Fatal("a good reload did not apply the new config, policy and log level")
	}
	c.ID = []byte("reload-printed-3")
	if res := r.scan(f.Issue(t, f.Ed, c)); res.Decision.Reason != verifier.ReasonKindNotAccepted {
		t.Fatalf("after the good reload: %s; want kind_not_accepted", res.Decision.Reason)
	}
}

// acceptsPrinted reports whether p lets printed vouchers in.
func acceptsPrinted(p verifier.Policy) bool { return p.Kinds.Printed.Accept }
