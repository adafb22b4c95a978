package verifier_test

import (
	"crypto/ed25519"
	"testing"

	"wicket/decoder"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// benchFixture has a status store with 60,000 revocations so the lookup in
// the pipeline is a real one.
func benchFixture(b *testing.B) (*verifiertest.Fixture, []byte) {
	f := verifiertest.New(b)
	f.ApplyBatch(b, verifier.Batch{Version: 2, Base: 1, IssuedAt: verifiertest.Epoch, Entries: verifiertest.Revocations(60_000)})
	text := []byte(f.Issue(b, f.Ed, f.Claims(decoder.KindPrinted)))
	if d := f.Verifier.Verify(text); !d.Allow {
		b.Fatalf("benchmark voucher denied: %v %s", d.Reason, d.Detail)
	}
	return f, text
}

// BenchmarkPipeline is text → Decision, revocation lookup included.
func BenchmarkPipeline(b *testing.B) {
	f, text := benchFixture(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if d := f.Verifier.Verify(text); !d.Allow {
			b.Fatal(d.Reason)
		}
	}
}

// BenchmarkBareEd25519 verifies the same message's signature on the same
// key, with the Sig_structure already built: the floor of any pipeline.
func BenchmarkBareEd25519(b *testing.B) {
	f, text := benchFixture(b)
	env, err := decoder.Parse(text)
	if err != nil {
		b.Fatal(err)
	}
	tbs := env.ToBeSigned()
	pub := verifiertest.EdKey(2).Public().(ed25519.PublicKey)
	_ = f
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, tbs, env.Signature) {
			b.Fatal("bad signature")
		}
	}
}

// BenchmarkPipelineES256 is the pipeline with an ES256 voucher.
func BenchmarkPipelineES256(b *testing.B) {
	f, _ := benchFixture(b)
	text := []byte(f.Issue(b, f.ES, f.Claims(decoder.KindPrinted)))
	b.ReportAllocs()
	for b.Loop() {
		if d := f.Verifier.Verify(text); !d.Allow {
			b.Fatal(d.Reason)
		}
	}
}

// BenchmarkDecodeOnly is prefix → base45 → zlib → COSE → claims, no crypto.
func BenchmarkDecodeOnly(b *testing.B) {
	_, text := benchFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		env, err := decoder.Parse(text)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := decoder.ParseClaims(env.Payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDenyGarbage is the cost of refusing a non-code.
func BenchmarkDenyGarbage(b *testing.B) {
	f, _ := benchFixture(b)
	text := []byte("https://example.com/not-a-voucher")
	b.ReportAllocs()
	for b.Loop() {
		f.Verifier.Verify(text)
	}
}

// BenchmarkPipelineVsBare alternates one pipeline run and one bare
// Ed25519 verification of the same message in each iteration and reports
// both and their ratio, so load on the machine affects both alike.
func BenchmarkPipelineVsBare(b *testing.B) {
	f, text := benchFixture(b)
	verifiertest.PipelineVsBare(b, f.Verifier, text)
}
