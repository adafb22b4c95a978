package pgmigrate

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"

	"wicket/pgmigrate/pgtest"
)

func TestMigrationsNames(t *testing.T) {
	for _, tc := range []struct {
		files []string
		want  string // "" means well formed
	}{
		{[]string{"0001_a.sql", "0002_b.sql"}, ""},
		{[]string{"0002_b.sql", "0001_a.sql"}, ""},
		{[]string{"0001_a.sql", "0003_c.sql"}, "want version 0002"},
		{[]string{"0001_a.sql", "0001_b.sql"}, "want version 0002"},
		{[]string{"1_a.sql"}, "NNNN_description.sql"},
		{[]string{"0001a.sql"}, "NNNN_description.sql"},
		{[]string{"0000_zero.sql"}, "NNNN_description.sql"},
	} {
		fsys := fstest.MapFS{}
		for _, f := range tc.files {
			fsys["m/"+f] = &fstest.MapFile{Data: []byte("SELECT 1")}
		}
		ms, err := Set{FS: fsys, Dir: "m"}.Migrations()
		switch {
		case tc.want == "" && (err != nil || len(ms) != len(tc.files) || ms[0].Version != 1):
			t.Errorf("Migrations(%q) = %v, %v; want them in order", tc.files, ms, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Migrations(%q) = %v; want an error with %q", tc.files, err, tc.want)
		}
	}
}

// TestApplyStopsAtFailure: a failing migration leaves the schema at the
// last good one; two Sets share a database with tables of their own.
func TestApplyStopsAtFailure(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.Database(t, "wicket_pgmigrate_test"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	bad := Set{FS: fstest.MapFS{
		"m/0001_t.sql":   {Data: []byte("CREATE TABLE t (x int)")},
		"m/0002_bad.sql": {Data: []byte("CREATE TABLE t (x int)")},
	}, Dir: "m", Table: "a_migrations", LockKey: 1}
	if err := bad.Apply(ctx, pool); err == nil || !strings.Contains(err.Error(), "0002_bad.sql") {
		t.Fatalf("Apply = %v; want 0002_bad.sql to fail", err)
	}
	other := Set{FS: fstest.MapFS{"m/0001_u.sql": {Data: []byte("CREATE TABLE u (x int)")}}, Dir: "m", Table: "b_migrations", LockKey: 2}
	for range 2 {
		if err := other.Apply(ctx, pool); err != nil {
			t.Fatal(err)
		}
	}
	for table, want := range map[string]int{"a_migrations": 1, "b_migrations": 1} {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil || n != want {
			t.Errorf("%s: %d rows, %v; want %d", table, n, err, want)
		}
	}
}
