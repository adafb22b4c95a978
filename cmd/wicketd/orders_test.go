package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/cmd/wicketd/config"
	"wicket/decoder"
	"wicket/device/gate"
	"wicket/internal/testkit"
	"wicket/sync/store"
	"wicket/sync/store/storetest"
	"wicket/sync/wire"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// signOrder signs an order issued now, valid for an hour, with key.
func signOrder(t *testing.T, key *decoder.Signer, kind verifier.OrderKind, serial uint64, floor time.Time, targets ...verifier.Target) []byte {
	t.Helper()
	now := time.Now()
	raw, err := verifier.Order{Kind: kind, Serial: serial, IssuedAt: now, Expires: now.Add(time.Hour), Targets: targets, Floor: floor}.Sign(key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// clockReset runs wicketd clock-reset on an order written to a file and
// returns its exit code and output.
func clockReset(t *testing.T, cfgPath string, order []byte) (int, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "reset.cose")
	if err := os.WriteFile(path, order, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	rc := dispatch(context.Background(), []string{"clock-reset", "-config", cfgPath, path}, nil, &out, &errb)
	return rc, out.String() + errb.String()
}

// TestClockResetFromFile: a gate whose saved floor ran a day ahead
// denies every code; a technician's signed reset, applied to the stopped
// gate's store, brings it back, and the gate decides again. Forged,
// other gates' and replayed resets are refused and change nothing, with
// the gate stopped and through the running gate's admin API.
func TestClockResetFromFile(t *testing.T) {
	skipUnlessSelfExec(t)
	dir := t.TempDir()
	cfgPath, f, good, _ := clockGate(t, dir)
	surfaces, _, metricsAddr, _ := writeAdminToken(t, dir)
	appendConfig(t, cfgPath, surfaces)
	ahead := time.Now().Add(25 * time.Hour).Truncate(time.Second)
	st := storetest.Open(t, store.Options{Path: filepath.Join(dir, "wicket.db"), LockTimeout: 5 * time.Second,
		MaxEvents: 1000, MaxOutbox: 1000, Logger: slog.New(slog.DiscardHandler)})
	if err := st.RaiseFloor(ahead); err != nil {
		t.Fatal(err)
	}
	st.Close()
	floorIs := func(when string, trusted bool) {
		t.Helper()
		var out, errb bytes.Buffer
		if rc := dispatch(context.Background(), []string{"status", "-config", cfgPath}, nil, &out, &errb); rc != exitOK {
			t.Fatalf("%s: status exit %d: %s", when, rc, errb.String())
		}
		if got := strings.Contains(out.String(), "NOT TRUSTED"); got == trusted {
			t.Errorf("%s: status says clock NOT TRUSTED %v; want %v:\n%s", when, got, !trusted, out.String())
		}
	}
	floorIs("before any reset", false)

	g1 := verifier.Target{Gate: "CRASH-G1"}
	back := time.Now().Add(-time.Minute)
	for _, c := range []struct {
		name, want string
		order      []byte
	}{
		{"forged", "not signed by a pinned root key", signOrder(t, f.Ed, verifier.OrderClockReset, 1, back, g1)},
		{"for another gate", "not addressed to this gate", signOrder(t, f.Root, verifier.OrderClockReset, 1, back, verifier.Target{Gate: "CRASH-G2"})},
		{"for another venue", "not addressed to this gate", signOrder(t, f.Root, verifier.OrderClockReset, 1, back, verifier.Target{Venue: "ELSEWHERE"})},
	} {
		rc, out := clockReset(t, cfgPath, c.order)
		if rc != exitDenied || !strings.Contains(out, "refused, nothing changed") || !strings.Contains(out, c.want) {
			t.Errorf("%s: clock-reset = %d %q; want %d, refused: %s", c.name, rc, out, exitDenied, c.want)
		}
		floorIs("after a refused reset, "+c.name, false)
	}

	first := signOrder(t, f.Root, verifier.OrderClockReset, 1, back, verifier.Target{Venue: "CRASH-V1"})
	if rc, out := clockReset(t, cfgPath, first); rc != exitOK || !strings.Contains(out, "clock floor reset to") || !strings.Contains(out, "trusted; the gate decides codes again") {
		t.Fatalf("clock-reset = %d %q; want the floor reset and the clock trusted", rc, out)
	}
	floorIs("after the reset", true)
	if rc, out := clockReset(t, cfgPath, first); rc != exitOK || !strings.Contains(out, "applied before; nothing changed") {
		t.Errorf("the same reset again = %d %q; want 0, applied before", rc, out)
	}

	d := startDaemon(t, cfgPath, metricsAddr)
	d.logLine("ready")
	io.WriteString(d.stdin, good+"\n")
	if line := d.nextDisplay(); !strings.Contains(line, "ALLOW") {
		t.Errorf("after the reset: %s; want the good code allowed", line)
	}
	// Beside the running gate the tool goes through the admin API.
	older := signOrder(t, f.Root, verifier.OrderClockReset, 1, back.Add(-time.Second), g1)
	if rc, out := clockReset(t, cfgPath, older); rc != exitDenied || !strings.Contains(out, "replayed") {
		t.Errorf("an older reset through the admin API = %d %q; want refused as replayed", rc, out)
	}
	if rc, out := clockReset(t, cfgPath, signOrder(t, f.Root, verifier.OrderClockReset, 2, back, g1)); rc != exitOK || !strings.Contains(out, "clock floor reset to") {
		t.Errorf("a new reset through the admin API = %d %q; want applied", rc, out)
	}
	if err := d.stop(); err != nil {
		t.Errorf("wicketd after SIGTERM: %v", err)
	}

	path := filepath.Join(dir, "wicket.db")
	if resets := eventDetails(t, path, "clock_reset"); len(resets) != 2 || !strings.HasPrefix(resets[0], "signed order 1: clock floor ") || !strings.HasPrefix(resets[1], "signed order 2: ") {
		t.Errorf("access log clock resets %q; want orders 1 and 2", resets)
	}
	ro, err := store.OpenReadOnly(path, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, serial, _ := ro.TrustDoc(store.TrustClockReset); serial != 2 {
		t.Errorf("stored reset serial %d; want 2", serial)
	}
}

// eventDetails opens the store at path and returns the details of its
// access log's events with the reason.
func eventDetails(t *testing.T, path, reason string) []string {
	t.Helper()
	st := storetest.Open(t, store.Options{Path: path, LockTimeout: 5 * time.Second, MaxEvents: 1000, MaxOutbox: 1000, Logger: slog.New(slog.DiscardHandler)})
	defer st.Close()
	var out []string
	for _, ev := range allEvents(t, st) {
		if ev.Reason == reason {
			out = append(out, ev.Detail)
		}
	}
	return out
}

// startSimDaemon runs the gate of cfgPath in this process on simulated
// hardware, its display narration in lines and its log written to logw
// (discarded if nil); it returns once the simulated gate is open.
func startSimDaemon(t *testing.T, cfgPath string, logw io.Writer) (cfg *config.Config, d *daemon, sim *gate.Sim, lines chan string, stdin io.WriteCloser, stop func()) {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	stdinR, stdinW := io.Pipe()
	narrR, narrW := io.Pipe()
	lines = make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(narrR)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	sims := make(chan *gate.Sim, 1)
	log := slog.New(slog.DiscardHandler)
	if logw != nil {
		log = slog.New(slog.NewTextHandler(logw, nil))
	}
	d = &daemon{cfgPath: cfgPath, cfg: cfg, level: new(slog.LevelVar), log: log, stdin: stdinR, stdout: narrW,
		onSim: func(s *gate.Sim) { sims <- s }}
	d.cfgHash.Store(ptr(fileHash(cfgPath)))
	done, stop := runDaemon(t, d, stdinW, narrW)
	select {
	case sim = <-sims:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the simulated gate never opened")
	}
	return cfg, d, sim, lines, stdinW, stop
}

// TestEmergencyAckOverMQTT runs the daemon on a simulated gate with
// fleet sync on a real Mosquitto: a signed acknowledge from the authority
// does not lock the gate while the alarm input is active (and is used
// up), forged and replayed ones do nothing and are counted, and a new
// signed one locks it once the alarm has cleared.
func TestEmergencyAckOverMQTT(t *testing.T) {
	b, cfgPath, f := syncGate(t, func(string, *verifiertest.Fixture, string) string {
		return "reconnect_min: 100ms, reconnect_max: 1s"
	})
	logs := &testkit.Buffer{}
	cfg, d, sim, lines, stdinW, stop := startSimDaemon(t, cfgPath, logs)
	eventually := func(what string, cond func() bool) {
		t.Helper()
		testkit.Eventually(t, what, 20*time.Second, cond)
	}
	waitLine := func(want string) {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case l := <-lines:
				if strings.Contains(l, want) {
					return
				}
			case <-timeout:
				t.Fatalf("no narration line with %q", want)
			}
		}
	}
	free := func(when string) {
		t.Helper()
		if !d.ts.Unlocked() || d.ts.EmergencyState() == gate.EmergencyNormal {
			t.Fatalf("%s: gate unlocked %v, emergency %v; want it held free", when, d.ts.Unlocked(), d.ts.EmergencyState())
		}
	}
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("test-authority"))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(100)
	// The gate publishes its status once it has connected and subscribed.
	online := make(chan struct{}, 1)
	cl.Subscribe(wire.Topics{Fleet: "test"}.Status("CRASH-G1"), 1, func(_ mqtt.Client, m mqtt.Message) {
		if s, _, _ := wire.OpenStatus(m.Payload()); s.Online {
			select {
			case online <- struct{}{}:
			default:
			}
		}
	}).Wait()
	select {
	case <-online:
	case <-time.After(20 * time.Second):
		t.Fatal("the gate never published an online status")
	}
	topic := wire.Topics{Fleet: "test"}.Order(wire.OrderEmergencyAck, "gate=CRASH-G1")
	publish := func(raw []byte) {
		t.Helper()
		if tok := cl.Publish(topic, 1, false, raw); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	lastAck := func() uint64 {
		_, serial, err := d.st.TrustDoc(store.TrustEmergencyAck)
		if err != nil {
			t.Fatal(err)
		}
		return serial
	}
	g1 := verifier.Target{Gate: "CRASH-G1"}

	sim.Emergency.Set(true)
	waitLine("emergency input active")
	first := signOrder(t, f.Root, verifier.OrderEmergencyAck, 1, time.Time{}, g1)
	publish(first)
	eventually("the acknowledge used up", func() bool { return lastAck() == 1 })
	// The order is stored before the gate's acknowledge path runs: clearing
	// the alarm in between would let this first order lock the gate.
	eventually("the acknowledge refused by the gate", func() bool {
		return strings.Contains(logs.String(), "emergency acknowledge refused")
	})
	free("signed acknowledge while the alarm is on")

	sim.Emergency.Set(false)
	waitLine("emergency input cleared")
	refused := d.trust.Stats().Refused
	publish(signOrder(t, f.Ed, verifier.OrderEmergencyAck, 5, time.Time{}, g1))
	eventually("the forged acknowledge refused", func() bool { return d.trust.Stats().Refused == refused+1 })
	publish(signOrder(t, f.Root, verifier.OrderEmergencyAck, 1, time.Time{}, verifier.Target{Venue: "CRASH-V1"}))
	eventually("the older acknowledge refused", func() bool { return d.trust.Stats().Refused == refused+2 })
	stale := d.trust.Stats().Stale
	publish(first)
	eventually("the replayed acknowledge found stale", func() bool { return d.trust.Stats().Stale == stale+1 })
	free("forged, older and replayed acknowledges after the alarm cleared")
	if last := d.trust.Stats().LastRefusal; !strings.Contains(last, "replayed") {
		t.Errorf("last refusal %q; want it to say replayed", last)
	}

	publish(signOrder(t, f.Root, verifier.OrderEmergencyAck, 2, time.Time{}, g1))
	waitLine("emergency acknowledged: relay OFF (lock)")
	if d.ts.Unlocked() || d.ts.EmergencyState() != gate.EmergencyNormal {
		t.Fatalf("after the signed acknowledge: gate unlocked %v, emergency %v; want locked, normal", d.ts.Unlocked(), d.ts.EmergencyState())
	}
	io.WriteString(stdinW, f.Issue(t, f.Ed, f.Claims(decoder.KindPrinted))+"\n")
	waitLine("relay ON (unlock) for")
	stop()

	if acks := eventDetails(t, cfg.Path(cfg.Store.Path), "emergency_ack"); len(acks) != 1 || acks[0] != "signed order 2 from broker" {
		t.Errorf("access log acknowledgements %q; want one, by signed order 2", acks)
	}
}
