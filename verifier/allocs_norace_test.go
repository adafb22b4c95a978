//go:build !race

package verifier_test

import (
	"strconv"
	"testing"

	"wicket/decoder"
)

// TestVerifyAllocs pins the allocations of one allowed decision, lookups
// among 60,000 revocations included: 11 for an Ed25519 voucher (19
// before the COSE message and the claims were read without reflection,
// 27 before keys were decoded once), 25 for ES256 (30, 48), of which the
// P-256 verification makes 13 (p256.go: 11 in math/big's inversion of s;
// ecdsa.VerifyASN1 made 10, 22 in all). With 32-bit words (armv7)
// math/big's inversion makes two more: 27. The race detector changes the
// counts, hence the build tag.
func TestVerifyAllocs(t *testing.T) {
	f, ed := benchFixture(t)
	es := []byte(f.Issue(t, f.ES, f.Claims(decoder.KindPrinted)))
	esMax := 25.0
	if strconv.IntSize == 32 {
		esMax = 27
	}
	for _, c := range []struct {
		name string
		text []byte
		max  float64
	}{{"Ed25519", ed, 11}, {"ES256", es, esMax}} {
		got := testing.AllocsPerRun(200, func() {
			if d := f.Verifier.Verify(c.text); !d.Allow {
				t.Fatalf("%s voucher denied: %v %s", c.name, d.Reason, d.Detail)
			}
		})
		if got > c.max {
			t.Errorf("%s decision: %v allocations; want at most %v", c.name, got, c.max)
		}
	}
}
