package verifier_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json")

// vector is one test vector of docs/voucher-format.md.
type vector struct {
	Name      string          `json:"name"`
	At        time.Time       `json:"verify_at"`
	Claims    string          `json:"claims_cbor_hex,omitempty"`
	Protected string          `json:"protected_hex,omitempty"`
	ToBeSig   string          `json:"sig_structure_hex,omitempty"`
	COSE      string          `json:"cose_hex"`
	Text      string          `json:"text"`
	Reason    verifier.Reason `json:"reason"`
}

type vectorFile struct {
	RootSeed     string   `json:"root_ed25519_seed_hex"`
	RootPublic   string   `json:"root_public_hex"`
	IssuerSeed   string   `json:"issuer_ed25519_seed_hex"`
	IssuerPublic string   `json:"issuer_public_hex"`
	IssuerKid    string   `json:"issuer_kid_hex"`
	KeySet       string   `json:"key_set_hex"`
	Vectors      []vector `json:"vectors"`
}

func vectorClaims() *decoder.Claims {
	iat := verifiertest.Epoch.Add(-time.Hour)
	return &decoder.Claims{
		Issuer: "GX", IssuedAt: iat.Unix(), Expiry: iat.Add(30 * 24 * time.Hour).Unix(),
		ID: []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10},
		Voucher: decoder.Voucher{
			Version: 1, Subject: bytes.Repeat([]byte{0x5a}, 16),
			Colour: decoder.ColourGreen, Kind: decoder.KindPrinted, Class: decoder.ClassChild, Name: "张*明",
			Test:        &decoder.Test{Kind: decoder.TestNAAT, Result: decoder.ResultNegative, Sampled: iat.Add(-20 * time.Hour).Unix()},
			Vaccination: &decoder.Vaccination{Doses: 2, Last: iat.Add(-100 * 24 * time.Hour).Unix()},
		},
	}
}

func buildVectors(t *testing.T) vectorFile {
	f := verifiertest.New(t)
	vf := vectorFile{
		RootSeed: strings.Repeat("01", 32), RootPublic: hex.EncodeToString(f.RootPub.Raw()),
		IssuerSeed: strings.Repeat("02", 32), IssuerPublic: hex.EncodeToString(f.EdPub.Raw()),
		IssuerKid: hex.EncodeToString(f.Ed.Kid()), KeySet: hex.EncodeToString(f.KeySetDoc),
	}
	mk := func(name string, protected, unprotected []byte, c *decoder.Claims, payload []byte, reason verifier.Reason) {
		if payload == nil {
			var err error
			if payload, err = decoder.CanonicalMarshal(c); err != nil {
				t.Fatal(err)
			}
		}
		tbs := decoder.AppendToBeSigned(nil, protected, payload)
		cose, err := f.Ed.EncodeSign1Headers(protected, unprotected, payload)
		if err != nil {
			t.Fatal(err)
		}
		vf.Vectors = append(vf.Vectors, vector{
			Name: name, At: verifiertest.Epoch, Claims: hex.EncodeToString(payload),
			Protected: hex.EncodeToString(protected), ToBeSig: hex.EncodeToString(tbs),
			COSE: hex.EncodeToString(cose), Text: decoder.Wrap(decoder.Prefix, cose), Reason: reason,
		})
	}
	prot := decoder.ProtectedHeader(decoder.AlgEdDSA, f.Ed.Kid())
	mk("valid printed child voucher", prot, []byte{0xa0}, vectorClaims(), nil, verifier.ReasonOK)
	c := vectorClaims()
	c.Voucher.Kind = decoder.KindDynamic
	c.Voucher.Class = decoder.ClassAdult
	c.Voucher.Name, c.Voucher.Test, c.Voucher.Vaccination = "", nil, nil
	c.IssuedAt = verifiertest.Epoch.Add(-time.Minute).Unix()
	c.Expiry = c.IssuedAt + 300
	mk("valid minimal dynamic code", prot, []byte{0xa0}, c, nil, verifier.ReasonOK)
	c = vectorClaims()
	c.Voucher.Colour = decoder.ColourRed
	mk("red voucher", prot, []byte{0xa0}, c, nil, verifier.ReasonColourRed)
	c = vectorClaims()
	c.Expiry = verifiertest.Epoch.Add(-time.Hour + time.Minute).Unix()
	mk("expired", prot, []byte{0xa0}, c, nil, verifier.ReasonExpired)
	kidOnly, _ := decoder.CanonicalMarshal(map[int]any{4: f.Ed.Kid()})
	algUnprot, _ := decoder.CanonicalMarshal(map[int]any{1: int(decoder.AlgEdDSA)})
	mk("alg only in unprotected header", kidOnly, algUnprot, vectorClaims(), nil, verifier.ReasonAlgNotProtected)
	payload, _ := decoder.CanonicalMarshal(vectorClaims())
	dup := append([]byte{payload[0] + 1}, payload[1:]...)
	dup = append(dup, 0x01, 0x62, 'G', 'D')
	mk("duplicate claim key", prot, []byte{0xa0}, nil, dup, verifier.ReasonBadCBOR)
	c = vectorClaims()
	c.Issuer = "GD"
	mk("issuer differs from key's issuer", prot, []byte{0xa0}, c, nil, verifier.ReasonIssuerMismatch)
	// A valid code with one signature bit flipped.
	good := vf.Vectors[0]
	cose, _ := hex.DecodeString(good.COSE)
	cose[len(cose)-1] ^= 1
	vf.Vectors = append(vf.Vectors, vector{Name: "signature bit flipped", At: verifiertest.Epoch, COSE: hex.EncodeToString(cose),
		Text: decoder.Wrap(decoder.Prefix, cose), Reason: verifier.ReasonBadSignature})
	// The start of validity is the earlier of iat and nbf; iat may not lie
	// in the future beyond the skew whatever nbf says.
	c = vectorClaims()
	c.IssuedAt = verifiertest.Epoch.Add(170 * 24 * time.Hour).Unix()
	c.Expiry = c.IssuedAt + 30*24*3600
	c.NotBefore = verifiertest.Epoch.Add(-time.Hour).Unix()
	mk("printed voucher issued 170 days ahead, nbf an hour ago", prot, []byte{0xa0}, c, nil, verifier.ReasonNotYetValid)
	c = vectorClaims()
	c.NotBefore = verifiertest.Epoch.Add(-170 * 24 * time.Hour).Unix()
	mk("printed voucher valid since 170 days by its nbf", prot, []byte{0xa0}, c, nil, verifier.ReasonVoucherTooOld)
	c = vectorClaims()
	c.Voucher.Kind = decoder.KindDynamic
	c.IssuedAt = verifiertest.Epoch.Add(-time.Minute).Unix()
	c.Expiry = c.IssuedAt + 300
	c.NotBefore = verifiertest.Epoch.Add(-60 * 24 * time.Hour).Unix()
	mk("dynamic code valid 60 days from its nbf", prot, []byte{0xa0}, c, nil, verifier.ReasonValidityTooLong)
	return vf
}

// TestVectors checks the published vectors: they are what the code makes,
// they verify as documented, and the document shows them verbatim.
func TestVectors(t *testing.T) {
	vf := buildVectors(t)
	got, err := json.MarshalIndent(vf, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	const golden = "testdata/vectors.json"
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./verifier -run TestVectors -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("vectors differ from %s; if the format changed on purpose, rerun with -update and update docs/voucher-format.md", golden)
	}
	f := verifiertest.New(t)
	doc, err := os.ReadFile("../docs/voucher-format.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vf.Vectors {
		f.Clock.Set(v.At)
		if d := f.Verifier.Verify([]byte(v.Text)); d.Reason != v.Reason {
			t.Errorf("vector %q: reason %q (%s); want %q", v.Name, d.Reason, d.Detail, v.Reason)
		}
		if !bytes.Contains(doc, []byte(v.Text)) || !bytes.Contains(doc, []byte(v.COSE)) {
			t.Errorf("docs/voucher-format.md does not show vector %q verbatim", v.Name)
		}
	}
	if !bytes.Contains(doc, []byte(vf.KeySet)) {
		t.Error("docs/voucher-format.md does not show the key set vector")
	}
}
