package collector

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"wicket/internal/clock"
	"wicket/sync/wire"
)

// ErrInvalid marks a batch that can never be stored (a seq out of range,
// a record of another gate, text PostgreSQL refuses). Retrying it is
// pointless; every other Write error may be transient.
var ErrInvalid = errors.New("invalid records")

// recordColumns are the wicket_records columns Write fills, in the order
// of columnArrays and copyRows.
var recordColumns = []string{
	"gate", "seq", "type", "at", "venue", "allow", "reason", "colour", "kind", "class",
	"issuer", "voucher", "subject", "alert", "attendant", "warnings", "ref", "detail",
	"temperature", "celsius",
}

// Writer stores batches of access records in wicket_records. It is safe
// for concurrent use.
type Writer struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	// clock says which day is today, and so which is tomorrow.
	clock clock.Clock

	mu sync.Mutex
	// days are the UTC days (days since 1970) whose partition is known to
	// exist, and those wicket_records_partition left to the default
	// partition, with the day that was so (asked again on another day).
	days map[int64]dayState
	// partitionErr is set once a failure to create a partition is logged.
	partitionErr atomic.Bool
	// upsertOnly stores every batch with upsertSQL, as Writer did before
	// COPY; the benchmarks compare the two.
	upsertOnly bool
}

// dayState is what a Writer knows of one day's partition.
type dayState struct {
	exists  bool
	checked int64 // the day wicket_records_partition said no
}

// NewWriter returns a Writer on pool, whose database Migrate has set up.
// A nil log discards.
func NewWriter(pool *pgxpool.Pool, log *slog.Logger) *Writer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Writer{pool: pool, log: log.With("component", "collector.writer"), clock: clock.Real(), days: map[int64]dayState{}}
}

// Write stores the records of r in one transaction and returns how many
// were new; it is WriteBatches of r alone.
func (w *Writer) Write(ctx context.Context, r *wire.Records) (inserted int, err error) {
	return w.WriteBatches(ctx, []*wire.Records{r})
}

// WriteBatches stores the records of rs in one transaction and returns
// how many were new. It is idempotent: a record whose (gate, seq, at) is
// already stored is skipped, not updated, so a resent batch inserts
// nothing, and a batch of which a part is stored inserts the rest.
//
// The records are copied in (COPY, see copyRecords), which costs
// PostgreSQL less than the INSERT ... ON CONFLICT statement per row. A
// record stored already makes the COPY fail with a unique violation and
// store nothing; the records are then stored with upsertSQL, which skips
// the stored ones. Duplicates come only from batches delivered again
// (a lost ack, a collector that died before acking), so the second
// statement is rare.
//
// It blocks for one round trip to PostgreSQL and one commit (two after a
// duplicate), and before that, the first time it sees a day (or on the
// first write of a day, for the next day), for one more to create the
// day's partition (see partitions). Records are stored even when that
// fails: their day's rows wait in the default partition until the
// partition is created.
//
// On error nothing is stored. An error wrapping ErrInvalid means the
// batches can never be stored together (one of them may on its own);
// any other error (PostgreSQL unreachable, ctx done) may go away on
// retry.
func (w *Writer) WriteBatches(ctx context.Context, rs []*wire.Records) (inserted int, err error) {
	return w.writeBatches(ctx, rs, false)
}

// writeBatches is WriteBatches; checked says that check found every
// batch of rs valid already (the collector checks each message as it
// takes it), so that it is not run again for every retry.
func (w *Writer) writeBatches(ctx context.Context, rs []*wire.Records, checked bool) (inserted int, err error) {
	rs = slices.DeleteFunc(slices.Clone(rs), func(r *wire.Records) bool { return r == nil || len(r.Records) == 0 })
	if len(rs) == 0 {
		return 0, nil
	}
	// In gate and seq order, so that concurrent writes of the same records
	// wait for each other's keys in one order, never in a cycle.
	slices.SortStableFunc(rs, func(a, b *wire.Records) int {
		return cmp.Or(strings.Compare(a.Gate, b.Gate), cmp.Compare(a.Records[0].Seq, b.Records[0].Seq))
	})
	n := 0
	for _, r := range rs {
		if !checked {
			if err := check(r); err != nil {
				return 0, fmt.Errorf("write records of gate %q: %w: %w", r.Gate, ErrInvalid, err)
			}
		}
		w.partitions(ctx, r)
		n += len(r.Records)
	}
	if w.upsertOnly {
		inserted, err = w.upsert(ctx, rs)
	} else {
		inserted, err = w.copyRecords(ctx, rs, n)
		if uniqueViolation(err) {
			w.log.Debug("records stored already; storing the rest", "batches", len(rs), "records", n)
			inserted, err = w.upsert(ctx, rs)
		}
	}
	if err != nil {
		if permanent(err) {
			err = fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return 0, fmt.Errorf("write %d records of %d batches (first gate %q): %w", n, len(rs), rs[0].Gate, err)
	}
	w.log.Debug("stored", "batches", len(rs), "records", n, "inserted", inserted)
	return inserted, nil
}

// copyRecords copies the n records of rs into wicket_records with one
// COPY (binary, copyRows), which is one transaction: all are stored or
// none.
func (w *Writer) copyRecords(ctx context.Context, rs []*wire.Records, n int) (int, error) {
	b := copyBuffers.Get().(*bytes.Buffer)
	b.Reset()
	if err := copyRows(b, rs); err != nil {
		copyBuffers.Put(b)
		return 0, err
	}
	conn, err := w.pool.Acquire(ctx)
	if err != nil {
		copyBuffers.Put(b)
		return 0, err
	}
	defer conn.Release()
	tag, err := conn.Conn().PgConn().CopyFrom(ctx, b, copySQL)
	if err != nil {
		// pgconn's CopyFrom returns on a broken connection or a server
		// error without waiting for its goroutine that reads b, so b
		// is left to the garbage collector, not reused.
		return 0, err
	}
	copyBuffers.Put(b)
	if copied := tag.RowsAffected(); int(copied) != n {
		return 0, fmt.Errorf("copied %d records of %d", copied, n)
	}
	return n, nil
}

// upsert stores rs with upsertSQL, in one statement, skipping the
// records stored already.
func (w *Writer) upsert(ctx context.Context, rs []*wire.Records) (int, error) {
	var all []wire.Record
	if len(rs) == 1 {
		all = rs[0].Records
	} else {
		for _, r := range rs {
			all = append(all, r.Records...)
		}
	}
	args, err := columnArrays(all)
	if err != nil {
		return 0, err
	}
	tag, err := w.pool.Exec(ctx, upsertSQL, args...)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// hashBytes is the size of a voucher or subject hash (the gate's HashID
// and HashSubject: 16 bytes, sent as 32 hex digits), as the bytea columns
// of wicket_records hold it (0005_hash_bytes.sql).
const hashBytes = 16

// validHash reports whether s is a hash as a gate sends it: empty (no
// voucher or subject) or 2*hashBytes hex digits.
func validHash(s string) bool {
	if s == "" {
		return true
	}
	var b [hashBytes]byte
	_, err := appendHash(b[:0], s)
	return err == nil
}

// appendHash appends the bytes of the hex hash s to dst: none for an
// empty s (the empty bytea, never NULL, where dst is not nil).
func appendHash(dst []byte, s string) ([]byte, error) {
	if len(s) != 0 && len(s) != 2*hashBytes {
		return dst, fmt.Errorf("hash of %d bytes, not %d hex digits", len(s), 2*hashBytes)
	}
	return hex.AppendDecode(dst, []byte(s))
}

// uniqueViolation reports whether err is PostgreSQL's unique_violation
// (23505): a record of the statement is stored already.
func uniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// check finds what PostgreSQL would refuse or store wrongly, before a
// round trip: a batch over MaxBatch, records of another gate, seqs or refs
// beyond bigint, hashes that are not hex, NUL bytes in text.
func check(r *wire.Records) error {
	if len(r.Records) > MaxBatch {
		return fmt.Errorf("%d records, over %d", len(r.Records), MaxBatch)
	}
	if r.Gate == "" {
		return errors.New("no gate")
	}
	for i := range r.Records {
		e := &r.Records[i]
		switch {
		case e.Gate != r.Gate:
			return fmt.Errorf("record of gate %q in the batch of gate %q", e.Gate, r.Gate)
		case e.Seq == 0 || e.Seq > math.MaxInt64:
			return fmt.Errorf("seq %d out of range", e.Seq)
		case e.Ref > math.MaxInt64:
			return fmt.Errorf("seq %d: ref %d out of range", e.Seq, e.Ref)
		case math.IsNaN(e.Celsius) || math.IsInf(e.Celsius, 0):
			return fmt.Errorf("seq %d: celsius %v", e.Seq, e.Celsius)
		case !validHash(e.Voucher):
			return fmt.Errorf("seq %d: voucher hash is not %d hex digits", e.Seq, 2*hashBytes)
		case !validHash(e.Subject):
			return fmt.Errorf("seq %d: subject hash is not %d hex digits", e.Seq, 2*hashBytes)
		}
		texts := [...]string{e.Type, e.Venue, e.Reason, e.Colour, e.Kind, e.Class, e.Issuer, e.Detail, e.Temperature}
		for _, s := range texts {
			if strings.IndexByte(s, 0) >= 0 {
				return fmt.Errorf("seq %d: NUL byte in text", e.Seq)
			}
		}
		for _, s := range e.Warnings {
			if strings.IndexByte(s, 0) >= 0 {
				return fmt.Errorf("seq %d: NUL byte in a warning", e.Seq)
			}
		}
	}
	return nil
}

// permanent reports whether err is PostgreSQL refusing the data itself
// (SQLSTATE classes 22, data exception, and 23, integrity constraint
// violation): the same batch would fail again.
func permanent(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23")
}

// secondsPerDay turns Unix seconds into UTC days.
const secondsPerDay = 24 * 60 * 60

// dayOf is the UTC day of t, in days since 1970 (negative before).
func dayOf(t time.Time) int64 {
	s := t.Unix()
	d := s / secondsPerDay
	if s%secondsPerDay < 0 {
		d--
	}
	return d
}

// partitions makes sure the days of r's records, and tomorrow, have their
// partitions, asking wicket_records_partition (0004_partitioned.sql) for
// each day this Writer has not seen yet. It only logs failures: the
// records are stored in the default partition meanwhile, and the day is
// asked for again on the next Write.
func (w *Writer) partitions(ctx context.Context, r *wire.Records) {
	today := dayOf(w.clock.Now())
	var missing []int64
	w.mu.Lock()
	want := func(day int64) {
		if st, ok := w.days[day]; ok && (st.exists || st.checked == today) {
			return
		}
		if !slices.Contains(missing, day) {
			missing = append(missing, day)
		}
	}
	want(today + 1)
	for i := range r.Records {
		want(dayOf(r.Records[i].At))
	}
	w.mu.Unlock()
	for _, day := range missing {
		var exists bool
		err := w.pool.QueryRow(ctx, "SELECT wicket_records_partition($1)", time.Unix(day*secondsPerDay, 0).UTC()).Scan(&exists)
		if err != nil {
			if ctx.Err() == nil && w.partitionErr.CompareAndSwap(false, true) {
				w.log.Warn("cannot create the partition of a day; its records go to wicket_records_default until it can (is collector-role.sql up to date?)",
					"day", time.Unix(day*secondsPerDay, 0).UTC().Format(time.DateOnly), "err", err)
			}
			return
		}
		w.mu.Lock()
		w.days[day] = dayState{exists: exists, checked: today}
		w.mu.Unlock()
		if exists {
			w.log.Debug("partition ready", "day", time.Unix(day*secondsPerDay, 0).UTC().Format(time.DateOnly))
		}
	}
}

// upsertSQL stores records passed as one array per column
// (columnArrays), unnested into rows, skipping those stored already. A
// single statement commits on its own, so it is one transaction and one
// round trip, and its text is the same for every batch, so each
// connection prepares it once. It is what Writer stores with after a COPY
// found a record stored already; measured against COPY in
// docs/BENCHMARKS.md ("Records in PostgreSQL").
var upsertSQL = func() string {
	types := []string{"text", "bigint", "text", "timestamptz", "text", "boolean", "text", "text", "text", "text",
		"text", "bytea", "bytea", "boolean", "boolean", "text", "bigint", "text", "text", "double precision"}
	var params, cols []string
	for i, t := range types {
		params = append(params, fmt.Sprintf("$%d::%s[]", i+1, t))
		c := recordColumns[i]
		if c == "warnings" {
			c = "warnings::text[]"
		}
		cols = append(cols, c)
	}
	return "INSERT INTO wicket_records (" + strings.Join(recordColumns, ", ") + ") SELECT " + strings.Join(cols, ", ") +
		" FROM unnest(" + strings.Join(params, ", ") + ") AS t(" + strings.Join(recordColumns, ", ") + ")" +
		" ON CONFLICT (gate, seq, at) DO NOTHING"
}()

// columnArrays is the batch as one slice per column, in recordColumns
// order, the warnings of each record as an array literal and the hashes
// in binary (empty, not NULL, where a record has none).
func columnArrays(rs []wire.Record) ([]any, error) {
	n := len(rs)
	gate, typ, venue, reason, colour, kind, class, issuer, warnings, detail, temperature :=
		make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	voucher, subject := make([][]byte, n), make([][]byte, n)
	hashes := make([]byte, 0, 2*hashBytes*n)
	seq, ref := make([]int64, n), make([]int64, n)
	at := make([]time.Time, n)
	allow, alert, attendant := make([]bool, n), make([]bool, n), make([]bool, n)
	celsius := make([]float64, n)
	for i := range rs {
		e := &rs[i]
		gate[i], seq[i], typ[i], at[i], venue[i], allow[i], reason[i], colour[i], kind[i], class[i] =
			e.Gate, int64(e.Seq), e.Type, e.At, e.Venue, e.Allow, e.Reason, e.Colour, e.Kind, e.Class
		issuer[i], alert[i], attendant[i], warnings[i], ref[i], detail[i] =
			e.Issuer, e.Alert, e.Attendant, arrayLiteral(e.Warnings), int64(e.Ref), e.Detail
		temperature[i], celsius[i] = e.Temperature, e.Celsius
		// Within the capacity: hashes never moves.
		v := len(hashes)
		var err error
		if hashes, err = appendHash(hashes, e.Voucher); err != nil {
			return nil, fmt.Errorf("seq %d: voucher: %w", e.Seq, err)
		}
		s := len(hashes)
		if hashes, err = appendHash(hashes, e.Subject); err != nil {
			return nil, fmt.Errorf("seq %d: subject: %w", e.Seq, err)
		}
		voucher[i], subject[i] = hashes[v:s:s], hashes[s:len(hashes):len(hashes)]
	}
	return []any{gate, seq, typ, at, venue, allow, reason, colour, kind, class,
		issuer, voucher, subject, alert, attendant, warnings, ref, detail, temperature, celsius}, nil
}

// arrayLiteral is ss as a PostgreSQL array literal, each element quoted.
func arrayLiteral(ss []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for _, c := range []byte(s) {
			if c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}
