package collector

import (
	"context"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"wicket/sync/wire"
)

// migrateThrough applies the collector's migrations up to version last
// only, as an older collector did.
func migrateThrough(t *testing.T, pool *pgxpool.Pool, last int) {
	t.Helper()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	older := fstest.MapFS{}
	for _, m := range ms[:last] {
		older["migrations/"+m.Name] = &fstest.MapFile{Data: []byte(m.SQL)}
	}
	set := schema
	set.FS = older
	if err := set.Apply(context.Background(), pool); err != nil {
		t.Fatalf("migrations 1 to %d: %v", last, err)
	}
}

// dayRecords returns records of gate with seqs from, from+1, ... at the
// given times.
func dayRecords(gate string, from uint64, at ...time.Time) *wire.Records {
	r := batch(gate, seqRange(from, from+uint64(len(at))-1)...)
	for i := range r.Records {
		r.Records[i].At = at[i]
	}
	return r
}

// rowsDigest is an md5 of every column of gate's rows in seq order, so a
// migration that changed any value is seen. The hashes count as hex,
// whether stored as text (before 0005_hash_bytes.sql) or as bytea.
func rowsDigest(t *testing.T, pool *pgxpool.Pool, gate string) (n int, digest string) {
	t.Helper()
	const cols = `gate, seq, type, at, venue, allow, reason, colour, kind, class, issuer,
		ltrim(voucher::text, '\x'), ltrim(subject::text, '\x'), alert, attendant, warnings, ref, detail, received_at, temperature, celsius`
	err := pool.QueryRow(context.Background(),
		"SELECT count(*), md5(coalesce(string_agg(row("+cols+")::text, '|' ORDER BY seq), '')) FROM wicket_records WHERE gate = $1", gate).Scan(&n, &digest)
	if err != nil {
		t.Fatal(err)
	}
	return n, digest
}

// partitionOf maps each seq of gate to the table that holds it.
func partitionOf(t *testing.T, pool *pgxpool.Pool, gate string) map[int64]string {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT seq, tableoid::regclass::text FROM wicket_records WHERE gate = $1", gate)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[int64]string{}
	for rows.Next() {
		var seq int64
		var table string
		if err := rows.Scan(&seq, &table); err != nil {
			t.Fatal(err)
		}
		m[seq] = table
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// textHashes is sql (upsertSQL) with the hashes as text, as the writer
// stored them before 0005_hash_bytes.sql; textHashArrays its arguments.
func textHashes(sql string) string {
	const bytea, text = "$12::bytea[], $13::bytea[]", "$12::text[], $13::text[]"
	if !strings.Contains(sql, bytea) {
		panic("upsertSQL has no " + bytea)
	}
	return strings.Replace(sql, bytea, text, 1)
}

func textHashArrays(t *testing.T, rs []wire.Record) []any {
	t.Helper()
	rs = slices.Clone(rs)
	voucher, subject := make([]string, len(rs)), make([]string, len(rs))
	for i := range rs {
		voucher[i], subject[i] = rs[i].Voucher, rs[i].Subject
		rs[i].Voucher, rs[i].Subject = "", ""
	}
	args, err := columnArrays(rs)
	if err != nil {
		t.Fatal(err)
	}
	args[11], args[12] = voucher, subject
	return args
}

func partitionName(t time.Time) string { return "wicket_records_" + t.UTC().Format("20060102") }

// An installation of before partitioning migrates: every row is moved,
// unchanged, into the partition of its day (or the default partition for
// a time outside the window), and resending them afterwards stores
// nothing twice.
func TestMigrateMovesRowsIntoPartitions(t *testing.T) {
	ctx := context.Background()
	pool := openPool(t, freshDatabase(t))
	migrateThrough(t, pool, 3)

	now := time.Now().UTC()
	times := []time.Time{
		now.Add(-72 * time.Hour), now.Add(-71 * time.Hour), now.Add(-24 * time.Hour), now,
		time.Unix(0, 0).UTC(),        // a gate that booted without a clock
		now.Add(30 * 24 * time.Hour), // a clock a month ahead
	}
	gate := "migrated-gate"
	old := dayRecords(gate, 1, times...)
	old.Records[0].Temperature, old.Records[0].Celsius = "fever", 38.4
	// The writer of before: ON CONFLICT (gate, seq), no partitions, hashes
	// as text.
	sql := strings.Replace(textHashes(upsertSQL), "(gate, seq, at)", "(gate, seq)", 1)
	if _, err := pool.Exec(ctx, sql, textHashArrays(t, old.Records)...); err != nil {
		t.Fatalf("insert into the unpartitioned table: %v", err)
	}
	n0, digest0 := rowsDigest(t, pool, gate)

	if err := Migrate(ctx, pool); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	checkSchema(t, pool)
	if n, digest := rowsDigest(t, pool, gate); n != n0 || digest != digest0 || n != len(times) {
		t.Fatalf("after migrating: %d rows, digest %s; want %d rows, digest %s as before", n, digest, n0, digest0)
	}
	var kind string
	if err := pool.QueryRow(ctx, "SELECT relkind::text FROM pg_class WHERE oid = 'wicket_records'::regclass").Scan(&kind); err != nil || kind != "p" {
		t.Fatalf("wicket_records relkind = %q, %v; want p (partitioned)", kind, err)
	}
	want := map[int64]string{
		1: partitionName(times[0]), 2: partitionName(times[1]), 3: partitionName(times[2]), 4: partitionName(times[3]),
		5: "wicket_records_default", 6: "wicket_records_default",
	}
	got := partitionOf(t, pool, gate)
	for seq, table := range want {
		if got[seq] != table {
			t.Errorf("seq %d in %s; want %s", seq, got[seq], table)
		}
	}
	// Created ahead: tomorrow and a week on.
	for _, d := range []int{1, 7} {
		var exists bool
		name := partitionName(now.AddDate(0, 0, d))
		if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name).Scan(&exists); err != nil || !exists {
			t.Errorf("partition %s exists = %v, %v; want true", name, exists, err)
		}
	}

	w := NewWriter(pool, testLog(t))
	if n, err := w.Write(ctx, old); err != nil || n != 0 {
		t.Fatalf("resending the migrated records: Write = %d, %v; want 0, nil", n, err)
	}
	if n, _ := rowsDigest(t, pool, gate); n != len(times) {
		t.Fatalf("%d rows after the resend; want %d", n, len(times))
	}
}

// A day without a partition gets one from the first Write of its records;
// rows of that day waiting in the default partition move into it, and a
// resend of any of them stores nothing twice. Times outside the window
// stay in the default partition and are stored all the same.
func TestWritePartitionsOnDemand(t *testing.T) {
	ctx := context.Background()
	pool := openPool(t, freshDatabase(t))
	if err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	gate := "late-gate"
	late := time.Now().UTC().AddDate(0, 0, -20) // a gate offline for 20 days
	name := partitionName(late)
	// A row of that day that arrived while its partition could not be
	// created: it waits in the default partition.
	first := dayRecords(gate, 1, late)
	args, err := columnArrays(first.Records)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, upsertSQL, args...); err != nil {
		t.Fatal(err)
	}
	if got := partitionOf(t, pool, gate)[1]; got != "wicket_records_default" {
		t.Fatalf("seq 1 in %s before the partition exists; want wicket_records_default", got)
	}

	w := NewWriter(pool, testLog(t))
	far := time.Date(1999, 12, 31, 23, 0, 0, 0, time.UTC)
	r := dayRecords(gate, 1, late, late.Add(time.Second), far)
	if n, err := w.Write(ctx, r); err != nil || n != 2 {
		t.Fatalf("Write = %d, %v; want 2 (seq 1 is stored already), nil", n, err)
	}
	got := partitionOf(t, pool, gate)
	if len(got) != 3 || got[1] != name || got[2] != name || got[3] != "wicket_records_default" {
		t.Fatalf("rows in %v; want seqs 1 and 2 in %s, 3 in wicket_records_default", got, name)
	}
	// A second Writer (another collector) sees the partition exists.
	if n, err := NewWriter(pool, testLog(t)).Write(ctx, r); err != nil || n != 0 {
		t.Fatalf("resend by another writer: Write = %d, %v; want 0, nil", n, err)
	}
	if n := countRows(t, pool, gate, 1, 3); n != 3 {
		t.Fatalf("%d rows; want 3", n)
	}
}

// Collectors storing the first records of a new day at once create its
// partition once, and store every record once.
func TestWritePartitionsConcurrently(t *testing.T) {
	ctx := context.Background()
	pool := openPool(t, freshDatabase(t))
	if err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	day := time.Now().UTC().AddDate(0, 0, -40)
	const writers = 4
	errs := make(chan error, writers)
	for i := range writers {
		go func() {
			gate := gateName("concurrent-day")
			w := NewWriter(openPool(t, pool.Config().ConnString()), testLog(t))
			_, err := w.Write(ctx, dayRecords(gate, 1, day, day.Add(time.Duration(i)*time.Millisecond)))
			errs <- err
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Errorf("Write: %v", err)
		}
	}
	var inPartition, inDefault int
	err := pool.QueryRow(ctx, "SELECT count(*) FILTER (WHERE tableoid = to_regclass($1)), count(*) FILTER (WHERE tableoid = 'wicket_records_default'::regclass) FROM wicket_records",
		partitionName(day)).Scan(&inPartition, &inDefault)
	if err != nil || inPartition != 2*writers || inDefault != 0 {
		t.Fatalf("rows in %s: %d, in the default partition: %d (err %v); want %d and 0", partitionName(day), inPartition, inDefault, err, 2*writers)
	}
}

func TestDayOf(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want int64
	}{
		{time.Unix(0, 0), 0},
		{time.Unix(secondsPerDay-1, 0), 0},
		{time.Unix(secondsPerDay, 0), 1},
		{time.Unix(-1, 0), -1},
		{time.Unix(-secondsPerDay, 0), -1},
		{time.Unix(-secondsPerDay-1, 0), -2},
		{time.Date(2026, 12, 6, 23, 59, 59, 0, time.FixedZone("CET", 3600)), 20793},
	} {
		if got := dayOf(tc.t); got != tc.want {
			t.Errorf("dayOf(%v) = %d; want %d", tc.t, got, tc.want)
		}
	}
}
