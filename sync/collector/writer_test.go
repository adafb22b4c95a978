package collector

import (
	"context"
	"errors"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"wicket/sync/store"
	"wicket/sync/wire"
)

func TestWriteDuplicates(t *testing.T) {
	pool := testPool(t)
	w := NewWriter(pool, testLog(t))
	ctx := context.Background()
	gate := gateName("writer-dup")
	for _, tc := range []struct {
		seqs []uint64
		want int
	}{
		{seqRange(1, 10), 10},
		{seqRange(1, 10), 0}, // a resent batch
		{seqRange(5, 15), 5}, // 5-10 stored, 11-15 new
		{[]uint64{3, 16, 20}, 2},
		{seqRange(1, 20), 3}, // fills the gap 17-19
	} {
		got, err := w.Write(ctx, batch(gate, tc.seqs...))
		if err != nil {
			t.Fatalf("Write(%v): %v", tc.seqs, err)
		}
		if got != tc.want {
			t.Errorf("Write(seqs %d..%d) = %d; want %d", tc.seqs[0], tc.seqs[len(tc.seqs)-1], got, tc.want)
		}
	}
	if n := countRows(t, pool, gate, 0, math.MaxInt64); n != 20 {
		t.Errorf("%d rows; want 20", n)
	}
}

func TestWriteRoundTrip(t *testing.T) {
	t.Run("copy", func(t *testing.T) { testWriteRoundTrip(t, false) })
	t.Run("upsert", func(t *testing.T) { testWriteRoundTrip(t, true) })
}

func testWriteRoundTrip(t *testing.T, upsert bool) {
	pool := testPool(t)
	w := NewWriter(pool, testLog(t))
	w.upsertOnly = upsert
	ctx := context.Background()
	gate := gateName("writer-fields")
	want := batch(gate, 7, 8, 9).Records
	want[1].Warnings = nil
	want[1].Voucher, want[1].Subject = "", "" // stored as the empty bytea
	// Microseconds, as timestamptz keeps them, before 2000 (PostgreSQL's
	// epoch) and before 1970.
	want[0].At = want[0].At.Add(123456 * time.Microsecond)
	want[1].At = time.Date(1969, 7, 20, 20, 17, 40, 5000, time.UTC)
	want[2].At = time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC)
	want[2].Ref, want[2].Celsius = math.MaxInt64, -0.5
	want[2].Warnings = []string{`a"b`, `c\d`, "{x,y}", "NULL", "", " sp ", "é€", `\"`}
	want[0].Temperature, want[0].Celsius = "fever", 38.4
	want[1].Temperature = "normal"
	if _, err := w.Write(ctx, &wire.Records{Gate: gate, Records: want}); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT gate, seq, type, at, venue, allow, reason, colour, kind, class,
		issuer, encode(voucher, 'hex'), encode(subject, 'hex'), alert, attendant, warnings, ref, detail, temperature, celsius, received_at
		FROM wicket_records WHERE gate = $1 AND voucher IS NOT NULL AND subject IS NOT NULL ORDER BY seq`, gate)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []store.Event
	for rows.Next() {
		var e store.Event
		var seq, ref int64
		var received time.Time
		if err := rows.Scan(&e.Gate, &seq, &e.Type, &e.At, &e.Venue, &e.Allow, &e.Reason, &e.Colour, &e.Kind, &e.Class,
			&e.Issuer, &e.Voucher, &e.Subject, &e.Alert, &e.Attendant, &e.Warnings, &ref, &e.Detail,
			&e.Temperature, &e.Celsius, &received); err != nil {
			t.Fatal(err)
		}
		if time.Since(received) > time.Hour || time.Until(received) > time.Hour {
			t.Errorf("received_at = %v; want about now", received)
		}
		e.Seq, e.Ref = uint64(seq), uint64(ref)
		got = append(got, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d rows; want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.At.Equal(w.At) {
			t.Errorf("row %d: at = %v; want %v", i, g.At, w.At)
		}
		if len(g.Warnings) != len(w.Warnings) || !slices.Equal(g.Warnings, w.Warnings) {
			t.Errorf("row %d: warnings = %q; want %q", i, g.Warnings, w.Warnings)
		}
		g.At, w.At, g.Warnings, w.Warnings = time.Time{}, time.Time{}, nil, nil
		if !reflect.DeepEqual(g, w) {
			t.Errorf("row %d = %+v; want %+v", i, g, w)
		}
	}
}

func TestWriteInvalid(t *testing.T) {
	pool := testPool(t)
	w := NewWriter(pool, testLog(t))
	gate := gateName("writer-invalid")
	for _, tc := range []struct {
		name   string
		mutate func(r *wire.Records)
	}{
		{"other gate", func(r *wire.Records) { r.Records[1].Gate = "elsewhere" }},
		{"seq 0", func(r *wire.Records) { r.Records[0].Seq = 0 }},
		{"seq over bigint", func(r *wire.Records) { r.Records[2].Seq = math.MaxInt64 + 1 }},
		{"ref over bigint", func(r *wire.Records) { r.Records[2].Ref = math.MaxUint64 }},
		{"NUL in text", func(r *wire.Records) { r.Records[0].Reason = "a\x00b" }},
		{"NUL in warning", func(r *wire.Records) { r.Records[0].Warnings = []string{"\x00"} }},
		{"voucher not hex", func(r *wire.Records) { r.Records[1].Voucher = "0123456789abcdef0123456789abcdeg" }},
		{"voucher too short", func(r *wire.Records) { r.Records[1].Voucher = "0123456789abcdef" }},
		{"voucher too long", func(r *wire.Records) { r.Records[1].Voucher += "00" }},
		{"subject not hex", func(r *wire.Records) { r.Records[2].Subject = "V12345" }},
		{"bad UTF-8", func(r *wire.Records) { r.Records[1].Venue = "\xff\xfe" }},
		{"too many", func(r *wire.Records) { *r = *batch(gate, seqRange(1, MaxBatch+1)...) }},
	} {
		r := batch(gate, 1, 2, 3)
		tc.mutate(r)
		n, err := w.Write(context.Background(), r)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Write = %d, %v; want ErrInvalid", tc.name, n, err)
		}
	}
	if n := countRows(t, pool, gate, 0, math.MaxInt64); n != 0 {
		t.Errorf("%d rows stored from invalid batches; want 0", n)
	}
}

func TestWriteDatabaseDown(t *testing.T) {
	w := NewWriter(openPool(t, "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2"), testLog(t))
	_, err := w.Write(context.Background(), batch("writer-down", 1))
	if err == nil || errors.Is(err, ErrInvalid) {
		t.Fatalf("Write with PostgreSQL down = %v; want a transient error", err)
	}
}

// Several writers storing overlapping batches of one gate at once insert
// each record exactly once between them.
func TestWriteConcurrentOverlap(t *testing.T) {
	pool := testPool(t)
	w := NewWriter(pool, testLog(t))
	gate := gateName("writer-overlap")
	const writers, per = 8, 50
	counts := make([]int, writers)
	errs := make([]error, writers)
	done := make(chan struct{})
	for i := range writers {
		go func() {
			defer func() { done <- struct{}{} }()
			for k := range per {
				from := uint64(k*10 + 1)
				n, err := w.Write(context.Background(), batch(gate, seqRange(from, from+29)...))
				if err != nil {
					errs[i] = err
					return
				}
				counts[i] += n
			}
		}()
	}
	for range writers {
		<-done
	}
	total := 0
	for i := range writers {
		if errs[i] != nil {
			t.Fatalf("writer %d: %v", i, errs[i])
		}
		total += counts[i]
	}
	want := (per-1)*10 + 30
	if total != want {
		t.Errorf("writers inserted %d records in total; want %d", total, want)
	}
	if n := countRows(t, pool, gate, 0, math.MaxInt64); n != want {
		t.Errorf("%d rows; want %d", n, want)
	}
}

// BenchmarkWrite stores fresh batches of 100 records, one at a time, and
// reports records/s.
func BenchmarkWrite(b *testing.B) {
	pool := testPool(b)
	w := NewWriter(pool, testLog(b))
	ctx := context.Background()
	gate := gateName("bench")
	const size = 100
	var seq uint64
	for b.Loop() {
		r := batch(gate, seqRange(seq+1, seq+size)...)
		seq += size
		if n, err := w.Write(ctx, r); err != nil || n != size {
			b.Fatalf("Write = %d, %v; want %d new", n, err, size)
		}
	}
	b.ReportMetric(float64(seq)/b.Elapsed().Seconds(), "records/s")
}

// WriteBatches copies batches in together; a record stored already
// makes the COPY fail, and then the batches are stored again skipping
// those records. Whatever the mix (a batch resent whole, one half of
// which is stored, the same batch twice in one call, new batches), every
// record is stored once, the stored ones unchanged, and the count of new
// ones is right.
func TestWriteBatchesDuplicates(t *testing.T) {
	pool := testPool(t)
	w := NewWriter(pool, testLog(t))
	ctx := context.Background()
	a, b := gateName("batches-a"), gateName("batches-b")
	if n, err := w.Write(ctx, batch(a, seqRange(1, 10)...)); err != nil || n != 10 {
		t.Fatalf("Write = %d, %v; want 10 new", n, err)
	}
	resent := batch(a, seqRange(1, 10)...)
	half := batch(a, seqRange(6, 15)...)
	for _, r := range []*wire.Records{resent, half} {
		for i := range r.Records {
			r.Records[i].Detail = "sent again"
		}
	}
	for _, tc := range []struct {
		name string
		rs   []*wire.Records
		want int
	}{
		{"new", []*wire.Records{batch(a, seqRange(21, 30)...), batch(b, seqRange(1, 10)...)}, 20},
		{"resent", []*wire.Records{resent}, 0},
		{"mixed", []*wire.Records{batch(a, seqRange(31, 40)...), resent, half, batch(b, seqRange(11, 20)...), batch(b, seqRange(11, 20)...)}, 10 + 5 + 10},
		{"all stored", []*wire.Records{half, resent, batch(b, seqRange(1, 20)...)}, 0},
	} {
		got, err := w.WriteBatches(ctx, tc.rs)
		if err != nil || got != tc.want {
			t.Errorf("%s: WriteBatches = %d, %v; want %d new", tc.name, got, err, tc.want)
		}
	}
	for _, want := range []struct {
		gate     string
		from, to uint64
		n        int
	}{{a, 1, 15, 15}, {a, 16, 20, 0}, {a, 21, 40, 20}, {b, 1, 20, 20}} {
		if n := countRows(t, pool, want.gate, want.from, want.to); n != want.n {
			t.Errorf("gate %s seqs %d..%d: %d rows; want %d", want.gate, want.from, want.to, n, want.n)
		}
	}
	var doubled, changed int
	err := pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM (SELECT 1 FROM wicket_records WHERE gate = ANY($1) GROUP BY gate, seq HAVING count(*) > 1) d),
		(SELECT count(*) FROM wicket_records WHERE gate = $2 AND seq <= 10 AND detail <> 'passed')`, []string{a, b}, a).Scan(&doubled, &changed)
	if err != nil {
		t.Fatal(err)
	}
	if doubled != 0 || changed != 0 {
		t.Errorf("%d records stored twice, %d stored records changed by a resend; want 0, 0", doubled, changed)
	}
}

// A batch PostgreSQL refuses (here a record's text is not UTF-8) makes
// WriteBatches store none of the batches given with it, and say
// ErrInvalid; the collector then stores each on its own.
func TestWriteBatchesInvalid(t *testing.T) {
	pool := testPool(t)
	w := NewWriter(pool, testLog(t))
	gate := gateName("batches-invalid")
	bad := batch(gate, 11, 12)
	bad.Records[1].Venue = "\xff\xfe"
	_, err := w.WriteBatches(context.Background(), []*wire.Records{batch(gate, 1, 2), bad})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("WriteBatches = %v; want ErrInvalid", err)
	}
	if n := countRows(t, pool, gate, 0, math.MaxInt64); n != 0 {
		t.Errorf("%d rows stored; want 0", n)
	}
}
