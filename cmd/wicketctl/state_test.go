package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFileModeVersions: the air-gapped path signs no implicit snapshot,
// never reuses a version, makes a delta follow the last batch signed, and
// refuses a truncated voucher id; a refusal writes nothing.
func TestFileModeVersions(t *testing.T) {
	dir := t.TempDir()
	stem := filepath.Join(dir, "root")
	if rc, _, errs := run(t, "keygen", "-out", stem); rc != exitOK {
		t.Fatal(errs)
	}
	state := filepath.Join(dir, "state.json")
	const id = "7f3a91c20b1d2e3f405162738495a6b7"
	n := 0
	revoke := func(extra ...string) (rc int, out, errs, file string) {
		n++
		file = filepath.Join(dir, "b"+strings.Repeat("x", n)+".cose")
		args := append([]string{"revoke", "-root", stem + ".key", "-state", state, "-out", file, "-voucher-id", id}, extra...)
		rc, out, errs = run(t, args...)
		return rc, out, errs, file
	}
	refused := func(name, want string, extra ...string) {
		t.Helper()
		before, _ := os.ReadFile(state)
		rc, out, errs, file := revoke(extra...)
		if rc != exitUsage || !strings.Contains(errs, want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", name, rc, errs, exitUsage, want)
		}
		if _, err := os.Stat(file); !os.IsNotExist(err) {
			t.Errorf("%s: wrote %s (%s)", name, file, out)
		}
		if after, _ := os.ReadFile(state); !bytes.Equal(before, after) {
			t.Errorf("%s: state file changed:\n%s\nto\n%s", name, before, after)
		}
	}
	refused("first delta without -base", "-base is required")
	refused("-base 0", "-base 0 would make a snapshot", "-base", "0")
	refused("snapshot without -yes", "dropping every earlier revocation and override", "-snapshot")
	refused("truncated id", "8 bytes, want 16", "-base", "3", "-voucher-id", id[:16])

	if rc, out, errs, _ := revoke("-base", "3"); rc != exitOK || !strings.Contains(out, "batch version 4 (delta on 3)") {
		t.Fatalf("delta on 3: %d %q %q", rc, out, errs)
	}
	if rc, out, errs, _ := revoke(); rc != exitOK || !strings.Contains(out, "batch version 5 (delta on 4)") {
		t.Fatalf("delta after the state's last: %d %q %q", rc, out, errs)
	}
	refused("reused version", "version 5 was already used", "-version", "5")
	refused("older version", "version 2 was already used", "-version", "2")
	refused("delta not on the last", "a delta must follow the batch before it", "-base", "4")
	if rc, out, errs, _ := revoke("-snapshot", "-yes"); rc != exitOK || !strings.Contains(out, "batch version 6 (snapshot)") {
		t.Fatalf("snapshot -yes: %d %q %q", rc, out, errs)
	}
	// The card's grouping is accepted as typed.
	if rc, out, errs, _ := revoke("-voucher-id", "7f3a 91c2 0b1d 2e3f 4051 6273 8495 a6b7"); rc != exitOK || !strings.Contains(out, "2 entries") {
		t.Fatalf("grouped id: %d %q %q", rc, out, errs)
	}
	st, err := loadState(state)
	if err != nil || st.Last != 7 || st.LastBase != 6 || len(st.Signed) != 4 {
		t.Fatalf("state = %+v, %v; want last 7 on 6 after four batches", st, err)
	}
}
