// Package stationtest gives tests the gates of a station: fixed identity
// keys and a root-signed roster that enrols them at their stations.
package stationtest

import (
	"crypto/ed25519"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// Gate is a test gate: its roster id, its station and its identity key.
type Gate struct {
	ID, Station string
	Key         ed25519.PrivateKey
}

// NewGate returns a gate with the identity key of the seed byte.
func NewGate(id, station string, seed byte) Gate {
	return Gate{ID: id, Station: station, Key: verifiertest.EdKey(seed)}
}

// Roster enrols gates, signed by verifiertest's root key (the one its
// Fixture pins), and returns it verified.
func Roster(tb testing.TB, gates ...Gate) *verifier.Roster {
	tb.Helper()
	root, err := decoder.NewSigner(verifiertest.EdKey(1), nil)
	if err != nil {
		tb.Fatal(err)
	}
	members := make([]verifier.Member, len(gates))
	for i, g := range gates {
		members[i] = verifier.Member{ID: g.ID, Venue: "metro", Station: g.Station, Role: verifier.RoleGate,
			Key: g.Key.Public().(ed25519.PublicKey)}
	}
	doc, err := verifier.RosterSpec{Version: 1, IssuedAt: verifiertest.Epoch.Add(-time.Hour), Members: members}.Sign(root)
	if err != nil {
		tb.Fatal(err)
	}
	pub, err := verifier.NewPublicKey(verifiertest.EdKey(1).Public(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := verifier.RootKeys{pub}.ParseRoster(doc)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}
