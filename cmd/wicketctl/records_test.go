package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"wicket/pgmigrate/pgtest"
	"wicket/sync/collector"
	"wicket/sync/store"
	"wicket/sync/wire"
)

func TestParseDays(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"90d", 90, true}, {"1d", 1, true}, {"0d", 0, false}, {"-3d", 0, false},
		{"90", 0, false}, {"", 0, false}, {"d", 0, false}, {"90h", 0, false}, {"9e9d", 0, false},
	} {
		got, err := parseDays(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("parseDays(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// Without a subcommand or an age, records purge is a usage error that
// touches no database.
func TestRecordsPurgeUsage(t *testing.T) {
	for _, args := range [][]string{{"records"}, {"records", "drop"}, {"records", "purge"}, {"records", "purge", "-older-than", "90"}} {
		var out, errOut strings.Builder
		if code := dispatch(env{nil, &out, &errOut}, args); code != exitUsage {
			t.Errorf("wicketctl %q: exit %d; want %d (stderr %q)", args, code, exitUsage, errOut.String())
		}
	}
}

// records purge lists what it would remove and removes nothing; with -yes
// it removes exactly that.
func TestRecordsPurge(t *testing.T) {
	db := pgtest.Database(t, "wicket_purge_test")
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := collector.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	r := &wire.Records{Gate: "purge-gate"}
	for i, at := range []time.Time{now.AddDate(0, 0, -120), now.AddDate(0, 0, -120), now.AddDate(0, 0, -1), now} {
		r.Records = append(r.Records, store.Event{Seq: uint64(i + 1), Type: store.TypeDecision, At: at, Gate: r.Gate})
	}
	if n, err := collector.NewWriter(pool, nil).Write(ctx, r); err != nil || n != 4 {
		t.Fatalf("Write = %d, %v; want 4, nil", n, err)
	}
	count := func() (n int) {
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM wicket_records").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	day := now.AddDate(0, 0, -120).Format(time.DateOnly)

	var out, errOut strings.Builder
	if code := dispatch(env{nil, &out, &errOut}, []string{"records", "purge", "-older-than", "90d", "-db", db}); code != exitOK {
		t.Fatalf("records purge: exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"would remove", ": 2 records", "day " + day + ": 2 records", "nothing removed", "-yes"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("records purge said %q; want it to say %q", out.String(), want)
		}
	}
	if n := count(); n != 4 {
		t.Fatalf("%d rows after records purge without -yes; want all 4", n)
	}

	out.Reset()
	if code := dispatch(env{nil, &out, &errOut}, []string{"records", "purge", "-older-than", "90d", "-yes", "-db", db}); code != exitOK {
		t.Fatalf("records purge -yes: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "removed 2 records") {
		t.Errorf("records purge -yes said %q; want \"removed 2 records\"", out.String())
	}
	if n := count(); n != 2 {
		t.Fatalf("%d rows after records purge -yes; want 2", n)
	}
}
