package verifier

import (
	"bytes"
	"encoding/asn1"
	"math/big"
	"math/rand/v2"
	"testing"
)

func TestAppendASN1Signature(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	values := [][]byte{make([]byte, 32), bytes.Repeat([]byte{0xff}, 32), append(make([]byte, 31), 1), append([]byte{0x80}, make([]byte, 31)...)}
	for range 200 {
		v := make([]byte, 32)
		for i := range v {
			v[i] = byte(r.Uint32())
		}
		v[0] &= byte(0xff >> r.IntN(9)) // leading zero bits, sometimes bytes
		values = append(values, v)
	}
	for i, a := range values {
		b := values[(i*7+1)%len(values)]
		want, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(a), new(big.Int).SetBytes(b)})
		if err != nil {
			t.Fatal(err)
		}
		if got := appendASN1Signature(nil, a, b); !bytes.Equal(got, want) {
			t.Fatalf("appendASN1Signature(%x, %x) = %x; want %x", a, b, got, want)
		}
	}
}
