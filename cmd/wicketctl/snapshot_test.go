package main

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wicket/sync/mqtttest"
	"wicket/sync/store"
	"wicket/sync/store/storetest"
	"wicket/sync/trust"
	"wicket/sync/wire"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// writeList writes a CSV of n statements (every op) and returns its path.
func writeList(t *testing.T, dir string, n int, now time.Time) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# op,key,time,expires[,colour]\n")
	for i := range n {
		key := fmt.Sprintf("%032x", i)
		switch i % 4 {
		case 0, 1:
			fmt.Fprintf(&b, "revoke,%s,%d,%d\n", key, now.Unix(), now.Add(48*time.Hour).Unix())
		case 2:
			fmt.Fprintf(&b, "colour,%s,%s,%s,red\n", key, now.UTC().Format(time.RFC3339), now.Add(24*time.Hour).UTC().Format(time.RFC3339))
		case 3:
			fmt.Fprintf(&b, "void-before,%s,%d,%d\n", key, now.Unix(), now.Add(24*time.Hour).Unix())
		}
	}
	p := filepath.Join(dir, "list.csv")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSnapshotCommand(t *testing.T) {
	dir := t.TempDir()
	stem := filepath.Join(dir, "root")
	if rc, _, errs := run(t, "keygen", "-out", stem); rc != exitOK {
		t.Fatal(errs)
	}
	now := time.Now().Truncate(time.Second)
	list := writeList(t, dir, 1000, now)
	out := filepath.Join(dir, "snap")
	rc, stdout, errs := run(t, "snapshot", "-root", stem+".key", "-state", filepath.Join(dir, "state.json"), "-version", "5", "-in", list, "-out", out, "-part-entries", "300", "-progress", "on")
	if rc != exitOK {
		t.Fatalf("snapshot: %d %s %s", rc, stdout, errs)
	}
	if !strings.Contains(errs, "signing") || !strings.Contains(errs, "100%") {
		t.Errorf("no progress lines on stderr: %q", errs)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.cose"))
	if len(files) != 4 {
		t.Fatalf("%d documents; want 4 parts of at most 300", len(files))
	}
	rk := readRoots(t, stem+".pub")
	var parts []*verifier.Batch
	for _, f := range files {
		b, err := readPart(rk, f)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, b)
	}
	whole, err := verifier.JoinParts(parts)
	if err != nil {
		t.Fatal(err)
	}
	if len(whole.Entries) != 1000 || whole.Entries[999].Op != verifier.OpVoidBefore || whole.Entries[2].Colour != 3 {
		t.Fatalf("joined %d entries; last %+v", len(whole.Entries), whole.Entries[999])
	}
	// A bad line is named, and nothing is written.
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("revoke,00112233445566778899aabbccddeeff,1,2\nrevoke,zz,1,2\n"), 0o600)
	rc, _, errs = run(t, "snapshot", "-root", stem+".key", "-state", filepath.Join(dir, "state.json"), "-version", "6", "-in", bad, "-out", filepath.Join(dir, "bad"))
	if rc == exitOK || !strings.Contains(errs, "bad.csv:2") {
		t.Fatalf("bad list: %d %q", rc, errs)
	}
	// A truncated key is refused unless the list says ids vary in length.
	os.WriteFile(bad, []byte("revoke,0011223344556677,1,2\n"), 0o600)
	rc, _, errs = run(t, "snapshot", "-root", stem+".key", "-state", filepath.Join(dir, "state.json"), "-version", "6", "-in", bad, "-out", filepath.Join(dir, "bad"))
	if rc == exitOK || !strings.Contains(errs, "bad.csv:1: key \"0011223344556677\": 8 bytes, want 16") {
		t.Fatalf("truncated key: %d %q", rc, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad")); !os.IsNotExist(err) {
		t.Errorf("output written for a bad list: %v", err)
	}
}

func readRoots(t *testing.T, pub string) verifier.RootKeys {
	t.Helper()
	k, err := verifier.ReadPublicKeyFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	return verifier.RootKeys{k}
}

// TestPublishSnapshotResume: a publish of a multi-part snapshot cut by
// the network stops with an error; the same command resumes after the
// last part the broker acknowledged, and a gate fed the retained parts
// installs the whole snapshot. A smaller snapshot later clears the part
// topics it no longer uses.
func TestPublishSnapshotResume(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	proxy := mqtttest.StartProxy(t, b.Addr())
	dir := t.TempDir()
	stem := filepath.Join(dir, "root")
	if rc, _, errs := run(t, "keygen", "-out", stem); rc != exitOK {
		t.Fatal(errs)
	}
	now := time.Now().Truncate(time.Second)
	out := filepath.Join(dir, "snap")
	if rc, o, errs := run(t, "snapshot", "-root", stem+".key", "-state", filepath.Join(dir, "state.json"), "-version", "5", "-in", writeList(t, dir, 3000, now), "-out", out, "-part-entries", "250"); rc != exitOK {
		t.Fatalf("snapshot: %s %s", o, errs)
	}
	topics := wire.Topics{Fleet: "f1"}
	args := func(broker string) []string {
		return []string{"publish", "-broker", broker, "-fleet", "f1", "-roots", stem + ".pub", "-snapshot", out, "-client-id", "pub-test"}
	}
	// About five parts' worth of bytes, then the connection is cut.
	info, _ := os.Stat(filepath.Join(out, "snapshot-5-part-00000-of-00012.cose"))
	cut := proxy.CutAfter(5*info.Size() + info.Size()/2)
	rc, o, errs := run(t, args(proxy.URL())...)
	if rc == exitOK || !strings.Contains(errs, "run the same command again to resume") {
		t.Fatalf("cut publish: rc %d, %s %s", rc, o, errs)
	}
	select {
	case c := <-cut:
		t.Logf("cut after %d bytes (mid-packet %v, type %d)", c.Forwarded, c.Mid, c.Packet)
	case <-time.After(10 * time.Second):
		t.Fatal("no cut")
	}
	rc, o, errs = run(t, args(proxy.URL())...)
	if rc != exitOK || !strings.Contains(o, "resuming snapshot 5: parts 0 to ") {
		t.Fatalf("resumed publish: rc %d, %s %s", rc, o, errs)
	}
	t.Log(strings.TrimSpace(o))
	if _, err := os.Stat(filepath.Join(out, publishStateName)); !os.IsNotExist(err) {
		t.Errorf("state file left after a complete publish: %v", err)
	}

	got := retainedOn(t, b.URL(), topics.AllSnapshotParts())
	if len(got) != 12 {
		t.Fatalf("%d retained parts; want 12", len(got))
	}
	f := verifiertest.New(t)
	st := storetest.Open(t, store.Options{})
	v, err := verifier.New(f.TClock, st, &f.Policy)
	if err != nil {
		t.Fatal(err)
	}
	a := trust.New(readRoots(t, stem+".pub"), st, v, slog.New(slog.DiscardHandler))
	applied := 0
	for topic, raw := range got {
		res, err := a.Batch(raw, topic)
		if err != nil || res == trust.Refused {
			t.Fatalf("%s: %v %v", topic, res, err)
		}
		if res == trust.Applied {
			applied++
		}
	}
	if applied != 1 || st.Info().Version != 5 {
		t.Fatalf("applied %d, installed %d; want snapshot 5 once", applied, st.Info().Version)
	}
	for _, i := range []int{0, 1, 2996, 2997} {
		k, _ := hex.DecodeString(fmt.Sprintf("%032x", i))
		if ok, _ := st.Revoked(k); !ok {
			t.Errorf("voucher %x not revoked", k)
		}
	}

	// A smaller snapshot clears the part topics it does not use.
	out2 := filepath.Join(dir, "snap2")
	if rc, o, errs := run(t, "snapshot", "-root", stem+".key", "-state", filepath.Join(dir, "state.json"), "-version", "6", "-in", writeList(t, dir, 600, now), "-out", out2, "-part-entries", "250"); rc != exitOK {
		t.Fatalf("snapshot 6: %s %s", o, errs)
	}
	// Its list is shorter: publish lists what it drops and asks first.
	rc, o, errs = run(t, "publish", "-broker", b.URL(), "-fleet", "f1", "-roots", stem+".pub", "-snapshot", out2)
	if rc != exitFail || !strings.Contains(o, "snapshot 6 drops 2400 statement(s)") || !strings.Contains(errs, "run again with -yes") {
		t.Fatalf("publish 6 without -yes: %d %s %s", rc, o, errs)
	}
	rc, o, errs = run(t, "publish", "-broker", b.URL(), "-fleet", "f1", "-roots", stem+".pub", "-snapshot", out2, "-yes")
	if rc != exitOK || !strings.Contains(o, "cleared 9 retained parts of snapshot 5") {
		t.Fatalf("publish 6: %d %s %s", rc, o, errs)
	}
	if got := retainedOn(t, b.URL(), topics.AllSnapshotParts()); len(got) != 3 {
		t.Fatalf("%d retained parts after snapshot 6; want 3", len(got))
	}
}
