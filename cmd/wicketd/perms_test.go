package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunRefusesOpenTrustFiles: wicketd run and check-config refuse a root
// key that others could replace, and name the file and the fix.
func TestRunRefusesOpenTrustFiles(t *testing.T) {
	dir := t.TempDir()
	cfg, _ := gateFiles(t, dir)
	var out bytes.Buffer
	if rc := dispatch(t.Context(), []string{"check-config", cfg}, nil, &out, &out); rc != exitOK {
		t.Fatalf("check-config with sane modes: exit %d\n%s", rc, out.String())
	}
	if err := os.Chmod(filepath.Join(dir, "root.pub"), 0o666); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"check-config", "run"} {
		out.Reset()
		args := []string{cmd, cfg}
		if cmd == "run" {
			args = []string{cmd, "-config", cfg}
		}
		rc := dispatch(t.Context(), args, strings.NewReader(""), &out, &out)
		if rc != exitUsage || !strings.Contains(out.String(), "trust.root_keys[0]") || !strings.Contains(out.String(), "chmod 0644") {
			t.Errorf("%s with a world-writable root key: exit %d\n%s", cmd, rc, out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "wicket.db")); err == nil {
		t.Error("run opened the store before refusing")
	}
}
