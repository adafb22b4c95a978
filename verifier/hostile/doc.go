// Package hostile holds the hostile-input corpus of the verifier:
// testdata/corpus.json lists malformed and malicious codes, layer by layer
// (text length, prefix, scanner noise, base45, zlib, CBOR, COSE headers,
// signatures, claims, keys, times, EU DCCs), each with the reason
// verifier.Verify must deny it with at the gate of
// verifiertest.NewHostileGate. Its tests run the corpus and check the file
// matches its generator, internal/corpus (go run ./verifier/hostile/gen).
package hostile
