package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// File permission rules checked at start (CheckPermissions):
//
//   - the identity key (sync.identity_key) is readable by its owner only;
//   - secrets (sync.password_file, sync.key_file, trust.record_key) may be
//     readable by the owner and the group (a Debian package installs them
//     root:wicket 0640), never writable by the group nor open to others;
//   - trust anchors and the config (trust.root_keys, trust.key_set,
//     trust.batches, sync.ca_file, the config file) may be read by anyone
//     but written only by their owner: a group- or world-writable root key
//     lets a local user replace what the gate trusts;
//   - the store and its directory must not be writable by others, not
//     even a sticky directory like /tmp (another user could put a store of
//     their own there before the gate first makes it); a store readable by
//     others is reported, since it holds the access log;
//   - every one of these files, and the store's directory, is owned by
//     root, the gate's user or the user wicketd runs as (TrustedOwners):
//     another user's root.pub is another user's gate, whatever its mode.
const (
	secretForbidden = 0o037 // group write, any access for others
	trustForbidden  = 0o022 // group or other write
	storeForbidden  = 0o002 // other write
	storeWarn       = 0o004 // other read
	// identityForbidden: the identity key is 0600, owned by the user
	// wicketd runs as.
	identityForbidden = 0o077
)

// GateUser is the system user wicketd runs as (the Debian package makes
// it).
const GateUser = "wicket"

// TrustedOwners returns the uids that may own the gate's files: root,
// GateUser where it exists, and the user this process runs as (who can
// write the store anyway). Tests replace it.
var TrustedOwners = func() []uint32 {
	owners := []uint32{0, uint32(os.Geteuid())}
	if u, err := user.Lookup(GateUser); err == nil {
		if id, err := strconv.ParseUint(u.Uid, 10, 32); err == nil {
			owners = append(owners, uint32(id))
		}
	}
	return owners
}

// CheckPermissions checks the files the config names against the rules
// above. It returns an error naming the first file whose permissions let
// someone else change what the gate trusts or read its secrets, and
// warnings for what is merely too open. Missing optional files are left to
// the code that opens them.
func (c *Config) CheckPermissions(configPath string) (warnings []string, err error) {
	owners := TrustedOwners()
	check := func(field, path string, forbidden fs.FileMode, what string) error {
		if path == "" {
			return nil
		}
		st, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && !slices.Contains(owners, sys.Uid) {
			return fmt.Errorf("%s: %s is owned by uid %d, not root nor the %s user: its owner decides what the gate trusts; fix with chown root:%s %s",
				field, path, sys.Uid, GateUser, GateUser, path)
		}
		if st.IsDir() && st.Mode().Perm()&forbidden != 0 {
			return fmt.Errorf("%s: the directory %s has mode %04o: other users could put files of their own in it; keep the store in a directory of its own, e.g. /var/lib/wicket (install -d -o %s -g %s -m 0750 /var/lib/wicket)",
				field, path, modeBits(st.Mode()), GateUser, GateUser)
		}
		if bad := st.Mode().Perm() & forbidden; bad != 0 {
			return fmt.Errorf("%s: %s has mode %04o: %s; fix with chmod %04o %s",
				field, path, st.Mode().Perm(), what, st.Mode().Perm()&^forbidden, path)
		}
		return nil
	}
	const secret = "a secret must not be writable by the group nor open to others"
	const anchor = "what the gate trusts must be writable by its owner only"
	for _, f := range []struct {
		field, path string
		forbidden   fs.FileMode
		what        string
	}{
		{"config", configPath, trustForbidden, anchor},
		{"sync.password_file", c.Path(c.Sync.PasswordFile), secretForbidden, secret},
		{"sync.key_file", c.Path(c.Sync.KeyFile), secretForbidden, secret},
		{"sync.identity_key", c.Path(c.Sync.IdentityKey), identityForbidden, "a private key must be readable by its owner only"},
		{"trust.record_key", c.Path(c.Trust.RecordKey), secretForbidden, secret},
		{"trust.dcc_pseudonym_key", c.Path(c.Trust.DCCPseudonymKey), secretForbidden, secret},
		{"http.admin.token_file", c.Path(c.HTTP.Admin.TokenFile), secretForbidden, secret},
		{"sync.ca_file", c.Path(c.Sync.CAFile), trustForbidden, anchor},
		{"trust.key_set", c.Path(c.Trust.KeySet), trustForbidden, anchor},
	} {
		if err := check(f.field, f.path, f.forbidden, f.what); err != nil {
			return warnings, err
		}
	}
	for i, p := range c.Trust.RootKeys {
		if err := check(fmt.Sprintf("trust.root_keys[%d]", i), c.Path(p), trustForbidden, anchor); err != nil {
			return warnings, err
		}
	}
	batches, err := c.BatchFiles()
	if err != nil {
		return warnings, err
	}
	for _, p := range batches {
		if err := check("trust.batches", p, trustForbidden, anchor); err != nil {
			return warnings, err
		}
	}
	store := c.Path(c.Store.Path)
	const storeWhat = "others could change the access log and the trust data"
	for _, p := range []string{filepath.Dir(store), store} {
		if err := check("store.path", p, storeForbidden, storeWhat); err != nil {
			return warnings, err
		}
	}
	if st, err := os.Stat(store); err == nil && st.Mode().Perm()&storeWarn != 0 {
		warnings = append(warnings, fmt.Sprintf("store.path: %s has mode %04o: others can read the access log; chmod %04o %s",
			store, st.Mode().Perm(), st.Mode().Perm()&^0o007, store))
	}
	return warnings, nil
}

// modeBits is a mode as chmod writes it, with the sticky bit (1777).
func modeBits(m fs.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}
