package verifier_test

import (
	"testing"
	"time"

	"wicket/decoder"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// benchFixture has a status store with 60,000 revocations so the lookup in
// the pipeline is a real one.
func benchFixture(b testing.TB) (*verifiertest.Fixture, []byte) {
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
	benchVerify(b, f, text)
}

// BenchmarkBareEd25519 verifies the same message's signature on the same
// key, with the Sig_structure already built: the floor of any pipeline.
func BenchmarkBareEd25519(b *testing.B) {
	f, text := benchFixture(b)
	benchBare(b, f.Bare(b, text))
}

// BenchmarkBareES256 is BenchmarkBareEd25519 for the ES256 voucher of
// BenchmarkPipelineES256: SHA-256 and ecdsa.VerifyASN1.
func BenchmarkBareES256(b *testing.B) {
	f, _ := benchFixture(b)
	benchBare(b, f.Bare(b, []byte(f.Issue(b, f.ES, f.Claims(decoder.KindPrinted)))))
}

func benchBare(b *testing.B, bare func() bool) {
	b.ReportAllocs()
	for b.Loop() {
		if !bare() {
			b.Fatal("bad signature")
		}
	}
}

// BenchmarkPipelineES256 is the pipeline with an ES256 voucher.
func BenchmarkPipelineES256(b *testing.B) {
	f, _ := benchFixture(b)
	benchVerify(b, f, []byte(f.Issue(b, f.ES, f.Claims(decoder.KindPrinted))))
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

// BenchmarkPipelineVsBare compares the pipeline on an Ed25519 voucher
// with ed25519.Verify of the same message call by call and reports the
// median of the per-round ratios (verifiertest.PipelineVsBare).
func BenchmarkPipelineVsBare(b *testing.B) {
	f, text := benchFixture(b)
	verifiertest.PipelineVsBare(b, f.Verifier, text, f.Bare(b, text))
}

// BenchmarkPipelineVsBareES256 is BenchmarkPipelineVsBare for an ES256
// voucher against SHA-256 and ecdsa.VerifyASN1.
func BenchmarkPipelineVsBareES256(b *testing.B) {
	f, _ := benchFixture(b)
	text := []byte(f.Issue(b, f.ES, f.Claims(decoder.KindPrinted)))
	verifiertest.PipelineVsBare(b, f.Verifier, text, f.Bare(b, text))
}

// dccBench sets up a gate taking DCCs (the signers of newDCCGate) with
// the 60,000-revocation store of benchFixture and returns it with a
// vaccination certificate of the signer pick chooses.
func dccBench(b *testing.B, pick func(*dccGate) (*verifiertest.DCCSigner, string)) (*verifiertest.Fixture, []byte) {
	f, _ := benchFixture(b)
	s, country := pick(newDCCGate(b, f, dccPolicy))
	iat := verifiertest.Epoch.Add(-time.Hour).Unix()
	text := []byte(verifiertest.IssueDCC(b, s, verifiertest.DCCPayload(b, country, iat, iat+86400*180,
		verifiertest.DCCVaccination(2, 2, "2026-03-01")), nil))
	return f, text
}

// benchVerify verifies text in a loop; every decision must allow.
func benchVerify(b *testing.B, f *verifiertest.Fixture, text []byte) {
	if d := f.Verifier.Verify(text); !d.Allow {
		b.Fatalf("benchmark code denied: %v %s", d.Reason, d.Detail)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if d := f.Verifier.Verify(text); !d.Allow {
			b.Fatal(d.Reason)
		}
	}
}

// BenchmarkPipelineDCCES256 is the pipeline with an EU DCC signed ES256,
// to compare with BenchmarkPipeline (a Wicket voucher, Ed25519).
func BenchmarkPipelineDCCES256(b *testing.B) {
	f, text := dccBench(b, de)
	benchVerify(b, f, text)
}

// BenchmarkPipelineDCCPS256 is the same with an RSA-2048 PS256 signer.
func BenchmarkPipelineDCCPS256(b *testing.B) {
	f, text := dccBench(b, fr)
	benchVerify(b, f, text)
}
