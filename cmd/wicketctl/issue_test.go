package main

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func TestMaskName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""}, {"张", "*"}, {"张明", "张*"}, {"张三明", "张*明"}, {"欧阳小明", "欧**明"},
		{"Li Wei", "L****i"}, {"张*明", "张*明"},
	} {
		if got := MaskName(tc.in); got != tc.want {
			t.Errorf("MaskName(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestPseudonym(t *testing.T) {
	secret := bytes.Repeat([]byte{1}, 32)
	a := Pseudonym(secret, "450100 20000101 123x")
	b := Pseudonym(secret, "45010020000101123X")
	if !bytes.Equal(a, b) || len(a) != 16 {
		t.Fatalf("Pseudonym is not stable under spacing and case: %x vs %x", a, b)
	}
	if bytes.Equal(a, Pseudonym(bytes.Repeat([]byte{2}, 32), "45010020000101123X")) {
		t.Error("two secrets give the same pseudonym")
	}
	if bytes.Contains([]byte(hex.EncodeToString(a)), []byte("450100")) {
		t.Error("pseudonym shows the ID number")
	}
}
