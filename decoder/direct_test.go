package decoder

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"reflect"
	"testing"
)

// directSeed is a COSE message or claims map, and whether the direct
// decoders read it themselves.
type directSeed struct {
	data   []byte
	direct bool
}

// directSeeds returns COSE messages and claims maps of issued vouchers
// (both algorithms, with and without the optional claims), which the
// direct decoders read, and variants, some of which they leave to the
// general decoding.
func directSeeds(t testing.TB) (messages, claims []directSeed) {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	es, err := NewSigner(ec, nil)
	if err != nil {
		t.Fatal(err)
	}
	full := testClaims()
	bare := testClaims()
	bare.Voucher.Test, bare.Voucher.Vaccination, bare.Voucher.Name = nil, nil, ""
	bare.NotBefore = bare.IssuedAt - 60
	for _, s := range []*Signer{testSigner(t), es} {
		for _, c := range []*Claims{full, bare} {
			text, err := Issue(s, c)
			if err != nil {
				t.Fatal(err)
			}
			cose, err := Unwrap([]byte(text), Prefix)
			if err != nil {
				t.Fatal(err)
			}
			env, err := Parse([]byte(text))
			if err != nil {
				t.Fatal(err)
			}
			messages = append(messages, directSeed{cose, true})
			claims = append(claims, directSeed{env.Payload, true})
		}
	}
	kid := []byte{0x48, 1, 2, 3, 4, 5, 6, 7, 8}
	payload := claims[0].data
	msg := func(protected, unprotected []byte) []byte {
		return AssembleSign1(protected, unprotected, payload, bytes.Repeat([]byte{9}, 64))
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	messages = append(messages,
		directSeed{msg([]byte{0xa1, 0x01, 0x26}, cat([]byte{0xa1, 0x04}, kid)), true},                 // kid unprotected
		directSeed{msg(cat([]byte{0xa2, 0x01, 0x26, 0x04}, kid), cat([]byte{0xa1, 0x04}, kid)), true}, // kid in both
		directSeed{msg([]byte{0xa1, 0x01, 0x38, 0x24}, []byte{0xa0}), true},                           // PS256
		directSeed{msg([]byte{0xa1, 0x01, 0x39, 0x00, 0x06}, []byte{0xa0}), true},                     // -7 in a two-byte head
		directSeed{msg([]byte{0xa1, 0x01, 0x18, 0x26}, []byte{0xa0}), false},                          // alg 38
		directSeed{msg([]byte{0xa2, 0x01, 0x26, 0x01, 0x26}, []byte{0xa0}), false},                    // alg twice
		directSeed{msg([]byte{0xa1, 0x01, 0x26}, []byte{0xa1, 0x01, 0x26}), false},                    // alg unprotected
		directSeed{msg([]byte{0xa1, 0x01, 0x26}, []byte{0xa1, 0x04, 0x40}), false},                    // empty kid
		directSeed{msg([]byte{0xa2, 0x01, 0x26, 0x03, 0x00}, []byte{0xa0}), false},                    // another label
		directSeed{msg([]byte{0xa1, 0x01, 0x26}, []byte{0xbf, 0xff}), false},                          // indefinite map
		directSeed{msg([]byte{}, []byte{0xa0}), false},                                                // empty protected
		directSeed{AssembleSign1([]byte{0xa1, 0x01, 0x27}, []byte{0xa0}, nil, []byte{1}), false},      // empty payload
		directSeed{cat(msg([]byte{0xa1, 0x01, 0x27}, []byte{0xa0}), []byte{0}), false},                // a byte after
	)
	claims = append(claims,
		directSeed{[]byte{0xa1, 0x01, 0x62, 'G', 'X'}, true},
		directSeed{[]byte{0xa1, 0x04, 0x18, 0x05}, true},                                                                       // exp in a two-byte head
		directSeed{[]byte{0xa1, 0x01, 0x62, 0xff, 'X'}, false},                                                                 // invalid UTF-8
		directSeed{[]byte{0xa2, 0x04, 0x05, 0x04, 0x06}, false},                                                                // exp twice
		directSeed{[]byte{0xa1, 0x00, 0x00}, false},                                                                            // key 0
		directSeed{[]byte{0xa1, 0x3a, 0x00, 0x01, 0x00, 0x01, 0xa0}, false},                                                    // key -65538
		directSeed{[]byte{0xa1, 0x3a, 0x00, 0x01, 0x00, 0x00, 0xa1, 0x07, 0x82, 0x01, 0x00}, false},                            // short test
		directSeed{[]byte{0xa1, 0x3a, 0x00, 0x01, 0x00, 0x00, 0xa1, 0x01, 0x19, 0x01, 0x00}, false},                            // version 256
		directSeed{[]byte{0xa1, 0x3a, 0x00, 0x01, 0x00, 0x00, 0xa1, 0x08, 0x82, 0x00, 0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0}, false}, // last over int64
	)
	return messages, claims
}

// sameBytes is bytes.Equal that also tells nil from empty.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func sameSign1(a, b *Sign1) bool {
	return a.Alg == b.Alg && sameBytes(a.Protected, b.Protected) && sameBytes(a.Kid, b.Kid) &&
		sameBytes(a.Payload, b.Payload) && sameBytes(a.Signature, b.Signature)
}

// errText is an error's message, "" for none.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// checkSign1 compares parseSign1 and ParseSign1 with the general decoding
// on data: the same error, or the same message.
func checkSign1(t *testing.T, data []byte) {
	var want Sign1
	werr := parseSign1General(&want, bytes.Clone(data))
	var got Sign1
	gerr := parseSign1(&got, data)
	pub, perr := ParseSign1(data)
	if errText(gerr) != errText(werr) || errText(perr) != errText(werr) {
		t.Fatalf("%x: errors %v and %v, general decoding %v", data, gerr, perr, werr)
	}
	if werr == nil && (!sameSign1(&got, &want) || !sameSign1(pub, &want)) {
		t.Fatalf("%x: parsed %+v and %+v, general decoding %+v", data, got, *pub, want)
	}
}

// checkClaims compares ParseClaims with the general decoding on data.
func checkClaims(t *testing.T, data []byte) {
	var want Claims
	werr := parseClaimsGeneral(&want, bytes.Clone(data))
	if werr == nil {
		werr = want.Check()
	}
	got, gerr := ParseClaims(data)
	if errText(gerr) != errText(werr) {
		t.Fatalf("%x: error %v, general decoding %v", data, gerr, werr)
	}
	if werr == nil && !reflect.DeepEqual(*got, want) {
		t.Fatalf("%x: parsed %+v, general decoding %+v", data, *got, want)
	}
}

// TestDirect: the direct decoders read issued vouchers themselves and
// leave the shapes they do not know to the general decoding, and the
// result is the general decoding's on all of them.
func TestDirect(t *testing.T) {
	messages, claims := directSeeds(t)
	for _, m := range messages {
		var s Sign1
		if got := parseSign1Direct(&s, m.data); got != m.direct {
			t.Errorf("parseSign1Direct(%x) = %v; want %v", m.data, got, m.direct)
		}
		checkSign1(t, m.data)
	}
	for _, c := range claims {
		var got Claims
		if ok := parseClaimsDirect(&got, c.data); ok != c.direct {
			t.Errorf("parseClaimsDirect(%x) = %v; want %v", c.data, ok, c.direct)
		}
		checkClaims(t, c.data)
	}
}

// TestSign1Owns: ParseSign1's result does not share the caller's bytes.
func TestSign1Owns(t *testing.T) {
	messages, _ := directSeeds(t)
	data := bytes.Clone(messages[0].data)
	s, err := ParseSign1(data)
	if err != nil {
		t.Fatal(err)
	}
	want := *s
	want.Protected, want.Kid = bytes.Clone(s.Protected), bytes.Clone(s.Kid)
	want.Payload, want.Signature = bytes.Clone(s.Payload), bytes.Clone(s.Signature)
	clear(data)
	if !sameSign1(s, &want) {
		t.Fatal("clearing the input changed the parsed message")
	}
}

// FuzzDirectSign1: on any input, the COSE parsing with its direct path
// accepts and refuses what the general decoding does, to the same result.
func FuzzDirectSign1(f *testing.F) {
	messages, _ := directSeeds(f)
	for _, m := range messages {
		f.Add(m.data)
	}
	f.Fuzz(checkSign1)
}

// FuzzDirectClaims is FuzzDirectSign1 for claims maps.
func FuzzDirectClaims(f *testing.F) {
	_, claims := directSeeds(f)
	for _, c := range claims {
		f.Add(c.data)
	}
	f.Fuzz(checkClaims)
}
