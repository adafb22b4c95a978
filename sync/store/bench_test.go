package store

import (
	"testing"
	"time"

	"wicket/verifier"
)

// BenchmarkAppend commits one decision per transaction, fsync included:
// the cost the gate pays per scan before it opens.
func BenchmarkAppend(b *testing.B) {
	s := openTest(b, Options{MaxEvents: 100_000, MaxOutbox: 100_000})
	ev := Event{Type: TypeDecision, Gate: "g1", Venue: "north", Allow: true, Reason: "ok", Colour: "green",
		Kind: "vaccination", Class: "adult", Issuer: "XX", Voucher: s.HashID([]byte("v")), Subject: s.HashSubject([]byte("s"))}
	at := t0
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(time.Second)
		e := ev
		e.At = at
		if _, err := s.Append(&e, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRevokedLookup looks up ids among 100k revocations, half hits.
func BenchmarkRevokedLookup(b *testing.B) {
	s := openTest(b, Options{})
	const n = 100_000
	batch := &verifier.Batch{Version: 1, IssuedAt: t0}
	for i := range n {
		batch.Entries = append(batch.Entries, verifier.Entry{Op: verifier.OpRevoke, Key: poolKey(2 * i), Time: t0.Unix(), Expires: t0.Unix() + 3600})
	}
	if err := s.ApplyBatch(batch, t0); err != nil {
		b.Fatal(err)
	}
	ids := make([][]byte, 4096)
	for i := range ids {
		ids[i] = poolKey(i * 97 % (2 * n))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Revoked(ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkApplyBatch65k installs a 65536-entry snapshot (all ops) in one
// transaction, replacing the previous one.
func BenchmarkApplyBatch65k(b *testing.B) {
	s := openTest(b, Options{})
	rng := newRand(b)
	batches := make([]*verifier.Batch, 2)
	for i := range batches {
		batches[i] = randomBatch(rng, 0, 0, 65536, t0)
		for j := range batches[i].Entries {
			batches[i].Entries[j].Expires = t0.Unix() + 3600
		}
	}
	var v uint64
	b.ReportAllocs()
	for b.Loop() {
		v++
		batch := batches[v%2]
		batch.Version = v
		if err := s.ApplyBatch(batch, t0); err != nil {
			b.Fatal(err)
		}
	}
}
