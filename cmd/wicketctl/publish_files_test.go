package main

import (
	"io"
	"net/http"
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
	common := []string{"-broker", b.URL(), "-fleet", "f1", "-roots", stem + ".pub", "-root", stem + ".key", "-files", files, "-url", "https://snapshots.example/w/", "-progress", "off"}

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
