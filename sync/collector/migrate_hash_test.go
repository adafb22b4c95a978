package collector

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Migrating to the hashes in binary (0005_hash_bytes.sql) keeps every
// row: hex hashes become their bytes, empty ones the empty bytea, and a
// value that is not hex its UTF-8 bytes. Afterwards a resend stores
// nothing twice, new day partitions attach, and a voucher's records are
// found through the voucher index.
func TestMigrateHashesToBytes(t *testing.T) {
	ctx := context.Background()
	pool := openPool(t, freshDatabase(t))
	migrateThrough(t, pool, 4)

	now := time.Now().UTC()
	gate := "hash-gate"
	old := dayRecords(gate, 1, now.Add(-48*time.Hour), now.Add(-time.Hour), now)
	old.Records[1].Voucher, old.Records[1].Subject = "", ""
	odd := dayRecords("odd-gate", 1, now)
	odd.Records[0].Voucher, odd.Records[0].Subject = "not-a-hash", "ABCDEF"
	for _, r := range [][]any{textHashArrays(t, old.Records), textHashArrays(t, odd.Records)} {
		if _, err := pool.Exec(ctx, textHashes(upsertSQL), r...); err != nil {
			t.Fatalf("insert with text hashes: %v", err)
		}
	}
	n0, digest0 := rowsDigest(t, pool, gate)

	if err := Migrate(ctx, pool); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	checkSchema(t, pool)
	if n, digest := rowsDigest(t, pool, gate); n != n0 || digest != digest0 || n != len(old.Records) {
		t.Fatalf("after migrating: %d rows, digest %s; want %d rows, digest %s as before", n, digest, n0, digest0)
	}
	var voucher, subject []byte
	if err := pool.QueryRow(ctx, "SELECT voucher, subject FROM wicket_records WHERE gate = 'odd-gate'").Scan(&voucher, &subject); err != nil {
		t.Fatal(err)
	}
	if string(voucher) != "not-a-hash" || string(subject) != "\xab\xcd\xef" {
		t.Errorf("odd row: voucher %q, subject %q; want the bytes of not-a-hash and of hex ABCDEF", voucher, subject)
	}
	for col, want := range map[string]string{"voucher": "bytea", "subject": "bytea", "gate": "text C", "venue": "text C"} {
		var got string
		err := pool.QueryRow(ctx, `SELECT format_type(a.atttypid, a.atttypmod) || coalesce(' ' || c.collname, '')
			FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation AND c.collname <> 'default'
			WHERE a.attrelid = 'wicket_records'::regclass AND a.attname = $1`, col).Scan(&got)
		if err != nil || got != want {
			t.Errorf("column %s: %q, %v; want %q", col, got, err, want)
		}
	}

	w := NewWriter(pool, testLog(t))
	if n, err := w.Write(ctx, old); err != nil || n != 0 {
		t.Fatalf("resending the migrated records: Write = %d, %v; want 0, nil", n, err)
	}
	// A day that gets its partition after the migration.
	late := dayRecords(gate, 4, now.AddDate(0, 0, -30))
	if n, err := w.Write(ctx, late); err != nil || n != 1 {
		t.Fatalf("Write of a record 30 days old = %d, %v; want 1, nil", n, err)
	}
	if got := partitionOf(t, pool, gate)[4]; got != partitionName(late.Records[0].At) {
		t.Errorf("seq 4 in %s; want %s", got, partitionName(late.Records[0].At))
	}

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	const q = "SELECT at, gate FROM wicket_records WHERE voucher = decode('0123456789abcdef0123456789abcdef', 'hex') AND at >= now() - interval '40 days' ORDER BY at"
	if p := strings.Join(queryStrings(t, tx, "EXPLAIN "+q), "\n"); !strings.Contains(p, "Index") || !strings.Contains(p, "voucher") {
		t.Errorf("plan of a voucher's records uses no voucher index:\n%s", p)
	}
	var found int
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM ("+q+") AS v").Scan(&found); err != nil || found != 3 {
		t.Errorf("records of the voucher: %d, %v; want 3 (seqs 1, 3 and 4)", found, err)
	}
}
