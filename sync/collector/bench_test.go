package collector

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wicket/sync/wire"
	"wicket/sync/wire/wiretest"
)

// BenchmarkCollectorRows stores 100-record batches into PostgreSQL with
// DefaultWorkers workers, as the collector does, alternating two
// variants in one run: "signed" takes each message through the
// collector's checks (envelope, roster, Ed25519 signature, body) and
// "unsigned" parses the plain JSON batch as before signatures. Each
// iteration runs one phase of each; both report rows per second, and
// verify_us the signature checks alone per batch.
//
//	go test -run '^$' -bench CollectorRows -benchtime 20x ./sync/collector/
func BenchmarkCollectorRows(b *testing.B) {
	const size, perPhase = 100, 100 // records per batch, batches per phase
	pool := testPool(b)
	w := NewWriter(pool, nil)
	c, err := New(withIdentity(b, Config{Broker: "tcp://127.0.0.1:1883", Fleet: "bench", ClientID: "bench"}), w, nil)
	if err != nil {
		b.Fatal(err)
	}
	gate := gateName("bench-rows")
	if err := c.installRoster(wiretest.Roster(b, testRoot, 1, gate)); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	topic := c.topics.Records(gate)
	var seq uint64
	var verifyNs atomic.Int64
	phase := func(signed bool) time.Duration {
		payloads := make([][]byte, perPhase)
		for i := range payloads {
			r := batch(gate, seqRange(seq+1, seq+size)...)
			seq += size
			if signed {
				payloads[i] = wiretest.Records("bench", gate, r)
			} else {
				payloads[i], _ = json.Marshal(r)
			}
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range DefaultWorkers {
			wg.Go(func() {
				for i := next.Add(1) - 1; i < perPhase; i = next.Add(1) - 1 {
					var r *wire.Records
					var err error
					if signed {
						t0 := time.Now()
						r, err = c.decode(inbound{topic: topic, payload: payloads[i]})
						verifyNs.Add(int64(time.Since(t0)))
					} else {
						r, err = wire.DecodeRecords(payloads[i])
					}
					if err == nil {
						var n int
						n, err = w.Write(ctx, r)
						if err == nil && n != size {
							b.Errorf("stored %d of %d", n, size)
						}
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	var signed, unsigned time.Duration
	rounds := 0
	for b.Loop() {
		signed += phase(true)
		unsigned += phase(false)
		rounds++
	}
	rows := float64(rounds * perPhase * size)
	b.ReportMetric(rows/signed.Seconds(), "signed_rows/s")
	b.ReportMetric(rows/unsigned.Seconds(), "unsigned_rows/s")
	b.ReportMetric(float64(verifyNs.Load())/float64(rounds*perPhase)/1e3, "verify_us/batch")
}

// BenchmarkCollectorDecode is the CPU cost of the checks alone, without
// PostgreSQL, per 100-record batch: the collector's decode of a signed
// message against the plain JSON decode, alternating in one run.
//
//	go test -run '^$' -bench CollectorDecode ./sync/collector/
func BenchmarkCollectorDecode(b *testing.B) {
	c, err := New(withIdentity(b, Config{Broker: "tcp://127.0.0.1:1883", Fleet: "bench", ClientID: "bench"}), &Writer{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	gate := "bench-gate"
	if err := c.installRoster(wiretest.Roster(b, testRoot, 1, gate)); err != nil {
		b.Fatal(err)
	}
	r := batch(gate, seqRange(1, 100)...)
	signedMsg := inbound{topic: c.topics.Records(gate), payload: wiretest.Records("bench", gate, r)}
	plain, _ := json.Marshal(r)
	var signed, unsigned time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		if _, err := c.decode(signedMsg); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := wire.DecodeRecords(plain); err != nil {
			b.Fatal(err)
		}
		signed += t1.Sub(t0)
		unsigned += time.Since(t1)
		n++
	}
	b.ReportMetric(float64(signed.Microseconds())/float64(n), "signed_us/batch")
	b.ReportMetric(float64(unsigned.Microseconds())/float64(n), "unsigned_us/batch")
	b.ReportMetric(float64(len(signedMsg.payload)), "signed_bytes")
	b.ReportMetric(float64(len(plain)), "unsigned_bytes")
}
