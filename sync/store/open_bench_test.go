package store

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// BenchmarkOpenFullLog opens a store whose access log is full
// (DefaultMaxEvents decision events, about 320 MB) with the page cache
// dropped first, as after a power-up (root only: warm otherwise), with the
// whole file checked before Open returns and with BackgroundCheck. For
// the latter it also appends an event every 50 ms while the check runs
// and reports the slowest commit, and how long the check took.
func BenchmarkOpenFullLog(b *testing.B) {
	path := filepath.Join(b.TempDir(), "wicket.db")
	s, err := Open(Options{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	n := uint64(DefaultMaxEvents)
	err = s.db.Update(func(tx *bbolt.Tx) error {
		ev := tx.Bucket(bucketEvents)
		ev.FillPercent = appendFillPercent
		at := time.Unix(1_800_000_000, 0)
		for i := uint64(1); i <= n; i++ {
			e := Event{Seq: i, Type: TypeDecision, At: at.Add(time.Duration(i) * time.Second), Gate: "G-0001", Venue: "V-01", Allow: true,
				Reason: "ok", Voucher: s.HashID(u64(i)), Subject: s.HashSubject(u64(i / 3)), Kind: "vaccination", Class: "adult", Issuer: "GX"}
			data, err := json.Marshal(&e)
			if err != nil {
				return err
			}
			if err := ev.Put(u64(i), data); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := putUint(meta, keySeq, n); err != nil {
			return err
		}
		return putUint(meta, keyEventCount, n)
	})
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	fi, _ := os.Stat(path)
	cold := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0) == nil
	for _, background := range []bool{false, true} {
		name := map[bool]string{false: "full", true: "background"}[background]
		b.Run(name, func(b *testing.B) {
			var open, check, slowest []float64
			for b.Loop() {
				b.StopTimer()
				if cold {
					exec.Command("sync").Run()
					os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0)
				}
				b.StartTimer()
				start := time.Now()
				s, err := Open(Options{Path: path, BackgroundCheck: background})
				if err != nil {
					b.Fatal(err)
				}
				open = append(open, float64(time.Since(start).Microseconds())/1000)
				b.StopTimer()
				if background {
					done := make(chan struct{})
					go func() { s.WaitCheck(); close(done) }()
					worst := time.Duration(0)
					for appending := true; appending; {
						select {
						case <-done:
							appending = false
						default:
						}
						t := time.Now()
						if _, err := s.Append(&Event{Type: TypeSystem, At: time.Now()}, 0); err != nil {
							b.Fatal(err)
						}
						worst = max(worst, time.Since(t))
						// A passage every 50 ms: a very busy gate.
						time.Sleep(50 * time.Millisecond)
					}
					check = append(check, float64(time.Since(start).Milliseconds()))
					slowest = append(slowest, float64(worst.Microseconds())/1000)
				}
				s.Close()
				b.StartTimer()
			}
			b.ReportMetric(medianOf(open), "open-ms")
			b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
			if background {
				b.ReportMetric(medianOf(check), "check-done-ms")
				b.ReportMetric(slices.Max(slowest), "append-max-ms")
			}
		})
	}
}

func medianOf(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
