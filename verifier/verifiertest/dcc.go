package verifiertest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"wicket/decoder"
)

// DCC EKU OIDs of the specification: test, vaccination, recovery.
var (
	OIDDCCTest        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 1847, 2021, 1, 1}
	OIDDCCVaccination = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 1847, 2021, 1, 2}
	OIDDCCRecovery    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 1847, 2021, 1, 3}
)

// DCCSigner is a document signer: its key, its self-signed certificate
// (DER) and the kid the specification derives from it.
type DCCSigner struct {
	Key  crypto.Signer
	Cert []byte
	Kid  []byte
}

// NewDCCSigner makes a signer certificate for country, valid a year either
// side of Epoch, restricted to the given EKU OIDs (none: all types).
func NewDCCSigner(tb testing.TB, key crypto.Signer, country string, eku ...asn1.ObjectIdentifier) *DCCSigner {
	tb.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:       big.NewInt(1),
		Subject:            pkix.Name{Country: []string{country}, CommonName: "DSC " + country},
		NotBefore:          Epoch.Add(-365 * 24 * time.Hour),
		NotAfter:           Epoch.Add(365 * 24 * time.Hour),
		KeyUsage:           x509.KeyUsageDigitalSignature,
		UnknownExtKeyUsage: eku,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return &DCCSigner{Key: key, Cert: der, Kid: sum[:8]}
}

// DCCPseudonymKey is the fixture's DCC pseudonym key (32 fixed bytes).
var DCCPseudonymKey = []byte("wicket-test-dcc-pseudonym-key-32")

// RSAKey returns a fixed 2048-bit RSA key (generated once per process).
var rsaKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

// RSAKey returns a 2048-bit RSA key for PS256 signers.
func RSAKey() *rsa.PrivateKey { return rsaKey }

// DCCHeaders are the COSE headers of a certificate; nil fields are left
// out. Unprotected is a CBOR map.
type DCCHeaders struct {
	ProtectedKid   []byte
	UnprotectedKid []byte
	// UnprotectedAlg moves alg to the unprotected header.
	UnprotectedAlg bool
	// CWTTag wraps the COSE_Sign1 in a CWT tag 61.
	CWTTag bool
}

// DCCVaccination, DCCTest and DCCRecovery build hcert entries.
func DCCVaccination(dose, doses int, date string) map[string]any {
	return map[string]any{"v": []any{map[string]any{
		"tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
		"dn": dose, "sd": doses, "dt": date, "co": "DE", "is": "Robert Koch-Institut",
		"ci": "URN:UVCI:01:DE:WICKET" + date + "#V",
	}}}
}

func DCCTest(testType, result string, sampled time.Time) map[string]any {
	return map[string]any{"t": []any{map[string]any{
		"tg": "840539006", "tt": testType, "sc": sampled.UTC().Format(time.RFC3339), "tr": result,
		"tc": "Testzentrum", "co": "DE", "is": "Robert Koch-Institut", "ci": "URN:UVCI:01:DE:WICKETT#T",
	}}}
}

func DCCRecovery(from, until string) map[string]any {
	return map[string]any{"r": []any{map[string]any{
		"tg": "840539006", "fr": from, "co": "DE", "is": "Robert Koch-Institut", "df": from, "du": until,
		"ci": "URN:UVCI:01:DE:WICKETR#R",
	}}}
}

// DCCWith returns an entry (one kind, its first element only) with field
// k set to v, or removed if v is nil.
func DCCWith(entry map[string]any, k string, v any) map[string]any {
	for kind, list := range entry {
		m := map[string]any{}
		for kk, vv := range list.([]any)[0].(map[string]any) {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return map[string]any{kind: []any{m}}
	}
	return nil
}

// DCCPayload is the CWT of a certificate issued by country at iat,
// expiring at exp (numbers, so tests can pass floats), with entry.
func DCCPayload(tb testing.TB, country string, iat, exp any, entry map[string]any) []byte {
	tb.Helper()
	cert := map[string]any{
		"ver": "1.3.0",
		"nam": map[string]any{"fn": "Mustermann", "fnt": "MUSTERMANN", "gn": "Erika", "gnt": "ERIKA"},
		"dob": "1964-08-12",
	}
	for k, v := range entry {
		cert[k] = v
	}
	b, err := cbor.Marshal(map[int]any{1: country, 4: exp, 6: iat, -260: map[int]any{1: cert}})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// IssueDCC signs payload as s and returns the HC1 text, with the kid in
// the protected header unless h says otherwise.
func IssueDCC(tb testing.TB, s *DCCSigner, payload []byte, h *DCCHeaders) string {
	tb.Helper()
	alg := decoder.AlgES256
	if _, ok := s.Key.(*rsa.PrivateKey); ok {
		alg = decoder.AlgPS256
	}
	prot := map[int]any{1: int64(alg), 4: s.Kid}
	unprot := map[int]any{}
	if h != nil {
		delete(prot, 4)
		if h.ProtectedKid != nil {
			prot[4] = h.ProtectedKid
		}
		if h.UnprotectedKid != nil {
			unprot[4] = h.UnprotectedKid
		}
		if h.UnprotectedAlg {
			delete(prot, 1)
			unprot[1] = int64(alg)
		}
	}
	pb, err := cbor.Marshal(prot)
	if err != nil {
		tb.Fatal(err)
	}
	ub, err := cbor.Marshal(unprot)
	if err != nil {
		tb.Fatal(err)
	}
	tbs := decoder.AppendToBeSigned(nil, pb, payload)
	sum := sha256.Sum256(tbs)
	var sig []byte
	switch k := s.Key.(type) {
	case *rsa.PrivateKey:
		sig, err = rsa.SignPSS(rand.Reader, k, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case *ecdsa.PrivateKey:
		var r, ss *big.Int
		r, ss, err = ecdsa.Sign(rand.Reader, k, sum[:])
		if err == nil {
			sig = make([]byte, 64)
			r.FillBytes(sig[:32])
			ss.FillBytes(sig[32:])
		}
	}
	if err != nil {
		tb.Fatal(err)
	}
	cose := decoder.AssembleSign1(pb, ub, payload, sig)
	if h != nil && h.CWTTag {
		cose = append([]byte{0xd8, 61}, cose...)
	}
	return decoder.Wrap("HC1:", cose)
}
