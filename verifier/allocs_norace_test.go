//go:build !race

package verifier_test

import (
	"testing"

	"wicket/decoder"
)

// TestVerifyAllocs pins the allocations of one allowed decision, lookups
// among 60,000 revocations included: 19 for an Ed25519 voucher (27
// before keys were decoded once and the COSE message checked once), 30
// for ES256 (48), of which ecdsa.VerifyASN1 makes 10. The race detector
// changes the counts, hence the build tag.
func TestVerifyAllocs(t *testing.T) {
	f, ed := benchFixture(t)
	es := []byte(f.Issue(t, f.ES, f.Claims(decoder.KindPrinted)))
	for _, c := range []struct {
		name string
		text []byte
		max  float64
	}{{"Ed25519", ed, 19}, {"ES256", es, 30}} {
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
