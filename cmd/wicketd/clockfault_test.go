package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"wicket/cmd/wicketd/config"
	"wicket/cmd/wicketd/display"
	"wicket/cmd/wicketd/loop"
	"wicket/decoder"
	"wicket/device"
	"wicket/device/gate"
	"wicket/device/gate/gatetest"
	"wicket/internal/testkit"
	"wicket/sync/store"
	"wicket/sync/store/storetest"
	"wicket/sync/trust"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// clockGate writes the gate of gateFiles plus a revocation snapshot that
// revokes one voucher until that voucher expires. It returns the config
// path, the fixture (its clock at the moment the trust data was signed),
// a good code and the revoked code.
func clockGate(t *testing.T, dir string) (string, *verifiertest.Fixture, string, string) {
	t.Helper()
	cfgPath, f := gateFiles(t, dir)
	now := f.Clock.Now()
	c := f.Claims(decoder.KindPrinted)
	c.ID = []byte("clockfault-good")
	good := f.Issue(t, f.Ed, c)
	r := f.Claims(decoder.KindPrinted)
	r.ID = []byte("clockfault-revoked")
	revoked := f.Issue(t, f.Ed, r)
	doc, err := verifier.SignBatch(f.Root, verifier.Batch{Version: 1, IssuedAt: now.Add(-time.Minute), Entries: []verifier.Entry{
		{Op: verifier.OpRevoke, Key: r.ID, Time: now.Add(-time.Minute).Unix(), Expires: r.Expiry},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "revocations.cose"), doc, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(cfg), "key_set: keyset.cose}", "key_set: keyset.cose, batches: [revocations.cose]}", 1)
	if err := os.WriteFile(cfgPath, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, f, good, revoked
}

// clockRig is wicketd's run wiring, in process, with the wall clock
// replaced: store, trust files, verifier on a TrustedClock over wall, a
// turnstile on a gatetest relay, the decision loop and the display
// server. It calls the daemon's own housekeeping and displayState for one
// round each time tick is called.
type clockRig struct {
	t      *testing.T
	d      *daemon
	wall   *verifiertest.Clock
	tclock *verifier.TrustedClock
	stop   func()
}

func newClockRig(t *testing.T, cfgPath string, wall *verifiertest.Clock) *clockRig {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	level := new(slog.LevelVar)
	d := &daemon{cfgPath: cfgPath, cfg: cfg, level: level, log: slog.New(slog.DiscardHandler), stdin: strings.NewReader(""), stdout: io.Discard}
	d.id, d.venue = cfg.Gate.ID, cfg.Gate.Venue
	d.cfgHash.Store(ptr(fileHash(cfgPath)))
	if d.st, err = openStore(cfg, d.log, nil, nil); err != nil {
		t.Fatal(err)
	}
	if d.roots, err = loadRoots(cfg); err != nil {
		t.Fatal(err)
	}
	// The first floor, as run takes it: the build time or the saved floor.
	floor := buildFloor()
	if f := d.st.Floor(); f.After(floor) {
		floor = f
	}
	tclock := verifier.NewTrustedClock(wall, floor)
	if d.v, err = verifier.New(tclock, d.st, &cfg.Policy); err != nil {
		t.Fatal(err)
	}
	d.trust = trust.New(d.roots, d.st, d.v, d.log)
	if err := d.installTrust(d.cfg); err != nil {
		t.Fatal(err)
	}
	d.ts, err = gate.NewTurnstile(gate.TurnstileConfig{RelayPin: "RELAY", Mode: gate.RelayPulse, PulseWidth: 5 * time.Millisecond, PassageTimeout: time.Second},
		gate.TurnstilePins{Relay: gatetest.NewOut("RELAY", nil)}, gate.Options{Logger: d.log})
	if err != nil {
		t.Fatal(err)
	}
	d.disp = display.New(display.Config{Addr: "127.0.0.1:0", Gate: d.id}, d.log)
	d.loop = loop.New(loop.Config{Gate: d.id, Venue: d.venue}, d.v, d.st, d.ts, loop.Options{Logger: d.log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.loop.Run(ctx, make(chan device.Scan)) // keeps the heartbeat going
	}()
	var once sync.Once
	r := &clockRig{t: t, d: d, wall: wall, tclock: tclock, stop: func() {
		once.Do(func() {
			cancel()
			<-done
			d.ts.Close()
			d.st.Close()
		})
	}}
	t.Cleanup(r.stop)
	return r
}

// tick runs one round of housekeeping (the floor is saved here) and one of
// displayState (/healthz and the gauges are set here).
func (r *clockRig) tick() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.d.housekeeping(ctx, r.tclock); err != nil {
		r.t.Fatal(err)
	}
	if err := r.d.displayState(ctx); err != nil {
		r.t.Fatal(err)
	}
}

func (r *clockRig) setOnUntrusted(fb verifier.Fallback) {
	r.t.Helper()
	p := r.d.v.Policy()
	p.OnUntrustedClock = fb
	if err := r.d.v.SetPolicy(&p); err != nil {
		r.t.Fatal(err)
	}
}

func (r *clockRig) scan(code string) loop.Result {
	return r.d.loop.Handle(context.Background(), device.Scan{Payload: []byte(code), Source: "test", At: time.Now()})
}

func (r *clockRig) get(path string) (int, string) {
	rec := httptest.NewRecorder()
	r.d.disp.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "http://localhost"+path, nil))
	return rec.Code, rec.Body.String()
}

// gauge returns the value of a metric line without labels, or "".
func gauge(body, name string) string {
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return v
		}
	}
	return ""
}

// lastDecision is the newest decision event in the store.
func (r *clockRig) lastDecisionWarnings() []string {
	r.t.Helper()
	c, err := r.d.st.Counters()
	if err != nil {
		r.t.Fatal(err)
	}
	after := uint64(0)
	if c.LastSeq > 20 {
		after = c.LastSeq - 20
	}
	evs, err := r.d.st.Events(after, 100)
	if err != nil {
		r.t.Fatal(err)
	}
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == "decision" {
			return evs[i].Warnings
		}
	}
	r.t.Fatal("no decision event in the store")
	return nil
}

// TestClockFaults drives one gate through a wall clock that boots at
// 1970, is set right, jumps back a day, forward a year and back, and then
// forward within what the design allows and back. At every step, under
// both on_untrusted_clock policies, it checks the decision, /healthz,
// wicket_clock_trusted, and that neither the in-memory nor the saved floor
// ever moves backwards or past max_key_set_age beyond the newest signed
// data.
func TestClockFaults(t *testing.T) {
	dir := t.TempDir()
	cfgPath, f, good, revoked := clockGate(t, dir)
	t0 := f.Clock.Now()
	wall := &verifiertest.Clock{}
	wall.Set(time.Unix(0, 0))
	r := newClockRig(t, cfgPath, wall)

	newest := t0.Add(-time.Minute) // key set and revocation snapshot
	bound := newest.Add(verifier.DefaultPolicy().MaxKeySetAge)
	if got := r.tclock.Floor(); got.Unix() != newest.Unix() {
		t.Fatalf("floor at start = %v; want the trust data's issue time %v", got.UTC(), newest.UTC())
	}
	var memFloor, savedFloor time.Time
	floors := func(step string, want time.Time) {
		t.Helper()
		mem, saved := r.tclock.Floor(), r.d.st.Floor()
		if mem.Before(memFloor) || saved.Before(savedFloor) {
			t.Errorf("%s: floor moved backwards: in memory %v → %v, saved %v → %v", step, memFloor.UTC(), mem.UTC(), savedFloor.UTC(), saved.UTC())
		}
		if saved.After(bound) || mem.After(bound) {
			t.Errorf("%s: floor %v (saved %v) beyond the newest signed data plus max_key_set_age (%v)", step, mem.UTC(), saved.UTC(), bound.UTC())
		}
		if mem.Unix() != want.Unix() {
			t.Errorf("%s: floor = %v; want %v", step, mem.UTC(), want.UTC())
		}
		if saved.Unix() > mem.Unix() {
			t.Errorf("%s: saved floor %v above the floor in force %v", step, saved.UTC(), mem.UTC())
		}
		memFloor, savedFloor = mem, saved
	}

	// check sets the wall clock, runs a housekeeping round, and checks the
	// state under both policies. want is the floor expected after the
	// round; stale means the trust data is too old at that clock (so the
	// gate denies whatever the clock policy).
	check := func(step string, at time.Time, trusted bool, want time.Time, stale bool) {
		t.Helper()
		wall.Set(at)
		for _, fb := range []verifier.Fallback{verifier.FallbackDeny, verifier.FallbackWarn} {
			name := step + "/" + string(fb)
			r.setOnUntrusted(fb)
			r.tick()
			floors(name, want)
			_, metrics := r.get("/metrics")
			wantGauge := map[bool]string{true: "1", false: "0"}[trusted]
			if g := gauge(metrics, "wicket_clock_trusted"); g != wantGauge {
				t.Errorf("%s: wicket_clock_trusted %q; want %s", name, g, wantGauge)
			}
			code, health := r.get("/healthz")
			st := r.d.disp.State()
			if st.ClockUntrusted == trusted {
				t.Errorf("%s: display state clock_untrusted = %v; want %v", name, st.ClockUntrusted, !trusted)
			}
			res := r.scan(good)
			d := res.Decision
			switch {
			case stale:
				if code != http.StatusServiceUnavailable || !strings.Contains(health, "trust data stale") {
					t.Errorf("%s: /healthz %d %s; want 503 naming stale trust data", name, code, health)
				}
				if d.Allow || d.Reason != verifier.ReasonTrustDataStale {
					t.Errorf("%s: good code %v %s; want trust_data_stale", name, d.Allow, d.Reason)
				}
			case !trusted && fb == verifier.FallbackDeny:
				if code != http.StatusServiceUnavailable || !strings.Contains(health, "clock below its trusted floor") {
					t.Errorf("%s: /healthz %d %s; want 503 naming the clock", name, code, health)
				}
				if d.Allow || d.Reason != verifier.ReasonClockUntrusted {
					t.Errorf("%s: good code %v %s; want denied clock_untrusted", name, d.Allow, d.Reason)
				}
				if res.Seq == 0 {
					t.Errorf("%s: the clock_untrusted denial was not logged", name)
				}
			default:
				if code != http.StatusOK {
					t.Errorf("%s: /healthz %d %s; want 200", name, code, health)
				}
				if !d.Allow || d.Reason != verifier.ReasonOK {
					t.Errorf("%s: good code %v %s (%s); want allowed", name, d.Allow, d.Reason, d.Detail)
				}
				warned := slices.Contains(d.Warnings, verifier.ReasonClockUntrusted)
				logged := slices.Contains(r.lastDecisionWarnings(), string(verifier.ReasonClockUntrusted))
				if warned != !trusted || logged != !trusted {
					t.Errorf("%s: clock_untrusted warning on the decision %v, in the access log %v; want %v", name, warned, logged, !trusted)
				}
				if !trusted && !d.At.Equal(r.tclock.Floor()) {
					t.Errorf("%s: decided at %v; want the floor %v", name, d.At.UTC(), r.tclock.Floor().UTC())
				}
				if rd := r.scan(revoked).Decision; rd.Allow || rd.Reason != verifier.ReasonRevoked {
					t.Errorf("%s: revoked code %v %s; want revoked", name, rd.Allow, rd.Reason)
				}
			}
			if r.d.ts.Unlocked() {
				t.Errorf("%s: relay left unlocked", name)
			}
		}
	}

	const day = 24 * time.Hour
	check("boot at 1970", time.Unix(0, 0), false, newest, false)
	check("clock set", t0, true, t0, false)
	check("back a day", t0.Add(-day), false, t0, false)
	check("forward a year", t0.Add(365*day), true, t0, true)
	check("back from a year ahead", t0.Add(time.Minute), true, t0.Add(time.Minute), false)
	// Within max_key_set_age of the newest signed data the clock is
	// believed and saved; going back below it is then untrusted.
	ahead := t0.Add(29 * day)
	check("forward 29 days", ahead, true, ahead, false)
	check("back from 29 days ahead", t0.Add(2*time.Minute), false, ahead, false)
	r.stop()

	// wicketd status reads the saved floor from the store.
	var out, errb bytes.Buffer
	if rc := dispatch(context.Background(), []string{"status", "-config", cfgPath}, nil, &out, &errb); rc != exitOK {
		t.Fatalf("status: exit %d: %s", rc, errb.String())
	}
	wantFloor := "floor " + ahead.UTC().Format(time.RFC3339) + ": NOT TRUSTED"
	if !strings.Contains(out.String(), wantFloor) {
		t.Errorf("status output lacks %q:\n%s", wantFloor, out.String())
	}

	// A restart keeps the saved floor: the in-process wiring, then the
	// real daemon.
	wall.Set(t0.Add(3 * time.Minute))
	r2 := newClockRig(t, cfgPath, wall)
	if got := r2.tclock.Floor(); got.Unix() != ahead.Unix() {
		t.Errorf("floor after a restart = %v; want the saved %v", got.UTC(), ahead.UTC())
	}
	r2.stop()
}

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// daemonRun is a real wicketd run child with its page on.
type daemonRun struct {
	t       *testing.T
	base    string
	stdin   io.WriteCloser
	display chan string
	logs    chan map[string]any
	wait    func() error
	stop    func() error
}

func startDaemon(t *testing.T, cfgPath, addr string) *daemonRun {
	t.Helper()
	cmd := selfExec("run", "-config", cfgPath)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &daemonRun{t: t, base: "http://" + addr, stdin: stdin, display: make(chan string, 256), logs: make(chan map[string]any, 256)}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "display:") {
				r.display <- sc.Text()
			}
		}
	}()
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				select {
				case r.logs <- m:
				default:
				}
			}
		}
	}()
	var once sync.Once
	var werr error
	r.wait = func() error {
		once.Do(func() { readers.Wait(); werr = cmd.Wait() })
		return werr
	}
	t.Cleanup(func() { cmd.Process.Kill(); stdin.Close(); r.wait() })
	r.stop = func() error {
		cmd.Process.Signal(syscall.SIGTERM)
		return r.wait()
	}
	return r
}

// logLine waits for a log line with the message.
func (r *daemonRun) logLine(msg string) map[string]any {
	r.t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m := <-r.logs:
			if m["msg"] == msg {
				return m
			}
		case <-timeout:
			r.t.Fatalf("no %q log line from wicketd", msg)
		}
	}
}

func (r *daemonRun) nextDisplay() string {
	r.t.Helper()
	select {
	case l := <-r.display:
		return l
	case <-time.After(20 * time.Second):
		r.t.Fatal("no decision on the display")
	}
	return ""
}

// get waits until the page answers with a state other than "starting".
func (r *daemonRun) get(path string) (int, string) {
	r.t.Helper()
	var code int
	var body string
	testkit.Eventually(r.t, "GET "+path+" to answer past starting", 20*time.Second, func() bool {
		resp, err := http.Get(r.base + path)
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		code, body = resp.StatusCode, string(b)
		return !strings.Contains(body, `"starting"`)
	})
	return code, body
}

// TestClockFloorAcrossRestart runs the real daemon on a store whose saved
// floor is a day ahead of the wall clock (the clock went back a day while
// the gate was off): the floor comes back from the store, the daemon
// reports the untrusted clock on /healthz and /metrics, decides by
// policy, and neither lowers the saved floor nor raises it to the clock.
func TestClockFloorAcrossRestart(t *testing.T) {
	skipUnlessSelfExec(t)
	dir := t.TempDir()
	cfgPath, f, good, _ := clockGate(t, dir)
	addr := freeAddr(t)
	cfg, _ := os.ReadFile(cfgPath)
	cfg = append(cfg, []byte("http: {metrics: {addr: \""+addr+"\"}}\n")...)
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	saved := f.Clock.Now().Add(25 * time.Hour).Truncate(time.Second)
	st := storetest.Open(t, store.Options{Path: filepath.Join(dir, "wicket.db"), LockTimeout: 5 * time.Second,
		MaxEvents: 1000, MaxOutbox: 1000, Logger: slog.New(slog.DiscardHandler)})
	if err := st.RaiseFloor(saved); err != nil {
		t.Fatal(err)
	}
	st.Close()
	status := func(when string) {
		t.Helper()
		var out, errb bytes.Buffer
		if rc := dispatch(context.Background(), []string{"status", "-config", cfgPath}, nil, &out, &errb); rc != exitOK {
			t.Fatalf("%s: status exit %d: %s", when, rc, errb.String())
		}
		want := "floor " + saved.UTC().Format(time.RFC3339) + ": NOT TRUSTED"
		if !strings.Contains(out.String(), want) {
			t.Errorf("%s: status lacks %q:\n%s", when, want, out.String())
		}
	}
	status("before start")

	for _, policy := range []string{"deny", "warn"} {
		if policy == "warn" {
			b, _ := os.ReadFile(cfgPath)
			b = []byte(strings.Replace(string(b), "policy: {max_status_age: 0s", "policy: {max_status_age: 0s, on_untrusted_clock: warn", 1))
			if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		d := startDaemon(t, cfgPath, addr)
		ready := d.logLine("ready")
		if fl, err := time.Parse(time.RFC3339Nano, ready["clock_floor"].(string)); err != nil || !fl.Equal(saved) {
			t.Errorf("%s: ready with clock_floor %v; want the saved floor %v", policy, ready["clock_floor"], saved.UTC())
		}
		code, health := d.get("/healthz")
		_, metrics := d.get("/metrics")
		if g := gauge(metrics, "wicket_clock_trusted"); g != "0" {
			t.Errorf("%s: wicket_clock_trusted %q; want 0", policy, g)
		}
		io.WriteString(d.stdin, good+"\n")
		line := d.nextDisplay()
		dec := d.logLine("decision")
		warnings, _ := dec["warnings"].([]any)
		switch policy {
		case "deny":
			if code != http.StatusServiceUnavailable || !strings.Contains(health, "clock below its trusted floor") {
				t.Errorf("deny: /healthz %d %s; want 503 naming the clock", code, health)
			}
			if !strings.Contains(line, "DENY") || !strings.Contains(line, "[clock_untrusted") {
				t.Errorf("deny: %s; want denied clock_untrusted", line)
			}
		case "warn":
			if code != http.StatusOK || !strings.Contains(health, `"ready":true`) {
				t.Errorf("warn: /healthz %d %s; want 200", code, health)
			}
			if !strings.Contains(line, "ALLOW") || len(warnings) != 1 || warnings[0] != "clock_untrusted" {
				t.Errorf("warn: %s, logged warnings %v; want allowed with the clock_untrusted warning", line, dec["warnings"])
			}
		}
		if err := d.stop(); err != nil {
			t.Errorf("%s: wicketd after SIGTERM: %v", policy, err)
		}
		status("after a run with policy " + policy)
	}
}
