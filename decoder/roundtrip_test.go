package decoder

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
)

// testKey is a fixed Ed25519 key so vectors are reproducible.
func testSigner(t testing.TB) *Signer {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	s, err := NewSigner(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testClaims() *Claims {
	return &Claims{
		Issuer:   "GX",
		IssuedAt: 1780000000,
		Expiry:   1780000000 + 3600,
		ID:       []byte("voucher-0000001"),
		Voucher: Voucher{
			Version: 1, Subject: []byte("subject-pseudonym"),
			Colour: ColourGreen, Kind: KindPrinted, Class: ClassChild,
			Name:        "张*明",
			Test:        &Test{Kind: TestNAAT, Result: ResultNegative, Sampled: 1779990000},
			Vaccination: &Vaccination{Doses: 2, Last: 1770000000},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	s := testSigner(t)
	text, err := Issue(s, testClaims())
	if err != nil {
		t.Fatal(err)
	}
	env, err := Parse([]byte(text))
	if err != nil {
		t.Fatalf("Parse(%q) = %v", text, err)
	}
	if env.Alg != AlgEdDSA || !bytes.Equal(env.Kid, s.Kid()) {
		t.Fatalf("alg %v kid %x; want EdDSA %x", env.Alg, env.Kid, s.Kid())
	}
	if !ed25519.Verify(s.key.Public().(ed25519.PublicKey), env.ToBeSigned(), env.Signature) {
		t.Fatal("signature does not verify")
	}
	c, err := ParseClaims(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	want := testClaims()
	if c.Voucher.Name != want.Voucher.Name || *c.Voucher.Test != *want.Voucher.Test || c.Expiry != want.Expiry {
		t.Fatalf("claims = %+v; want %+v", c, want)
	}
}

func TestStrictCBOR(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"dup key", []byte{0xa2, 0x01, 0x61, 'a', 0x01, 0x61, 'b'}, ErrCBOR},
		{"indefinite map", []byte{0xbf, 0x01, 0x61, 'a', 0xff}, ErrCBOR},
		{"trailing", []byte{0xa0, 0x00}, ErrCBOR},
		{"unknown key", []byte{0xa1, 0x18, 0x63, 0x01}, ErrClaims},
		{"float time", []byte{0xa1, 0x04, 0xfb, 0x41, 0xda, 0x85, 0x32, 0x00, 0, 0, 0}, ErrClaims},
		{"test array too short", []byte{0xa1, 0x3a, 0x00, 0x01, 0x00, 0x00, 0xa1, 0x07, 0x82, 0x01, 0x00}, ErrClaims},
	} {
		_, err := ParseClaims(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("ParseClaims(%s) = %v; want %v", tc.name, err, tc.want)
		}
	}
}
