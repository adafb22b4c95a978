package verifiertest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/asn1"
	"math/big"
	"slices"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/verifier"
)

// Revocations returns n revocation entries of distinct 8-byte ids, valid a
// day from Epoch: bulk for lookups to search through.
func Revocations(n int) []verifier.Entry {
	entries := make([]verifier.Entry, 0, n)
	for i := range n {
		id := []byte{'r', 'e', 'v', byte(i >> 16), byte(i >> 8), byte(i), 0, 0}
		entries = append(entries, verifier.Entry{Op: verifier.OpRevoke, Key: id, Time: Epoch.Unix(), Expires: Epoch.Unix() + 86400})
	}
	return entries
}

// Bare returns the bare signature check of a Wicket voucher's text signed
// by f.Ed or f.ES, the floor of any pipeline: with the Sig_structure and
// the key already at hand, ed25519.Verify for EdDSA, and SHA-256 and
// ecdsa.VerifyASN1 for ES256 (the signature converted to ASN.1 once,
// beforehand). The check reports whether the signature verified.
func (f *Fixture) Bare(tb testing.TB, text []byte) func() bool {
	env, err := decoder.Parse(text)
	if err != nil {
		tb.Fatal(err)
	}
	tbs, sig := env.ToBeSigned(), env.Signature
	switch env.Alg {
	case decoder.AlgEdDSA:
		pub := f.EdPub.Public().(ed25519.PublicKey)
		return func() bool { return ed25519.Verify(pub, tbs, sig) }
	case decoder.AlgES256:
		pub := f.ESPub.Public().(*ecdsa.PublicKey)
		der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
		if err != nil {
			tb.Fatal(err)
		}
		return func() bool {
			sum := sha256.Sum256(tbs)
			return ecdsa.VerifyASN1(pub, sum[:], der)
		}
	}
	tb.Fatalf("no bare check for %v", env.Alg)
	return nil
}

// PipelineVsBare compares v.Verify(text) with bare, the bare signature
// check of the same code (Fixture.Bare), call by call: each iteration is
// one round of two pipeline decisions and two bare checks in the order
// pipeline, bare, bare, pipeline, each timed on its own, so a change of
// machine load during the round affects both sides alike. It reports the
// median over the rounds of the ratio pipeline/bare ("ratio") and the
// medians of each side's time per call. text must be allowed by v.
func PipelineVsBare(b *testing.B, v *verifier.Verifier, text []byte, bare func() bool) {
	if d := v.Verify(text); !d.Allow {
		b.Fatal(d.Reason, d.Detail)
	}
	pipeline := func() bool { return v.Verify(text).Allow }
	var ratios, pipes, bares []float64
	b.ReportAllocs()
	for b.Loop() {
		var took [2]time.Duration // pipeline, bare
		for i, side := range [4]int{0, 1, 1, 0} {
			check := pipeline
			if side == 1 {
				check = bare
			}
			t0 := time.Now()
			ok := check()
			took[side] += time.Since(t0)
			if !ok {
				b.Fatalf("call %d of the round (%s) failed", i, [2]string{"pipeline", "bare"}[side])
			}
		}
		ratios = append(ratios, float64(took[0])/float64(took[1]))
		pipes = append(pipes, float64(took[0].Nanoseconds())/2)
		bares = append(bares, float64(took[1].Nanoseconds())/2)
	}
	b.ReportMetric(median(pipes), "pipeline-ns/op")
	b.ReportMetric(median(bares), "bare-ns/op")
	b.ReportMetric(median(ratios), "ratio")
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
