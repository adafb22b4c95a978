package twin

import (
	"strings"
	"testing"
	"time"
)

// mainPID is wicketd's process as systemd knows it.
func mainPID(b *board) string {
	return strings.TrimSpace(b.must(cmdTimeout, "systemctl show -p MainPID --value wicketd"))
}

// upgrade installs the newer build from the stick over the running gate,
// as docs/install.md says upgrades go: wicketd restarts on the new
// package, and the store keeps every record (before: the records the
// store held just before).
func upgrade(t *testing.T, b *board, before []record) {
	long := 3 * time.Minute
	pid := mainPID(b)
	b.must(long, "dpkg -i /mnt/upgrade/wicket_*.deb")
	if v := b.must(cmdTimeout, "dpkg-query -W -f '${Version}\\n' wicket"); !strings.HasSuffix(v, upgradeSuffix) {
		t.Errorf("after the upgrade: package version %q; want the one ending %s", v, upgradeSuffix)
	}
	b.must(long, "timeout 100 sh -c 'until systemctl is-active -q wicketd; do sleep 0.5; done'")
	if npid := mainPID(b); npid == pid || npid == "0" {
		t.Errorf("after the upgrade: wicketd pid %s, before %s; want it restarted on the new package", npid, pid)
	}
	after := storeRecords(t, b)
	kept := len(after) >= len(before)
	for i := 0; kept && i < len(before); i++ {
		kept = after[i] == before[i]
	}
	t.Logf("upgrade to the %s build: wicketd restarted and active; the store holds %d records, the %d before the upgrade among them: %v", upgradeSuffix, len(after), len(before), kept)
	if !kept {
		t.Errorf("the upgrade lost records: %d before, %d after", len(before), len(after))
	}
}

// purge removes the package as docs/install.md says it goes: a plain
// purge deletes /etc/wicket but keeps the store (and the wicket user)
// with every record and says so; with WICKET_PURGE_RECORDS=yes it
// deletes the store and the user too, and says that first.
func purge(t *testing.T, b *board) {
	long := 3 * time.Minute
	b.must(cmdTimeout, "systemctl stop wicketd")
	n := len(strings.Split(strings.TrimSpace(b.must(cmdTimeout, "/mnt/events")), "\n"))
	out := b.must(long, "dpkg --purge wicket")
	if !strings.Contains(out, "KEEPING /var/lib/wicket") {
		t.Errorf("dpkg --purge: want it to say it keeps /var/lib/wicket, got:\n%s", out)
	}
	for _, check := range []struct{ cmd, want string }{
		{"test ! -e /etc/wicket", "/etc/wicket deleted"},
		{"! command -v wicketd", "wicketd removed"},
		{"test -f /var/lib/wicket/wicket.db", "the store kept"},
		{"id wicket", "the wicket user kept"},
	} {
		if out, rc := b.sh(cmdTimeout, check.cmd); rc != 0 {
			t.Errorf("after dpkg --purge: %s: %q failed: %s", check.want, check.cmd, out)
		}
	}
	if k := len(strings.Split(strings.TrimSpace(b.must(cmdTimeout, "/mnt/events")), "\n")); k != n {
		t.Errorf("after dpkg --purge: the kept store holds %d records; want the %d it held", k, n)
	}
	t.Logf("dpkg --purge: /etc/wicket deleted, the store with its %d records and the wicket user kept, and said so", n)

	b.must(long, "dpkg -i /mnt/wicket_*.deb")
	out = b.must(long, "WICKET_PURGE_RECORDS=yes dpkg --purge wicket")
	if !strings.Contains(out, "deleting /var/lib/wicket") {
		t.Errorf("WICKET_PURGE_RECORDS=yes dpkg --purge: want it to say it deletes /var/lib/wicket, got:\n%s", out)
	}
	for _, check := range []string{"test ! -e /var/lib/wicket", "! id wicket", "test ! -e /etc/wicket"} {
		if out, rc := b.sh(cmdTimeout, check); rc != 0 {
			t.Errorf("after WICKET_PURGE_RECORDS=yes dpkg --purge: %q failed: %s", check, out)
		}
	}
	t.Logf("WICKET_PURGE_RECORDS=yes dpkg --purge: store and user deleted, and said so first")
}
