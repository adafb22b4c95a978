package mqttsync

import (
	"testing"
	"time"

	"wicket/decoder"
	"wicket/internal/testkit"
	"wicket/sync/mqtttest"
	"wicket/sync/wire"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// TestOrdersOverMQTT runs two gates on a real Mosquitto: a retained clock
// reset for one gate brings its floor back and leaves the other alone,
// and is not acted on again after a restart; a signed emergency
// acknowledge for the venue reaches both gates' acknowledge path once; a
// forged one reaches neither and is counted.
func TestOrdersOverMQTT(t *testing.T) {
	b := mqtttest.StartMosquitto(t)
	f := verifiertest.New(t)
	g1 := startGate(t, f, b.URL(), "g1", time.Minute)
	g2 := startGate(t, f, b.URL(), "g2", time.Minute)
	topics := wire.Topics{Fleet: "test"}
	ahead := verifiertest.Epoch.Add(24 * time.Hour)
	runAhead := func() {
		if err := g1.st.RaiseFloor(ahead); err != nil {
			t.Fatal(err)
		}
		g1.v.Clock().Raise(ahead)
	}
	runAhead()
	order := func(signer *decoder.Signer, kind verifier.OrderKind, serial uint64, floor time.Time, target verifier.Target) []byte {
		t.Helper()
		raw, err := verifier.Order{Kind: kind, Serial: serial, IssuedAt: verifiertest.Epoch, Expires: verifiertest.Epoch.Add(time.Hour),
			Targets: []verifier.Target{target}, Floor: floor}.Sign(signer)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	back := verifiertest.Epoch.Add(-time.Minute)
	publishRetained(t, b.URL(), map[string][]byte{
		topics.Order(wire.OrderClockReset, "gate=g1"): order(f.Root, verifier.OrderClockReset, 1, back, verifier.Target{Gate: "g1"}),
	})
	testkit.Eventually(t, "g1's floor reset", 10*time.Second, func() bool { return g1.v.Clock().Floor().Equal(back) && g1.st.Floor().Equal(back) })

	ackTopic := topics.Order(wire.OrderEmergencyAck, "venue=V")
	cl := anonymous(t, b.URL(), "test-authority")
	publishAll(t, cl, ackTopic, false, order(f.Ed, verifier.OrderEmergencyAck, 1, time.Time{}, verifier.Target{Venue: "V"}))
	testkit.Eventually(t, "the forged acknowledge refused on both gates", 10*time.Second, func() bool {
		return g1.tr.Stats().Refused == 1 && g2.tr.Stats().Refused == 1
	})
	// g2 has handled the retained reset too (its worker takes messages
	// in order): not its order, so not acted on and not a refusal.
	if !g2.st.Floor().IsZero() || g2.v.Clock().Floor().Unix() != 0 {
		t.Errorf("g2: floor %v after g1's reset; want untouched", g2.st.Floor())
	}
	ack := order(f.Root, verifier.OrderEmergencyAck, 1, time.Time{}, verifier.Target{Venue: "V"})
	publishAll(t, cl, ackTopic, false, ack)
	for _, g := range []*gate{g1, g2} {
		select {
		case by := <-g.acks:
			if by != "signed order 1 from broker" {
				t.Errorf("%s acknowledged by %q; want signed order 1 from broker", g.id, by)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the signed acknowledge never reached the acknowledge path", g.id)
		}
	}
	stale := g1.tr.Stats().Stale
	publishAll(t, cl, ackTopic, false, ack)
	testkit.Eventually(t, "the replayed acknowledge found stale", 10*time.Second, func() bool { return g1.tr.Stats().Stale == stale+1 })
	select {
	case by := <-g1.acks:
		t.Errorf("a replayed acknowledge reached the acknowledge path (%q)", by)
	default:
	}

	// After a restart the broker sends the retained reset again: acted on
	// once already, it does nothing, even with the floor ahead again.
	g1.halt()
	runAhead()
	stale = g1.tr.Stats().Stale
	g1.start(t)
	testkit.Eventually(t, "the retained reset delivered again", 10*time.Second, func() bool { return g1.tr.Stats().Stale > stale })
	if got := g1.st.Floor(); !got.Equal(ahead) {
		t.Errorf("after the retained reset came again the floor is %v; want %v (unchanged)", got.UTC(), ahead.UTC())
	}
}
