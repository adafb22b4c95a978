package collector

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMigrationsWellFormed(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Name != "0001_records.sql" {
		t.Fatalf("migrations() = %v; want 0001_records.sql first", ms)
	}
}

func TestMigrateTwice(t *testing.T) {
	pool := openPool(t, freshDatabase(t))
	ctx := context.Background()
	for i := range 2 {
		if err := Migrate(ctx, pool); err != nil {
			t.Fatalf("Migrate #%d: %v", i+1, err)
		}
	}
	checkSchema(t, pool)
}

func TestMigrateConcurrently(t *testing.T) {
	dbURL := freshDatabase(t)
	// Separate pools, as separate collectors would have.
	pools := []*pgxpool.Pool{openPool(t, dbURL), openPool(t, dbURL)}
	var wg sync.WaitGroup
	errs := make([]error, len(pools))
	for i, p := range pools {
		wg.Go(func() { errs[i] = Migrate(context.Background(), p) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate in goroutine %d: %v", i, err)
		}
	}
	checkSchema(t, pools[0])
}

// checkSchema checks every migration is recorded once and the records
// table and its indexes exist.
func checkSchema(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	var n, maxV int
	if err := pool.QueryRow(ctx, "SELECT count(*), max(version) FROM wicket_schema_migrations").Scan(&n, &maxV); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) || maxV != ms[len(ms)-1].Version {
		t.Errorf("wicket_schema_migrations has %d rows up to version %d; want %d up to %d", n, maxV, len(ms), ms[len(ms)-1].Version)
	}
	indexes := queryStrings(t, pool, "SELECT indexname FROM pg_indexes WHERE tablename = 'wicket_records' ORDER BY indexname")
	want := []string{"wicket_records_alerts", "wicket_records_at", "wicket_records_pkey", "wicket_records_venue_at", "wicket_records_voucher"}
	if len(indexes) != len(want) {
		t.Fatalf("indexes of wicket_records = %q; want %q", indexes, want)
	}
	for i := range want {
		if indexes[i] != want[i] {
			t.Fatalf("indexes of wicket_records = %q; want %q", indexes, want)
		}
	}
}

// queryStrings returns the one text column of the rows sql selects.
func queryStrings(t *testing.T, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, sql string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ss
}
