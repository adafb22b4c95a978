package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// BenchmarkWriterTx times the write transaction of each writer of the
// store, from the call to its return: how long it holds bbolt's write
// lock, which an allowed scan's record waits for after the relay edge
// (docs/design.md, "Relay before fsync"). The store is in
// WICKET_STORE_BENCH_DIR (the SD-class latfs mount, see
// docs/BENCHMARKS.md) or a temporary directory; WICKET_STORE_BENCH_REPS
// (default 30) transactions per writer, one at a time; run it with
// -benchtime 1x (the transactions are the repetitions). The writers:
//
//   - record: Append of a decision with its anti-passback entry (the
//     loop's records, the passage events, the daemon's own records);
//   - record, prune 1024: the same while the log is over MaxEvents, as
//     after MaxEvents was lowered (the most one Append deletes);
//   - ack 1, ack 100, ack 500: AckRange of one records batch (the sync's
//     acks; 100 is the default batch, 500 the wire's largest);
//   - floor: RaiseFloor (housekeeping, every minute);
//   - passback prune: PrunePassback over 50,000 entries, 1,000 of them
//     expired (housekeeping, every minute): its write transaction, the
//     deletion (it reads the memory in a read transaction first);
//   - trust doc: PutTrustDoc of a 256 KiB document (key set, roster,
//     orders).
func BenchmarkWriterTx(b *testing.B) {
	root := os.Getenv("WICKET_STORE_BENCH_DIR")
	if root == "" {
		root = b.TempDir()
	}
	reps := 30
	if n, err := strconv.Atoi(os.Getenv("WICKET_STORE_BENCH_REPS")); err == nil && n > 0 {
		reps = n
	}
	dir, err := os.MkdirTemp(root, "writers-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	at := time.Unix(1_800_000_000, 0)
	decision := func(i int) Event {
		return Event{Type: TypeDecision, At: at.Add(time.Duration(i) * time.Second), Gate: "G-0001", Venue: "V-01", Allow: true,
			Reason: "ok", Voucher: fmt.Sprintf("%032x", i), Kind: "printed", Class: "adult", Issuer: "GX"}
	}
	// History in the log and the outbox: enough for every ack and prune.
	logged := max(16_000, maxPrunePerTx*(reps+2))
	open := func(b *testing.B, name string) *Store {
		s, err := Open(Options{Path: filepath.Join(dir, name+".db")})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		// A log with history, written in one transaction.
		err = s.update(func(tx *bbolt.Tx) error {
			for i := range logged {
				e := decision(i)
				if _, err := s.appendTx(tx, &e, time.Hour); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	// before, if a writer sets it, runs untimed before each transaction.
	var before func(i int)
	writers := []struct {
		name  string
		setup func(b *testing.B) func(i int) error
	}{
		{"record", func(b *testing.B) func(int) error {
			s := open(b, "record")
			return func(i int) error {
				e := decision(logged + i)
				_, err := s.Append(&e, time.Hour)
				return err
			}
		}},
		{"record, prune 1024", func(b *testing.B) func(int) error {
			s := open(b, "prune")
			s.maxEvents = 1
			return func(i int) error {
				e := decision(logged + i)
				_, err := s.Append(&e, time.Hour)
				return err
			}
		}},
		{"ack 1", ackRange(open, 1)},
		{"ack 100", ackRange(open, 100)},
		{"ack 500", ackRange(open, 500)},
		{"floor", func(b *testing.B) func(int) error {
			s := open(b, "floor")
			return func(i int) error { return s.RaiseFloor(at.Add(time.Duration(i+1) * time.Minute)) }
		}},
		{"passback prune", func(b *testing.B) func(int) error {
			s := open(b, "passback")
			const entries, expired = 50_000, 1_000
			// Entry k was allowed at at+k s; each prune forgets the
			// next 1,000 (a window ending at at+(i+1)·1000 s).
			err := s.update(func(tx *bbolt.Tx) error {
				pb := tx.Bucket(bucketPassback)
				for k := range entries + reps*expired {
					if err := pb.Put(passbackKey("V-01", fmt.Sprintf("%032x", k)), u64(uint64(at.Add(time.Duration(k)*time.Second).UnixNano()))); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			// PrunePassback reads the memory in a read transaction
			// first: only its deletion holds the write lock.
			var cutoff int64
			var keys [][]byte
			before = func(i int) {
				var err error
				cutoff = at.Add(time.Duration((i+1)*expired) * time.Second).UnixNano()
				if keys, err = s.expiredPassback(cutoff); err != nil || len(keys) != expired {
					b.Fatalf("expired entries: %d, %v; want %d", len(keys), err, expired)
				}
			}
			return func(int) error {
				_, err := s.deletePassback(keys, cutoff)
				return err
			}
		}},
		{"trust doc", func(b *testing.B) func(int) error {
			s := open(b, "trust")
			doc := make([]byte, 256<<10)
			return func(i int) error { return s.PutTrustDoc(TrustRoster, uint64(i+1), doc) }
		}},
	}
	for _, w := range writers {
		b.Run(w.name, func(b *testing.B) {
			before = nil
			tx := w.setup(b)
			var d []time.Duration
			for i := range reps {
				if before != nil {
					before(i)
				}
				start := time.Now()
				if err := tx(i); err != nil {
					b.Fatal(err)
				}
				d = append(d, time.Since(start))
			}
			slices.Sort(d)
			ms := func(q int) float64 { return float64(d[(len(d)-1)*q/100].Microseconds()) / 1000 }
			b.Logf("%s: %d transactions: p50 %.2f ms, p90 %.2f ms, max %.2f ms", w.name, len(d), ms(50), ms(90), ms(100))
			b.ReportMetric(ms(50), "p50-ms")
			b.ReportMetric(ms(100), "max-ms")
		})
	}
}

// ackRange is the writer that acks batches of n records of a store with
// reps·n records in its outbox.
func ackRange(open func(*testing.B, string) *Store, n uint64) func(*testing.B) func(int) error {
	return func(b *testing.B) func(int) error {
		s := open(b, fmt.Sprintf("ack%d", n))
		return func(i int) error {
			from := uint64(i)*n + 1
			got, err := s.AckRange(from, from+n-1)
			if err == nil && uint64(got) != n {
				err = fmt.Errorf("acked %d records of %d..%d; want %d", got, from, from+n-1, n)
			}
			return err
		}
	}
}
