// Package verifiertest builds real trust data for tests: a root key, issuer
// keys (Ed25519 and ES256), a signed key set, a revocation store, a
// settable clock and a verifier wired to them. Keys come from fixed seeds,
// so every run sees the same keys and (for Ed25519) the same codes.
package verifiertest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/verifier"
)

// Clock is a settable verifier.Clock.
type Clock struct{ t atomic.Int64 }

var _ verifier.Clock = (*Clock)(nil)

// Now implements verifier.Clock.
func (c *Clock) Now() time.Time { return time.Unix(0, c.t.Load()) }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.t.Store(t.UnixNano()) }

// Epoch is the fixture's "now": 2026-06-01T08:00:00Z.
var Epoch = time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)

// Fixture is a complete set of trust data around one verifier.
type Fixture struct {
	// Root signs key sets and batches; RootPub is what a gate pins.
	Root    *decoder.Signer
	RootPub verifier.PublicKey
	// Ed and ES are issuer "GX" signing keys; EdPub and ESPub their keys.
	Ed, ES       *decoder.Signer
	EdPub, ESPub verifier.PublicKey
	// KeySetDoc is the signed key set (version 1); KeySet its parsed form.
	KeySetDoc []byte
	KeySet    *verifier.KeySet
	// Status holds revocations and overrides (an empty snapshot, version 1).
	Status *verifier.MemStatus
	// Clock is the wall clock, set to Epoch; TClock the trusted clock.
	Clock  *Clock
	TClock *verifier.TrustedClock
	// Policy is verifier.DefaultPolicy unless changed before Verifier use.
	Policy   verifier.Policy
	Verifier *verifier.Verifier
}

// Issuer is the issuer name of the fixture's keys.
const Issuer = "GX"

// EdKey returns the Ed25519 key with the given seed byte.
func EdKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
}

// ESKey returns a P-256 key derived deterministically from a seed byte.
func ESKey(seed byte) *ecdsa.PrivateKey {
	d := new(big.Int).SetBytes(bytes.Repeat([]byte{seed}, 32))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d.FillBytes(make([]byte, 32)))
	if err != nil {
		panic(err)
	}
	return k
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// New builds a fixture: root key, two issuer keys valid for a year around
// Epoch for all kinds, key set version 1 issued an hour before Epoch, an
// empty status snapshot, and a verifier with the default policy.
func New(tb testing.TB) *Fixture {
	tb.Helper()
	f := &Fixture{Clock: &Clock{}, Policy: verifier.DefaultPolicy()}
	f.Clock.Set(Epoch)
	f.Root = must(decoder.NewSigner(EdKey(1), nil))
	f.RootPub = must(verifier.NewPublicKey(EdKey(1).Public(), nil))
	f.Ed = must(decoder.NewSigner(EdKey(2), nil))
	f.EdPub = must(verifier.NewPublicKey(EdKey(2).Public(), nil))
	f.ES = must(decoder.NewSigner(ESKey(3), nil))
	f.ESPub = must(verifier.NewPublicKey(ESKey(3).Public(), nil))
	f.KeySetDoc = f.SignKeySet(tb, 1, f.IssuerKey(f.EdPub), f.IssuerKey(f.ESPub))
	f.KeySet = must(f.Roots().ParseKeySet(f.KeySetDoc))
	f.Status = verifier.NewMemStatus()
	f.ApplyBatch(tb, verifier.Batch{Version: 1, IssuedAt: Epoch.Add(-time.Hour)})
	f.TClock = verifier.NewTrustedClock(f.Clock, Epoch.Add(-24*time.Hour))
	f.Verifier = must(verifier.New(f.TClock, f.Status, &f.Policy))
	if err := f.Verifier.SetDCCPseudonymKey(DCCPseudonymKey); err != nil {
		tb.Fatal(err)
	}
	if err := f.Verifier.InstallKeySet(f.KeySet); err != nil {
		tb.Fatal(err)
	}
	return f
}

// Roots returns the pinned root keys.
func (f *Fixture) Roots() verifier.RootKeys { return verifier.RootKeys{f.RootPub} }

// IssuerKey describes pub as an issuer "GX" key valid from 180 days before
// to 180 days after Epoch, for every voucher kind.
func (f *Fixture) IssuerKey(pub verifier.PublicKey) verifier.IssuerKey {
	return verifier.IssuerKey{
		PublicKey: pub, Issuer: Issuer,
		NotBefore: Epoch.Add(-180 * 24 * time.Hour), NotAfter: Epoch.Add(180 * 24 * time.Hour),
		Kinds: []decoder.Kind{decoder.KindDynamic, decoder.KindPrinted, decoder.KindWatch},
	}
}

// SignKeySet signs a key set with the root key, issued an hour before Epoch.
func (f *Fixture) SignKeySet(tb testing.TB, version uint64, keys ...verifier.IssuerKey) []byte {
	tb.Helper()
	doc, err := verifier.KeySetSpec{Version: version, IssuedAt: Epoch.Add(-time.Hour), Keys: keys}.Sign(f.Root)
	if err != nil {
		tb.Fatal(err)
	}
	return doc
}

// ApplyBatch signs b with the root key, parses it back and applies it.
func (f *Fixture) ApplyBatch(tb testing.TB, b verifier.Batch) {
	tb.Helper()
	doc, err := verifier.SignBatch(f.Root, b)
	if err != nil {
		tb.Fatal(err)
	}
	parsed, err := f.Roots().ParseBatch(doc)
	if err != nil {
		tb.Fatal(err)
	}
	if err := f.Status.Apply(parsed, f.Clock.Now()); err != nil {
		tb.Fatal(err)
	}
}

// Claims returns valid claims of a kind issued a minute before the clock:
// green, adult, a negative NAAT test 12 hours old, two doses.
func (f *Fixture) Claims(kind decoder.Kind) *decoder.Claims {
	now := f.Clock.Now()
	iat := now.Add(-time.Minute)
	exp := iat.Add(5 * time.Minute)
	if kind == decoder.KindPrinted {
		exp = iat.Add(30 * 24 * time.Hour)
	}
	return &decoder.Claims{
		Issuer: Issuer, IssuedAt: iat.Unix(), Expiry: exp.Unix(),
		ID: []byte("voucher-" + kind.String() + "-0001"),
		Voucher: decoder.Voucher{
			Version: decoder.VoucherVersion, Subject: []byte("subject-pseudonym-01"),
			Colour: decoder.ColourGreen, Kind: kind, Class: decoder.ClassAdult,
			Name:        "张*明",
			Test:        &decoder.Test{Kind: decoder.TestNAAT, Result: decoder.ResultNegative, Sampled: now.Add(-12 * time.Hour).Unix()},
			Vaccination: &decoder.Vaccination{Doses: 2, Last: now.Add(-90 * 24 * time.Hour).Unix()},
		},
	}
}

// Issue signs claims with s and returns the code's text.
func (f *Fixture) Issue(tb testing.TB, s *decoder.Signer, c *decoder.Claims) string {
	tb.Helper()
	text, err := decoder.Issue(s, c)
	if err != nil {
		tb.Fatal(err)
	}
	return text
}

// SetPolicy validates p and installs it in the verifier.
func (f *Fixture) SetPolicy(tb testing.TB, p verifier.Policy) {
	tb.Helper()
	f.Policy = p
	if err := f.Verifier.SetPolicy(&p); err != nil {
		tb.Fatal(err)
	}
}
