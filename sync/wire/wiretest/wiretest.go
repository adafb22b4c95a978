// Package wiretest gives tests the identities of a fleet: fixed Ed25519
// keys for gates and a collector, a roster enrolling them, signed acks
// and records, so a test's stand-in collector or gate speaks the signed
// wire contract as the real ones do.
package wiretest

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/sync/wire"
	"wicket/verifier"
)

// CollectorID is the roster id of the test collector.
const CollectorID = "test-collector"

// Keys of every test gate and of the test collector.
var (
	GateKey      = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{40}, ed25519.SeedSize))
	CollectorKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{41}, ed25519.SeedSize))
)

// GatePub and CollectorPub are their public keys.
var (
	GatePub      = GateKey.Public().(ed25519.PublicKey)
	CollectorPub = CollectorKey.Public().(ed25519.PublicKey)
)

// Roster is a roster of the given version, signed by root, enrolling the
// test collector and the gates (all with GateKey).
func Roster(tb testing.TB, root *decoder.Signer, version uint64, gates ...string) []byte {
	tb.Helper()
	members := []verifier.Member{{ID: CollectorID, Role: verifier.RoleCollector, Key: CollectorPub}}
	for _, g := range gates {
		members = append(members, verifier.Member{ID: g, Role: verifier.RoleGate, Key: GatePub})
	}
	doc, err := verifier.RosterSpec{Version: version, IssuedAt: time.Unix(1_700_000_000, 0), Members: members}.Sign(root)
	if err != nil {
		tb.Fatal(err)
	}
	return doc
}

// Ack is an ack of the test collector. It never fails: it may be called
// from a message handler.
func Ack(fleet, gate string, from, through uint64) []byte {
	b, err := wire.Sign(wire.KindAck, fleet, CollectorID, CollectorKey, wire.Ack{Gate: gate, From: from, Through: through})
	if err != nil {
		panic(err) // a fixed key and two integers always sign
	}
	return b
}

// Records signs r as gate, with GateKey.
func Records(fleet, gate string, r *wire.Records) []byte {
	b, err := wire.Sign(wire.KindRecords, fleet, gate, GateKey, r)
	if err != nil {
		panic(err)
	}
	return b
}

// OpenRecords reads a records message a test gate signed.
func OpenRecords(fleet string, payload []byte) (*wire.Records, error) {
	sm, err := wire.Open(payload)
	if err != nil {
		return nil, err
	}
	if err := sm.Verify(wire.KindRecords, fleet, GatePub); err != nil {
		return nil, err
	}
	return wire.DecodeRecords(sm.Body)
}

// OpenAck reads an ack the test collector signed.
func OpenAck(fleet string, payload []byte) (wire.Ack, error) {
	sm, err := wire.Open(payload)
	if err != nil {
		return wire.Ack{}, err
	}
	if err := sm.Verify(wire.KindAck, fleet, CollectorPub); err != nil {
		return wire.Ack{}, err
	}
	return wire.DecodeAck(sm.Body)
}

// IdentityFile writes GateKey as an identity key file (mode 0600) in dir
// and returns its path, for a wicketd config's sync.identity_key.
func IdentityFile(tb testing.TB, dir string) string {
	tb.Helper()
	path := filepath.Join(dir, "identity.key")
	pemKey, err := wire.MarshalIdentity(GateKey)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, pemKey, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}
