package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"wicket/sync/mqtttest"
	"wicket/sync/snapfile"
	"wicket/sync/snapfile/snapfiletest"
	"wicket/sync/wire"
)

// TestPublishFiles: publish-files writes each part under its hash where
// nginx serves it, announces them with a manifest the roots verify, puts
// the fallback copies on the broker, refuses a version the broker's
// manifest already announces, and clears the fallback topics a smaller
// snapshot no longer uses.
func TestPublishFiles(t *testing.T) {
	dir := t.TempDir()
	stem := filepath.Join(dir, "root")
	if rc, _, errs := run(t, "keygen", "-out", stem); rc != exitOK {
		t.Fatal(errs)
	}
	rk := readRoots(t, stem+".pub")
	list := writeList(t, dir, 1000, time.Now().Truncate(time.Second))
	state := filepath.Join(dir, "state.json")
	snap := func(version, per string) string {
		out := filepath.Join(dir, "snap"+version)
		if rc, stdout, errs := run(t, "snapshot", "-root", stem+".key", "-state", state, "-version", version, "-in", list, "-out", out, "-part-entries", per, "-progress", "off"); rc != exitOK {
			t.Fatalf("snapshot %s: %s %s", version, stdout, errs)
		}
		return out
	}
	files := filepath.Join(dir, "www")
	b := mqtttest.StartMosquitto(t)
	common := []string{"-broker", b.URL(), "-fleet", "f1", "-roots", stem + ".pub", "-root", stem + ".key", "-files", files, "-url", "https://snapshots.example/w/", "-no-url-check", "-progress", "off"}

	rc, out, errs := run(t, append([]string{"publish-files", "-snapshot", snap("5", "300")}, common...)...)
	if rc != exitOK {
		t.Fatalf("publish-files: %d\n%s\n%s", rc, out, errs)
	}
	for _, want := range []string{"wrote 4 files", "4 new, 0 already there", "fallback: 4 parts → wicket/f1/snapfile/part/+", "manifest of snapshot 5 (4 parts", "→ wicket/f1/trust/status/manifest"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	raw := retainedOn(t, b.URL(), snapfile.Topic("f1"))[snapfile.Topic("f1")]
	m, err := snapfile.Parse(rk, raw)
	if err != nil {
		t.Fatalf("retained manifest: %v", err)
	}
	if m.Version != 5 || len(m.Parts) != 4 || m.URLs[0] != "https://snapshots.example/w/" {
		t.Fatalf("manifest %+v", m)
	}
	// The directory as written is what a server must serve: each part
	// under its name, matching the manifest.
	ng := snapfiletest.StartNginx(t, files)
	for i, p := range m.Parts {
		resp, err := http.Get(ng.URL() + p.Name())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !p.Matches(body) {
			t.Errorf("part %d served from the written directory does not match the manifest (%d bytes, HTTP %d)", i, len(body), resp.StatusCode)
		}
	}
	if got := retainedOn(t, b.URL(), snapfile.AllFallback("f1")); len(got) != 4 {
		t.Errorf("%d fallback parts retained, want 4", len(got))
	}

	rc, _, errs = run(t, append([]string{"publish-files", "-snapshot", filepath.Join(dir, "snap5")}, common...)...)
	if rc == exitOK || !strings.Contains(errs, "not above version 5") {
		t.Errorf("publishing snapshot 5 again: exit %d %q; want refused: the manifest announces 5", rc, errs)
	}

	// Snapshot 6 in one document: the same statements (nothing dropped,
	// which needs the fallback parts of 5 to tell), fewer fallback topics.
	rc, out, errs = run(t, append([]string{"publish-files", "-snapshot", snap("6", "2000")}, common...)...)
	if rc != exitOK || !strings.Contains(out, "cleared 3 left from a larger snapshot") || !strings.Contains(out, "manifest of snapshot 6 (1 parts") {
		t.Fatalf("publish-files 6: %d\n%s\n%s", rc, out, errs)
	}
	if got := retainedOn(t, b.URL(), snapfile.AllFallback("f1")); len(got) != 1 {
		t.Errorf("%d fallback parts retained after snapshot 6, want 1", len(got))
	}

	// Without a fallback the earlier parts go, and the next publish
	// cannot list what it drops: it says so and goes on.
	rc, out, errs = run(t, append([]string{"publish-files", "-no-fallback", "-snapshot", snap("7", "2000")}, common...)...)
	if rc != exitOK || !strings.Contains(out, "no fallback: gates that reach no URL get no snapshot (cleared 1 earlier fallback parts)") {
		t.Fatalf("publish-files -no-fallback: %d\n%s\n%s", rc, out, errs)
	}
	if got := retainedOn(t, b.URL(), snapfile.AllFallback("f1")); len(got) != 0 {
		t.Errorf("%d fallback parts retained after -no-fallback, want 0", len(got))
	}
	rc, _, errs = run(t, append([]string{"publish-files", "-snapshot", snap("8", "2000")}, common...)...)
	if rc != exitOK || !strings.Contains(errs, "announces snapshot 7, but its fallback parts are not all retained") {
		t.Errorf("publish-files 8 after -no-fallback: %d %q; want published with a note", rc, errs)
	}

	// A snapshot over MQTT after it clears the manifest and its
	// fallback parts.
	rc, out, errs = run(t, "publish", "-broker", b.URL(), "-fleet", "f1", "-roots", stem+".pub", "-snapshot", snap("9", "300"), "-progress", "off")
	if rc != exitOK || !strings.Contains(out, "cleared the retained snapshot manifest and 1 fallback parts, superseded by 9") {
		t.Fatalf("publish -snapshot after publish-files: %d\n%s\n%s", rc, out, errs)
	}
	if got := retainedOn(t, b.URL(), "wicket/f1/#"); got[snapfile.Topic("f1")] != nil || got[snapfile.FallbackTopic("f1", 0)] != nil {
		t.Errorf("manifest or fallback parts still retained after snapshot 9 over MQTT: %v", keys(got))
	}

	rc, _, errs = run(t, "publish-files", "-broker", b.URL(), "-fleet", "f1", "-roots", stem+".pub", "-root", stem+".key", "-snapshot", filepath.Join(dir, "snap6"), "-files", files, "-url", "ftp://x/")
	if rc != exitUsage || !strings.Contains(errs, "want http:// or https://") {
		t.Errorf("-url ftp://: exit %d %q; want a usage error", rc, errs)
	}
}

// TestPublishFilesAsksURLs: before announcing, publish-files asks every
// -url for the files it wrote. A URL that answers 404 (the directory is
// not the one served) or serves other content is named, and nothing goes
// on the broker: no manifest, no fallback part. Served right, the
// snapshot is announced.
func TestPublishFilesAsksURLs(t *testing.T) {
	dir := t.TempDir()
	stem := filepath.Join(dir, "root")
	if rc, _, errs := run(t, "keygen", "-out", stem); rc != exitOK {
		t.Fatal(errs)
	}
	list := writeList(t, dir, 1000, time.Now().Truncate(time.Second))
	snap := filepath.Join(dir, "snap")
	if rc, stdout, errs := run(t, "snapshot", "-root", stem+".key", "-state", filepath.Join(dir, "state.json"), "-version", "3", "-in", list, "-out", snap, "-part-entries", "300", "-progress", "off"); rc != exitOK {
		t.Fatalf("snapshot: %s %s", stdout, errs)
	}
	www := filepath.Join(dir, "www")
	files := filepath.Join(www, "w")
	bad := filepath.Join(www, "bad")
	for _, d := range []string{files, bad} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ng := snapfiletest.StartNginx(t, www)
	b := mqtttest.StartMosquitto(t)
	publish := func(urls ...string) (int, string, string) {
		args := []string{"publish-files", "-broker", b.URL(), "-fleet", "f1", "-roots", stem + ".pub", "-root", stem + ".key", "-snapshot", snap, "-files", files, "-progress", "off"}
		for _, u := range urls {
			args = append(args, "-url", u)
		}
		return run(t, args...)
	}
	nothingAnnounced := func(what string) {
		t.Helper()
		if got := retainedOn(t, b.URL(), "wicket/f1/#"); len(got) != 0 {
			t.Errorf("%s: %v retained; want nothing announced", what, keys(got))
		}
	}

	rc, _, errs := publish(ng.URL()+"w/", ng.URL()+"elsewhere/")
	if rc == exitOK || !strings.Contains(errs, ng.URL()+"elsewhere/: part 0") || !strings.Contains(errs, "404 Not Found") || strings.Contains(errs, ng.URL()+"w/:") {
		t.Errorf("a mirror that is not served: exit %d %q; want refused, naming that URL only", rc, errs)
	}
	nothingAnnounced("a mirror not served")

	// Files of the right names and sizes but other content.
	names, err := os.ReadDir(files)
	if err != nil || len(names) != 4 {
		t.Fatalf("%d files written (%v); want 4", len(names), err)
	}
	for _, f := range names {
		info, _ := f.Info()
		if err := os.WriteFile(filepath.Join(bad, f.Name()), bytes.Repeat([]byte{'x'}, int(info.Size())), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rc, _, errs = publish(ng.URL() + "bad/")
	if rc == exitOK || !strings.Contains(errs, "does not match the part's SHA-256") {
		t.Errorf("a URL serving other content: exit %d %q; want refused", rc, errs)
	}
	nothingAnnounced("a URL serving other content")

	rc, out, errs := publish(ng.URL() + "w/")
	if rc != exitOK || !strings.Contains(out, "every -url serves the 4 files") || !strings.Contains(out, "manifest of snapshot 3") {
		t.Fatalf("served right: %d\n%s\n%s", rc, out, errs)
	}
}

// TestFleetSnapshotFiles: wicketctl fleet flags a gate whose snapshot
// came from the broker or failed, and a refused manifest, from the
// status line snapfile writes.
func TestFleetSnapshotFiles(t *testing.T) {
	tests := []struct {
		st   snapfile.State
		want []string
	}{
		{snapfile.State{Version: 3, Phase: snapfile.Done, Parts: 4, Have: 4}, nil},
		{snapfile.State{Version: 3, Phase: snapfile.Downloading, Parts: 4, Have: 1}, nil},
		{snapfile.State{Version: 3, Phase: snapfile.FromBroker, Parts: 4, Have: 1, Reason: "no URL delivered part 1"}, []string{"snapshot_files"}},
		{snapfile.State{Version: 3, Phase: snapfile.Failed, Parts: 4, Reason: "no URL delivered part 0"}, []string{"snapshot_files"}},
		{snapfile.State{Version: 3, Phase: snapfile.Done, Parts: 4, Have: 4, Refused: 1, LastRefusal: "manifest 2: replayed"}, []string{"refusals"}},
	}
	now := time.Now()
	for _, tt := range tests {
		g := gateStatus{Verified: true, Status: wire.Status{Online: true, At: now, ClockTrusted: true, SnapshotFetch: tt.st.String()}}
		got := g.problems(fleetSummary{}, fleetThresholds{stale: time.Hour, outbox: 1000, unacked: time.Hour}, now)
		if !slices.Equal(got, tt.want) {
			t.Errorf("problems(snapshot_fetch %q) = %v; want %v", tt.st.String(), got, tt.want)
		}
	}
}
