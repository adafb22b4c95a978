package revset

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"wicket/verifier"
)

func pct(l []time.Duration, p float64) float64 {
	s := slices.Clone(l)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(p*float64(len(s))))].Nanoseconds())
}

// BenchmarkBboltBaseline measures the layout the store used before the
// set (schema 1: one bbolt file, bucket "revoked" of 16-byte
// verifier.EntryKey → 8-byte expiry, bucket "subjects" of EntryKey →
// 33-byte record, each batch one transaction that reads then writes its
// keys in order) at 1M entries: file size per entry, lookup latency over
// random hits and misses, and the time to apply a 100k-entry delta. It is
// kept here so the comparison in docs/revocations.md can be rerun. Run
// with -benchtime 1x.
func BenchmarkBboltBaseline(b *testing.B) {
	const n = 1_000_000
	path := filepath.Join(b.TempDir(), "baseline.db")
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{FreelistType: bbolt.FreelistMapType, NoStatistics: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	base := fileSize(b, path)
	snap := make([]verifier.Entry, n)
	for i := range snap {
		snap[i] = entryFor(i)
	}
	start := time.Now()
	if err := baselineApply(db, snap, true); err != nil {
		b.Fatal(err)
	}
	snapTook := time.Since(start)
	snap = nil
	size1 := fileSize(b, path)
	rng := rand.New(rand.NewPCG(1, 2))
	type q struct{ id, sub []byte }
	qs := make([]q, 1<<16)
	for i := range qs {
		j, k := rng.IntN(n), rng.IntN(n)
		qs[i] = q{id('v', j-j%5), id('s', k-k%5+3+k%2)}
		if rng.IntN(2) == 0 {
			qs[i].id = id('m', j)
		}
		if rng.IntN(2) == 0 {
			qs[i].sub = id('m', k)
		}
	}
	lat := make([]time.Duration, 0, 1<<20)
	i := 0
	for b.Loop() {
		for range 200_000 {
			x := qs[i&(len(qs)-1)]
			t := time.Now()
			rk := verifier.EntryKey(verifier.OpRevoke, x.id)
			sk := verifier.EntryKey(verifier.OpColour, x.sub)
			if err := db.View(func(tx *bbolt.Tx) error {
				_ = tx.Bucket([]byte("revoked")).Get(rk[:])
				_ = tx.Bucket([]byte("subjects")).Get(sk[:])
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			if len(lat) < cap(lat) {
				lat = append(lat, time.Since(t))
			}
			i++
		}
	}
	d := make([]verifier.Entry, 100_000)
	for j := range d {
		d[j] = entryFor(n + j)
	}
	start = time.Now()
	if err := baselineApply(db, d, false); err != nil {
		b.Fatal(err)
	}
	deltaTook := time.Since(start)
	size2 := fileSize(b, path)
	b.ReportMetric(pct(lat, 0.5), "lookup-p50-ns")
	b.ReportMetric(pct(lat, 0.99), "lookup-p99-ns")
	b.ReportMetric(float64(size1-base)/n, "disk-B/entry")
	b.ReportMetric(float64(size2-base)/(n+100_000), "disk-B/entry-after-delta")
	b.ReportMetric(snapTook.Seconds(), "snapshot-1M-s")
	b.ReportMetric(float64(deltaTook.Milliseconds()), "delta-100k-ms")
}

// baselineApply writes entries as the schema-1 store did: one fsynced
// transaction, each key read then written, keys in order (a snapshot into
// fresh buckets filled to 90%).
func baselineApply(db *bbolt.DB, es []verifier.Entry, snapshot bool) error {
	type kv struct {
		bucket string
		k      [16]byte
		v      []byte
	}
	kvs := make([]kv, 0, len(es))
	for _, e := range es {
		if e.Op == verifier.OpRevoke {
			kvs = append(kvs, kv{"revoked", verifier.EntryKey(e.Op, e.Key), binary.BigEndian.AppendUint64(nil, uint64(e.Expires))})
			continue
		}
		v := make([]byte, 33)
		v[0] = byte(e.Colour)
		binary.BigEndian.PutUint64(v[1:], uint64(e.Time))
		binary.BigEndian.PutUint64(v[9:], uint64(e.Expires))
		kvs = append(kvs, kv{"subjects", verifier.EntryKey(e.Op, e.Key), v})
	}
	slices.SortFunc(kvs, func(a, b kv) int {
		if c := strings.Compare(a.bucket, b.bucket); c != 0 {
			return c
		}
		return bytes.Compare(a.k[:], b.k[:])
	})
	return db.Update(func(tx *bbolt.Tx) error {
		for _, name := range []string{"revoked", "subjects"} {
			bk, err := tx.CreateBucketIfNotExists([]byte(name))
			if err != nil {
				return err
			}
			if snapshot {
				bk.FillPercent = 0.9
			}
		}
		for _, x := range kvs {
			bk := tx.Bucket([]byte(x.bucket))
			_ = bk.Get(x.k[:])
			if err := bk.Put(x.k[:], x.v); err != nil {
				return err
			}
		}
		return nil
	})
}

func fileSize(b *testing.B, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}
