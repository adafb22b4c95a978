package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"wicket/cmd/wicketd/config"
	"wicket/decoder"
	"wicket/internal/testkit"
	"wicket/sync/store"
	"wicket/sync/store/storetest"
)

// TestFullDiskAlerts runs the daemon with its store on a small real file
// system and fills it. A red code is denied (nothing unrecorded opens the
// gate) but counted as an uncommitted alert; /healthz turns not ready
// saying the disk is full; /metrics shows the disk_full alert and the
// store state. Once space is freed the gate is ready again without a scan,
// and the access log records the recovery.
func TestFullDiskAlerts(t *testing.T) {
	disk := storetest.SmallDisk(t, 8<<20)
	cfgPath, f := gateFiles(t, disk.Dir)
	surfaces, _, metricsAddr, _ := writeAdminToken(t, disk.Dir)
	appendConfig(t, cfgPath, surfaces)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	stdinR, stdinW := io.Pipe()
	d := &daemon{cfgPath: cfgPath, cfg: cfg, level: new(slog.LevelVar), log: slog.New(slog.DiscardHandler), stdin: stdinR, stdout: io.Discard}
	d.cfgHash.Store(ptr(fileHash(cfgPath)))
	_, stop := runDaemon(t, d, stdinW, nil)
	base := "http://" + metricsAddr
	waitReady(t, base)

	disk.Fill(t)
	red := f.Claims(decoder.KindDynamic)
	red.Voucher.Colour = decoder.ColourRed
	io.WriteString(stdinW, f.Issue(t, f.Ed, red)+"\n")
	// The file may have free pages left: scan until a commit fails.
	for i := 0; d.st.CommitHealth().Err == nil; i++ {
		if i > 200 {
			t.Fatal("no commit failed on a full disk")
		}
		c := f.Claims(decoder.KindPrinted)
		c.ID = []byte("full-disk-" + itoa(uint64(1000000+i)))
		io.WriteString(stdinW, f.Issue(t, f.Ed, c)+"\n")
	}
	io.WriteString(stdinW, f.Issue(t, f.Ed, red)+"\n")

	body := poll(t, base+"/healthz", func(code int, body string) bool {
		return code == http.StatusServiceUnavailable && strings.Contains(body, "disk full")
	})
	t.Logf("/healthz on a full disk: %s", body)
	poll(t, base+"/metrics", func(_ int, body string) bool {
		for _, want := range []string{
			"wicket_store_disk_full 1", "wicket_store_commit_ok 0",
			`wicket_alerts_total{reason="disk_full"} 1`, `wicket_alerts_uncommitted_total{reason="colour_red"}`,
			`wicket_decisions_total{reason="internal_error",allow="false"}`,
		} {
			if !strings.Contains(body, want) {
				return false
			}
		}
		return true
	})

	disk.Free(t)
	waitReady(t, base)
	poll(t, base+"/metrics", func(_ int, body string) bool {
		return strings.Contains(body, "wicket_store_disk_full 0") && strings.Contains(body, "wicket_store_commit_ok 1")
	})
	stop()

	st := storetest.Open(t, store.Options{Path: cfg.Path(cfg.Store.Path), LockTimeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	var recovered bool
	for _, ev := range allEvents(t, st) {
		if ev.Reason == "store_writable" {
			recovered = true
		}
	}
	if !recovered {
		t.Error("the access log has no store_writable event after space was freed")
	}
}

// runDaemon runs d in the background. stop, also called at cleanup, ends
// it: it cancels the run, closes stdin and then after (if not nil), and
// fails the test if run failed or did not stop. done gives run's result
// to a test that waits for it first.
func runDaemon(t *testing.T, d *daemon, stdin io.Closer, after io.Closer) (done <-chan error, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- d.run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		stdin.Close()
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("run did not stop")
		}
		if after != nil {
			after.Close()
		}
	}
	t.Cleanup(stop)
	return ch, stop
}

// poll GETs url until ok accepts the status and body, and returns the
// body; it fails the test after 20 s.
func poll(t *testing.T, url string, ok func(code int, body string) bool) string {
	t.Helper()
	var last string
	met := false
	defer func() {
		if !met {
			t.Logf("GET %s: last body:\n%s", url, last)
		}
	}()
	testkit.Eventually(t, "GET "+url+" to give what was expected", 20*time.Second, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = string(b)
		return ok(resp.StatusCode, last)
	})
	met = true
	return last
}

// TestOutboxFullAndForcedPassageAlerts: when the outbox reaches its bound
// the upkeep raises outbox_full once, not on every round (logged as an
// ALERT and recorded in the access log); a forced passage is recorded as
// an alert event.
func TestOutboxFullAndForcedPassageAlerts(t *testing.T) {
	var logs testkit.Buffer
	st := storetest.Open(t, store.Options{LockTimeout: time.Second, MaxOutbox: 3, Logger: slog.New(slog.DiscardHandler)})
	cfg := &config.Config{}
	cfg.Store.MaxOutbox = 3
	d := &daemon{cfg: cfg, st: st, id: "G1", venue: "V1", log: slog.New(slog.NewJSONHandler(&logs, nil))}
	alerts := func() []string {
		var out []string
		for _, ev := range allEvents(t, st) {
			if ev.Type == store.TypeAlert {
				out = append(out, ev.Reason)
			}
		}
		return out
	}
	d.checkStore()
	if a := alerts(); len(a) != 0 {
		t.Fatalf("alerts with an empty outbox: %v", a)
	}
	for range 3 {
		d.system("start", "")
	}
	d.checkStore()
	d.checkStore()
	if a := alerts(); !slices.Equal(a, []string{"outbox_full"}) {
		t.Errorf("alerts after the outbox filled = %v; want one outbox_full", a)
	}
	if !strings.Contains(logs.String(), `"msg":"ALERT","reason":"outbox_full"`) {
		t.Errorf("no outbox_full ALERT in the log:\n%s", logs.String())
	}
	d.forcedPassage()
	if a := alerts(); !slices.Equal(a, []string{"outbox_full", "forced_passage"}) {
		t.Errorf("alerts after a forced passage = %v", a)
	}
}
