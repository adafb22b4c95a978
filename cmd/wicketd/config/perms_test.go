package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckPermissions(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfgPath := write("wicketd.yaml", 0o644)
	write("root.pub", 0o644)
	write("keyset.cose", 0o644)
	write("record.key", 0o640)
	write("dcc.key", 0o640)
	write("gate.key", 0o600)
	write("wicket.db", 0o600)
	c, err := Parse([]byte(`gate: {id: G1, venue: V1}
trust: {root_keys: [root.pub], key_set: keyset.cose, record_key: record.key, dcc_pseudonym_key: dcc.key}
store: {path: wicket.db}
scanner: {type: stdin}
turnstile: {backend: sim}
sync: {enabled: true, fleet: f, broker: "tls://b:8883", cert_file: gate.crt, key_file: gate.key}
`), dir)
	if err != nil {
		t.Fatal(err)
	}
	if w, err := c.CheckPermissions(cfgPath); err != nil || len(w) != 0 {
		t.Fatalf("good modes: %v, %v", w, err)
	}
	for _, tc := range []struct {
		file  string
		mode  os.FileMode
		field string
	}{
		{"root.pub", 0o666, "trust.root_keys[0]"},
		{"root.pub", 0o664, "trust.root_keys[0]"},
		{"keyset.cose", 0o646, "trust.key_set"},
		{"record.key", 0o644, "trust.record_key"},
		{"dcc.key", 0o644, "trust.dcc_pseudonym_key"},
		{"gate.key", 0o660, "sync.key_file"},
		{"gate.key", 0o604, "sync.key_file"},
		{"wicketd.yaml", 0o666, "config"},
		{"wicket.db", 0o602, "store.path"},
	} {
		p := filepath.Join(dir, tc.file)
		st, _ := os.Stat(p)
		os.Chmod(p, tc.mode)
		_, err := c.CheckPermissions(cfgPath)
		if err == nil || !strings.HasPrefix(err.Error(), tc.field+":") || !strings.Contains(err.Error(), "chmod") {
			t.Errorf("%s mode %04o: %v; want an error naming %s with the fix", tc.file, tc.mode, err, tc.field)
		}
		os.Chmod(p, st.Mode().Perm())
	}
	os.Chmod(filepath.Join(dir, "wicket.db"), 0o644)
	if w, err := c.CheckPermissions(cfgPath); err != nil || len(w) != 1 || !strings.Contains(w[0], "others can read the access log") {
		t.Errorf("world-readable store: %v, %v; want one warning", w, err)
	}
}

// TestCheckOwners: a trust file or store owned by another user is refused
// whatever its mode, and so is a store in a sticky world-writable
// directory like /tmp.
func TestCheckOwners(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"root.pub", "keyset.cose", "admin.token", "wicket.db"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "wicketd.yaml")
	os.WriteFile(cfgPath, nil, 0o644)
	c, err := Parse([]byte("gate: {id: G1, venue: V1}\ntrust: {root_keys: [root.pub], key_set: keyset.cose}\nstore: {path: wicket.db}\nscanner: {type: stdin}\nturnstile: {backend: sim}\nhttp: {admin: {token_file: admin.token}}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	me := uint32(os.Geteuid())
	defer func(f func() []uint32) { TrustedOwners = f }(TrustedOwners)
	TrustedOwners = func() []uint32 { return []uint32{me} }
	if _, err := c.CheckPermissions(cfgPath); err != nil {
		t.Fatalf("files of a trusted owner: %v", err)
	}
	TrustedOwners = func() []uint32 { return []uint32{me + 1} }
	_, err = c.CheckPermissions(cfgPath)
	if err == nil || !strings.HasPrefix(err.Error(), "config: ") || !strings.Contains(err.Error(), "chown root:wicket") {
		t.Errorf("config owned by another user: %v; want an error naming config and chown", err)
	}
	TrustedOwners = func() []uint32 { return []uint32{me} }
	tmp := filepath.Join(t.TempDir(), "tmp")
	os.Mkdir(tmp, 0o755)
	os.Chmod(tmp, os.ModeSticky|0o777)
	store := c.Store.Path
	c.Store.Path = filepath.Join(tmp, "wicket.db")
	_, err = c.CheckPermissions(cfgPath)
	if err == nil || !strings.Contains(err.Error(), "store.path: the directory "+tmp+" has mode 1777") {
		t.Errorf("store in a sticky world-writable directory: %v; want it refused", err)
	}
	c.Store.Path = store

	TrustedOwners = func() []uint32 { return []uint32{me} }
	for _, tc := range []struct{ file, field string }{
		{"root.pub", "trust.root_keys[0]"},
		{"keyset.cose", "trust.key_set"},
		{"admin.token", "http.admin.token_file"},
		{"wicket.db", "store.path"},
	} {
		if os.Geteuid() != 0 {
			t.Skip("giving a file to another user needs root")
		}
		p := filepath.Join(dir, tc.file)
		os.Chown(p, int(me)+4242, -1)
		_, err := c.CheckPermissions(cfgPath)
		if err == nil || !strings.HasPrefix(err.Error(), tc.field+": ") || !strings.Contains(err.Error(), "owned by uid") {
			t.Errorf("%s owned by another user: %v; want an error naming %s", tc.file, err, tc.field)
		}
		os.Chown(p, int(me), -1)
	}
}
