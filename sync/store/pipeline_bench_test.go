package store

import (
	"testing"

	"wicket/decoder"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// BenchmarkPipelineStoreVsBare is verifier.BenchmarkPipelineVsBare with
// the revocation and override lookups in this store (60,000 revocations),
// as on a running gate: pipeline and bare Ed25519 verification of the
// same message alternate call by call (verifiertest.PipelineVsBare).
func BenchmarkPipelineStoreVsBare(b *testing.B) {
	f := verifiertest.New(b)
	s := openTest(b, Options{})
	if err := s.ApplyBatch(&verifier.Batch{Version: 1, IssuedAt: verifiertest.Epoch, Entries: verifiertest.Revocations(60_000)}, verifiertest.Epoch); err != nil {
		b.Fatal(err)
	}
	v, err := verifier.New(f.TClock, s, &f.Policy)
	if err != nil {
		b.Fatal(err)
	}
	if err := v.InstallKeySet(f.KeySet); err != nil {
		b.Fatal(err)
	}
	text := []byte(f.Issue(b, f.Ed, f.Claims(decoder.KindPrinted)))
	verifiertest.PipelineVsBare(b, v, text, f.Bare(b, text))
}
