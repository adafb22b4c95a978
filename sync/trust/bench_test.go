package trust

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"wicket/decoder"
	"wicket/sync/store"
	"wicket/sync/store/storetest"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// BenchmarkSnapshotParts applies a multi-part snapshot the way a gate
// receives one: every signed part (16384 entries, as wicketctl snapshot
// writes them) verified, parsed and streamed into the store, the last one
// putting it in force. 1M entries by default; WICKET_TRUST_SNAPSHOT sets
// the number (10000000 for the 10M figure in docs/revocations.md).
func BenchmarkSnapshotParts(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("WICKET_TRUST_SNAPSHOT")); err == nil && v > 0 {
		n = v
	}
	const per = 16384
	f := verifiertest.New(b)
	now := verifiertest.Epoch
	parts := uint32((n + per - 1) / per)
	docs := make([][]byte, parts)
	bytes := 0
	for p := range parts {
		bt := verifier.Batch{Version: 2, IssuedAt: now.Add(-time.Hour), Part: p, Parts: parts}
		for i := int(p) * per; i < min(n, int(p+1)*per); i++ {
			e := verifier.Entry{Op: verifier.OpRevoke, Key: []byte(fmt.Sprintf("entry-%010d", i)), Time: now.Unix() - 60, Expires: now.Unix() + 86400*30}
			switch i % 5 {
			case 3:
				e.Op, e.Colour = verifier.OpColour, decoder.ColourYellow
			case 4:
				e.Op = verifier.OpVoidBefore
			}
			bt.Entries = append(bt.Entries, e)
		}
		doc, err := verifier.SignBatch(f.Root, bt)
		if err != nil {
			b.Fatal(err)
		}
		docs[p] = doc
		bytes += len(doc)
	}
	for b.Loop() {
		b.StopTimer()
		st := storetest.Open(b, store.Options{})
		v, err := verifier.New(f.TClock, st, &f.Policy)
		if err != nil {
			b.Fatal(err)
		}
		a := New(f.Roots(), st, v, slog.New(slog.DiscardHandler))
		a.clk = clockwork.NewFakeClockAt(now)
		b.StartTimer()
		start := time.Now()
		for i, d := range docs {
			res, err := a.Batch(d, "bench")
			if want := map[bool]Result{true: Applied, false: Held}[i == len(docs)-1]; res != want {
				b.Fatalf("part %d: %v, %v", i, res, err)
			}
		}
		b.ReportMetric(time.Since(start).Seconds(), "apply-s")
		b.StopTimer()
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(bytes)/float64(n), "wire-B/entry")
}
