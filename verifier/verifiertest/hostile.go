package verifiertest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/verifier"
)

// The hostile-input gate (verifier/hostile) trusts, besides the fixture's
// two "GX" keys, keys that exist to be misused. All come from fixed seeds.
const (
	// SeedExpiredKey: Ed25519 "GX" key valid from 400 to 30 days before Epoch.
	SeedExpiredKey byte = 20
	// SeedFutureKey: Ed25519 "GX" key valid from 10 to 400 days after Epoch.
	SeedFutureKey byte = 21
	// SeedPrintedOnlyKey: Ed25519 "GX" key that may sign printed vouchers only.
	SeedPrintedOnlyKey byte = 22
	// SeedDynamicOnlyKey: Ed25519 "GX" key that may sign dynamic codes only.
	SeedDynamicOnlyKey byte = 23
	// SeedKidTwinKey: Ed25519 key of issuer "XJ" listed under the kid of
	// EdKey(2), the fixture's "GX" key: two keys share one kid.
	SeedKidTwinKey byte = 24
	// SeedStrangerKey: Ed25519 key in no key set.
	SeedStrangerKey byte = 9
	// SeedStrangerESKey: P-256 key in no key set.
	SeedStrangerESKey byte = 8
	// SeedDCCDE, SeedDCCAT: P-256 keys of the DCC signers DE (all types)
	// and AT (vaccination only, by its extended key usage).
	SeedDCCDE byte = 10
	SeedDCCAT byte = 11
	// seedDCCCA signs the DCC signer certificates (Ed25519, so the
	// certificates and their kids are the same on every run).
	seedDCCCA byte = 30
)

// DeniedIssuer is the issuer the hostile gate's policy refuses.
const DeniedIssuer = "XJ"

// HostilePolicy is the hostile gate's policy over verifier.DefaultPolicy:
// EU DCCs accepted, issuer XJ denied.
const HostilePolicy = `
issuers:
  XJ: {deny: true}
profiles:
  dcc:
    accept: [vaccination, test, recovery]
    vaccination: {complete: true, min_age: 336h, max_age: 8760h}
    test: {max_age: 72h, types: [naat, antigen]}
`

// HostileGate is a Fixture whose verifier trusts the keys above and the
// DCC signers DE and AT (key set version 2), under HostilePolicy, with the
// clock at Epoch.
type HostileGate struct {
	*Fixture
	DE, AT *DCCSigner
}

// NewHostileGate builds the gate of the hostile-input corpus. Every
// run builds the same keys, key set, policy and clock.
func NewHostileGate(tb testing.TB) *HostileGate {
	tb.Helper()
	f := New(tb)
	g := &HostileGate{
		Fixture: f,
		DE:      NewFixedDCCSigner(tb, ESKey(SeedDCCDE), "DE"),
		AT:      NewFixedDCCSigner(tb, ESKey(SeedDCCAT), "AT", OIDDCCVaccination),
	}
	day := 24 * time.Hour
	all := []decoder.Kind{decoder.KindDynamic, decoder.KindPrinted, decoder.KindWatch}
	ed := func(seed byte, kid []byte, issuer string, from, to time.Duration, kinds ...decoder.Kind) verifier.IssuerKey {
		pub, err := verifier.NewPublicKey(EdKey(seed).Public(), kid)
		if err != nil {
			tb.Fatal(err)
		}
		return verifier.IssuerKey{PublicKey: pub, Issuer: issuer, NotBefore: Epoch.Add(from), NotAfter: Epoch.Add(to), Kinds: kinds}
	}
	keys := []verifier.IssuerKey{
		f.IssuerKey(f.EdPub),
		f.IssuerKey(f.ESPub),
		ed(SeedExpiredKey, nil, Issuer, -400*day, -30*day, all...),
		ed(SeedFutureKey, nil, Issuer, 10*day, 400*day, all...),
		ed(SeedPrintedOnlyKey, nil, Issuer, -180*day, 180*day, decoder.KindPrinted),
		ed(SeedDynamicOnlyKey, nil, Issuer, -180*day, 180*day, decoder.KindDynamic),
		ed(SeedKidTwinKey, f.EdPub.Kid, DeniedIssuer, -180*day, 180*day, all...),
	}
	for _, s := range []*DCCSigner{g.DE, g.AT} {
		k, err := verifier.DCCSignerKey(s.Cert, nil, "")
		if err != nil {
			tb.Fatal(err)
		}
		keys = append(keys, k)
	}
	ks, err := f.Roots().ParseKeySet(f.SignKeySet(tb, 2, keys...))
	if err != nil {
		tb.Fatal(err)
	}
	if err := f.Verifier.InstallKeySet(ks); err != nil {
		tb.Fatal(err)
	}
	p, err := ParsePolicy([]byte(HostilePolicy))
	if err != nil {
		tb.Fatal(err)
	}
	f.SetPolicy(tb, *p)
	return g
}

// NewFixedDCCSigner is NewDCCSigner with a certificate that is the same on
// every run: it is issued by a fixed Ed25519 CA rather than self-signed
// with a randomized ECDSA signature, so its kid is fixed too. Gates read
// the key, country, validity and EKU of a signer certificate, not its
// issuer.
func NewFixedDCCSigner(tb testing.TB, key *ecdsa.PrivateKey, country string, eku ...asn1.ObjectIdentifier) *DCCSigner {
	tb.Helper()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{Country: []string{country}, CommonName: "CSCA " + country},
		NotBefore:    Epoch.Add(-3 * 365 * 24 * time.Hour),
		NotAfter:     Epoch.Add(3 * 365 * 24 * time.Hour),
	}
	tmpl := &x509.Certificate{
		SerialNumber:       big.NewInt(2),
		Subject:            pkix.Name{Country: []string{country}, CommonName: "DSC " + country},
		NotBefore:          Epoch.Add(-365 * 24 * time.Hour),
		NotAfter:           Epoch.Add(365 * 24 * time.Hour),
		KeyUsage:           x509.KeyUsageDigitalSignature,
		UnknownExtKeyUsage: eku,
		SubjectKeyId:       []byte(country),
		AuthorityKeyId:     []byte("CSCA"),
	}
	der, err := x509.CreateCertificate(nil, tmpl, ca, key.Public(), EdKey(seedDCCCA))
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return &DCCSigner{Key: key, Cert: der, Kid: sum[:8]}
}

// SignES256 signs the Sig_structure tbs with a deterministic (RFC 6979)
// ECDSA signature in the COSE form r || s.
func SignES256(key *ecdsa.PrivateKey, tbs []byte) []byte {
	sum := sha256.Sum256(tbs)
	der, err := key.Sign(nil, sum[:], crypto.SHA256)
	if err != nil {
		panic(err)
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		panic(err)
	}
	sig := make([]byte, 64)
	rs.R.FillBytes(sig[:32])
	rs.S.FillBytes(sig[32:])
	return sig
}

// SignEdDSA signs the Sig_structure tbs with the Ed25519 key of a seed.
func SignEdDSA(seed byte, tbs []byte) []byte {
	return ed25519.Sign(EdKey(seed), tbs)
}

// KidOf returns the format's kid of a public key.
func KidOf(pub crypto.PublicKey) []byte {
	kid, err := decoder.KeyID(pub)
	if err != nil {
		panic(err)
	}
	return kid
}

// ProgramTB returns a testing.TB for code that runs outside a test (a
// generator's main) and calls fixture helpers: a failure panics with its
// message. Only Helper, Fatal, Fatalf, Error, Errorf, Log, Logf, Name and
// Cleanup may be called on it.
func ProgramTB() testing.TB { return programTB{} }

type programTB struct{ testing.TB }

func (programTB) Helper()                         {}
func (programTB) Name() string                    { return "program" }
func (programTB) Cleanup(func())                  {}
func (programTB) Log(args ...any)                 {}
func (programTB) Logf(format string, args ...any) {}
func (programTB) Fatal(args ...any)               { panic(fmt.Sprint(args...)) }
func (programTB) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
func (programTB) Error(args ...any) { panic(fmt.Sprint(args...)) }
func (programTB) Errorf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
