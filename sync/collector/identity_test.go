package collector

import (
	"sync"
	"testing"

	"wicket/decoder"
	"wicket/sync/wire/wiretest"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// testRoot signs the test rosters.
var testRoot = func() *decoder.Signer {
	s, err := decoder.NewSigner(verifiertest.EdKey(1), nil)
	if err != nil {
		panic(err)
	}
	return s
}()

func testRoots(t testing.TB) verifier.RootKeys {
	pk, err := verifier.NewPublicKey(verifiertest.EdKey(1).Public(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return verifier.RootKeys{pk}
}

// withIdentity fills the identity fields of a test collector's config:
// the test collector of package wiretest.
func withIdentity(t testing.TB, cfg Config) Config {
	if cfg.ID == "" {
		cfg.ID = wiretest.CollectorID
	}
	if cfg.Key == nil {
		cfg.Key = wiretest.CollectorKey
	}
	if cfg.Roots == nil {
		cfg.Roots = testRoots(t)
	}
	return cfg
}

// rosters are the gates enrolled so far, by broker URL and fleet.
var rosters = struct {
	sync.Mutex
	m map[string][]string
}{m: map[string][]string{}}

// enrol publishes, retained, a new roster that adds gate, unless gate is
// enrolled already on this broker and fleet. The broker delivers it to a
// collector before any records published after it.
func (g *fakeGate) enrol(gate string) {
	g.t.Helper()
	key := g.broker + " " + g.topics.Fleet
	rosters.Lock()
	for _, e := range rosters.m[key] {
		if e == gate {
			rosters.Unlock()
			return
		}
	}
	gates := append(rosters.m[key], gate)
	rosters.m[key] = gates
	doc := wiretest.Roster(g.t, testRoot, uint64(len(gates)), gates...)
	rosters.Unlock()
	tok := g.client.Publish(g.topics.Roster(), 1, true, doc)
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		g.t.Fatalf("publish roster: %v", tok.Error())
	}
}
