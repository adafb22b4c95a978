package loop

import (
	"bytes"
	"context"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/internal/testkit"
	"wicket/sync/mqttconn"
	"wicket/sync/mqtttest"
	"wicket/sync/station"
	"wicket/sync/station/stationtest"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// stationGate is a gate of the test fleet: a rig whose loop shares
// anti-passback through a station.Station on the broker.
type stationGate struct {
	*rig
	stn *station.Station
}

// newStationGate builds gate g's rig (the fleet's record key) and runs
// its Station on url until the test ends; pol is the policy of every gate.
func newStationGate(t *testing.T, g stationtest.Gate, roster *verifier.Roster, pol verifier.Policy, url string) stationGate {
	t.Helper()
	r := newRigKeyed(t, t.TempDir(), time.Millisecond, 0, bytes.Repeat([]byte{7}, 32))
	r.f.SetPolicy(t, pol)
	s, err := station.New(station.Config{Conn: mqttconn.Conn{Broker: url, ClientID: "t-" + g.ID}, Fleet: "metro", Gate: g.ID,
		Key: g.Key, Roster: func() *verifier.Roster { return roster }, Now: r.f.Clock.Now,
		Window:       func() time.Duration { return LongestPassback(r.f.Verifier.Policy()) },
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	r.loop = New(Config{Gate: g.ID, Venue: "metro-" + g.Station}, r.f.Verifier, r.st, r.ts, Options{Station: s})
	testkit.Eventually(t, g.ID+" shared", 10*time.Second, func() bool { return s.State().Shared })
	return stationGate{rig: r, stn: s}
}

// TestStationPassback: with real Mosquitto and three gates, two of
// station S1 and one of S2, each with its own store, a printed voucher
// admitted at A is denied anti_passback at B (the same station) within
// the printed window and passes at C (another station); after the
// window it passes at B. A dynamic code follows its own, shorter window.
func TestStationPassback(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	ga, gb, gc := stationtest.NewGate("S1-G1", "S1", 60), stationtest.NewGate("S1-G2", "S1", 61), stationtest.NewGate("S2-G1", "S2", 62)
	roster := stationtest.Roster(t, ga, gb, gc)
	pol := verifier.DefaultPolicy()
	pol.AntiPassback = time.Minute
	pol.Kinds.Printed.AntiPassback = 10 * time.Minute
	a, bg, c := newStationGate(t, ga, roster, pol, b.URL()), newStationGate(t, gb, roster, pol, b.URL()), newStationGate(t, gc, roster, pol, b.URL())
	ctx := context.Background()
	issue := func(kind decoder.Kind, id string) string {
		cl := a.f.Claims(kind)
		cl.ID = []byte(id)
		return a.f.Issue(t, a.f.Ed, cl)
	}
	printed, dynamic := issue(decoder.KindPrinted, "photocopied"), issue(decoder.KindDynamic, "screen-code")
	hash := func(code string) string {
		d := a.f.Verifier.Verify([]byte(code))
		return a.st.HashID(d.Voucher.ID)
	}
	for _, code := range []string{printed, dynamic} {
		if res := a.loop.Handle(ctx, a.scan(code)); !res.Decision.Allow {
			t.Fatalf("first scan at A: %s; want allowed", res.Decision.Reason)
		}
		testkit.Eventually(t, "A's grant at B", 5*time.Second, func() bool { _, ok := bg.stn.LastAllowed(hash(code)); return ok })
	}
	res := bg.loop.Handle(ctx, bg.scan(printed))
	if res.Decision.Allow || res.Decision.Reason != verifier.ReasonAntiPassback || res.Decision.Detail != stationPassbackDetail || res.Seq == 0 {
		t.Errorf("printed voucher at B right after A: %v %s %q seq %d; want a recorded anti_passback denial from the station",
			res.Decision.Allow, res.Decision.Reason, res.Decision.Detail, res.Seq)
	}
	if res := c.loop.Handle(ctx, c.scan(printed)); !res.Decision.Allow {
		t.Errorf("printed voucher at C (station S2): %s; want allowed", res.Decision.Reason)
	}

	for _, g := range []stationGate{a, bg, c} {
		g.f.Clock.Set(verifiertest.Epoch.Add(2 * time.Minute))
	}
	if res := bg.loop.Handle(ctx, bg.scan(dynamic)); !res.Decision.Allow {
		t.Errorf("dynamic code at B 2m after A (its window 1m): %s; want allowed", res.Decision.Reason)
	}
	if res := bg.loop.Handle(ctx, bg.scan(printed)); res.Decision.Reason != verifier.ReasonAntiPassback {
		t.Errorf("printed voucher at B 2m after A (its window 10m): %s; want anti_passback", res.Decision.Reason)
	}
	for _, g := range []stationGate{a, bg, c} {
		g.f.Clock.Set(verifiertest.Epoch.Add(10*time.Minute + time.Second))
	}
	if res := bg.loop.Handle(ctx, bg.scan(printed)); !res.Decision.Allow {
		t.Errorf("printed voucher at B after its window: %s; want allowed", res.Decision.Reason)
	}
	if st := bg.stn.State(); st.Accepted < 2 || len(st.Refused) != 0 {
		t.Errorf("B's station state: accepted %d, refused %v; want A's grants accepted, nothing refused", st.Accepted, st.Refused)
	}
}
