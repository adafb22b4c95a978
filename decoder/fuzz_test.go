package decoder

import (
	"bytes"
	"errors"
	"testing"
)

// seedTexts are valid codes and near misses.
func seedTexts(t testing.TB) []string {
	s := testSigner(t)
	c := testClaims()
	valid, err := Issue(s, c)
	if err != nil {
		t.Fatal(err)
	}
	c.Voucher.Test, c.Voucher.Vaccination, c.Voucher.Name = nil, nil, ""
	small, err := Issue(s, c)
	if err != nil {
		t.Fatal(err)
	}
	return []string{valid, small, valid[:len(valid)-1], Prefix, Prefix + "GGW", "HC1:ABC", ""}
}

func FuzzBase45(f *testing.F) {
	for _, s := range []string{"", "BB8", "%69 VD92EX0", "UJCLQE7W581", "GGW", "ZZZ", "A", "AB", "::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := Base45Decode(s)
		if err != nil {
			if !errors.Is(err, ErrBase45) {
				t.Fatalf("Base45Decode(%q) error %v is not ErrBase45", s, err)
			}
			return
		}
		// Decoding is strict, so a text that decodes is the only encoding
		// of its bytes.
		if enc := Base45Encode(b); enc != s {
			t.Fatalf("Base45Encode(Base45Decode(%q)) = %q", s, enc)
		}
	})
}

func FuzzBase45RoundTrip(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("hello"))
	f.Add([]byte{0xff, 0xff, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Base45Decode(Base45Encode(b))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("round trip of %x = %x, %v", b, got, err)
		}
	})
}

// FuzzParse runs the envelope layers: prefix, base45, zlib, COSE. Every
// failure must be one of the sentinel errors.
func FuzzParse(f *testing.F) {
	for _, s := range seedTexts(f) {
		f.Add([]byte(s))
	}
	sentinels := []error{ErrEmpty, ErrTooLong, ErrPrefix, ErrBase45, ErrCompression, ErrTooLarge, ErrCBOR, ErrCOSE, ErrAlgNotProtected, ErrUnsupportedAlg}
	f.Fuzz(func(t *testing.T, text []byte) {
		env, err := Parse(text)
		if err == nil {
			if env.Alg != AlgEdDSA && env.Alg != AlgES256 {
				t.Fatalf("accepted alg %v", env.Alg)
			}
			if len(env.Kid) > MaxKidLen {
				t.Fatalf("kid of %d bytes", len(env.Kid))
			}
			ParseClaims(env.Payload)
			return
		}
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("Parse error %v wraps no sentinel", err)
	})
}

// FuzzSign1 feeds raw bytes (what is left after zlib) to the COSE parser
// and to its EU DCC variant, which takes everything the strict one takes.
func FuzzSign1(f *testing.F) {
	for _, s := range seedTexts(f) {
		if cose, err := Unwrap([]byte(s), Prefix); err == nil {
			f.Add(cose)
		}
	}
	f.Add([]byte{0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40})
	f.Add([]byte{0xd8, 0x3d, 0xd2, 0x84, 0x40, 0xa1, 0x01, 0x26, 0x40, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSign1(b)
		if err == nil && s.Payload == nil {
			t.Fatal("accepted a message without payload")
		}
		d, derr := ParseSign1DCC(b)
		if derr == nil && d.Payload == nil {
			t.Fatal("DCC: accepted a message without payload")
		}
		if err == nil && (derr != nil || d.Alg != s.Alg || string(d.Kid) != string(s.Kid)) {
			t.Fatalf("DCC parser differs on a strict message: %v", derr)
		}
	})
}

// FuzzInflate checks the zlib bound holds for any input.
func FuzzInflate(f *testing.F) {
	for _, s := range seedTexts(f) {
		if b, err := Base45Decode(s[min(len(Prefix), len(s)):]); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := Inflate(nil, b, 1024)
		if err == nil && len(out) > 1024 {
			t.Fatalf("inflated %d bytes over a 1024 limit", len(out))
		}
	})
}

// FuzzClaims feeds raw CBOR to the claims parser: accepted claims must
// pass Check and re-encode canonically to the same bytes.
func FuzzClaims(f *testing.F) {
	for _, s := range seedTexts(f) {
		if env, err := Parse([]byte(s)); err == nil {
			f.Add(env.Payload)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseClaims(b)
		if err != nil {
			if !errors.Is(err, ErrClaims) && !errors.Is(err, ErrCBOR) {
				t.Fatalf("ParseClaims error %v is neither ErrClaims nor ErrCBOR", err)
			}
			return
		}
		if err := c.Check(); err != nil {
			t.Fatalf("accepted claims fail Check: %v", err)
		}
		if _, err := CanonicalMarshal(c); err != nil {
			t.Fatalf("accepted claims don't encode: %v", err)
		}
	})
}
