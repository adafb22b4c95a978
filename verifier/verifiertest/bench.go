package verifiertest

import (
	"crypto/ed25519"
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

// PipelineVsBare alternates v.Verify(text) with a bare Ed25519 check of
// the same message on the fixture's issuer key in each iteration, and
// reports both times and their ratio: load on the machine affects both
// alike. text must be a voucher signed by f.Ed that v allows.
func PipelineVsBare(b *testing.B, v *verifier.Verifier, text []byte) {
	env, err := decoder.Parse(text)
	if err != nil {
		b.Fatal(err)
	}
	tbs := env.ToBeSigned()
	pub := EdKey(2).Public().(ed25519.PublicKey)
	var pipe, bare time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if d := v.Verify(text); !d.Allow {
			b.Fatal(d.Reason, d.Detail)
		}
		t1 := time.Now()
		if !ed25519.Verify(pub, tbs, env.Signature) {
			b.Fatal("bad signature")
		}
		t2 := time.Now()
		pipe += t1.Sub(t0)
		bare += t2.Sub(t1)
	}
	b.ReportMetric(float64(pipe.Nanoseconds())/float64(b.N), "pipeline-ns/op")
	b.ReportMetric(float64(bare.Nanoseconds())/float64(b.N), "bare-ns/op")
	b.ReportMetric(float64(pipe)/float64(bare), "ratio")
}
