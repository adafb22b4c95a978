package decoder

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestCheckHeads(t *testing.T) {
	deep := append(bytes.Repeat([]byte{0x81}, 70), 0x00)
	for _, tc := range []struct {
		name, hex string
		raw       []byte
		ok        bool
	}{
		{name: "uint", hex: "1903e8", ok: true},
		{name: "map", hex: "a201020304", ok: true},
		{name: "tagged array", hex: "d28340a0f6", ok: true},
		{name: "float64", hex: "fb3ff8000000000000", ok: true},
		{name: "indefinite array", hex: "9f0102ff", ok: true},
		{name: "indefinite text", hex: "7f61616162ff", ok: true},
		{name: "array claiming 2^32 items", hex: "9b0000000100000000"},
		{name: "array claiming 2^32 items, 4-byte head", hex: "9affffffff00"},
		{name: "map claiming 2^63 pairs", hex: "bb7fffffffffffffff0000"},
		{name: "text claiming 2^32 bytes", hex: "7b000000010000000061"},
		{name: "bytes longer than the input", hex: "4561626364"},
		{name: "reserved additional information", hex: "1c"},
		{name: "trailing byte", hex: "0000"},
		{name: "truncated head", hex: "19ff"},
		{name: "indefinite map with a lone key", hex: "bf01ff"},
		{name: "indefinite text with a byte chunk", hex: "7f4161ff"},
		{name: "lone break", hex: "ff"},
		{name: "empty", hex: ""},
		{name: "nested 70 deep", raw: deep},
	} {
		b := tc.raw
		if b == nil {
			var err error
			if b, err = hex.DecodeString(tc.hex); err != nil {
				t.Fatal(err)
			}
		}
		err := CheckHeads(b)
		if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrCBOR) {
			t.Errorf("%s: CheckHeads(%s) = %v; want ok %v", tc.name, tc.hex, err, tc.ok)
		}
	}
}

func TestCheckHeadsUTF8(t *testing.T) {
	for hexs, ok := range map[string]bool{
		"6461626364":     true,  // "abcd"
		"63e5bca0":       true,  // "张"
		"62c328":         false, // a broken two-byte sequence
		"a1016161":       true,
		"a161ff01":       false, // a map whose key is not UTF-8
		"7f61616162ff":   true,
		"7f6161 61ff ff": false,
		"42ffff":         true, // a byte string may hold anything
	} {
		b, err := hex.DecodeString(strings.ReplaceAll(hexs, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		if got := CheckHeads(b) == nil; got != ok {
			t.Errorf("CheckHeads(%s) ok = %v; want %v", hexs, got, ok)
		}
	}
}
