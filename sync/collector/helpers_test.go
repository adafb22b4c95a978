package collector

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"wicket/pgmigrate/pgtest"
	"wicket/sync/store"
	"wicket/sync/wire"
)

// The package's database: created on first use, migrated, dropped by
// TestMain after the run.
var (
	pkgDBOnce sync.Once
	pkgDBURL  string
	pkgDBErr  error
	pkgDBName string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pkgDBName != "" {
		if err := dropDatabase(pkgDBName); err != nil {
			fmt.Fprintf(os.Stderr, "drop test database %s: %v\n", pkgDBName, err)
		}
	}
	os.Exit(code)
}

// pgUnreachable is the failure message when the test PostgreSQL is down.
func pgUnreachable(err error) string {
	return fmt.Sprintf("PostgreSQL for tests unreachable at %s: %v\n"+
		"start it (user postgres, trust auth on 127.0.0.1:5432) or set WICKET_TEST_PG "+
		"to an admin URL allowed to CREATE DATABASE", redact(pgtest.AdminURL()), err)
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func adminExec(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.AdminURL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// createDatabase makes an empty database with a random name and returns
// its name and URL.
func createDatabase() (name, dbURL string, err error) {
	var b [6]byte
	rand.Read(b[:])
	name = "wicket_collector_test_" + hex.EncodeToString(b[:])
	if err := adminExec("CREATE DATABASE " + name); err != nil {
		return "", "", err
	}
	u, err := url.Parse(pgtest.AdminURL())
	if err != nil {
		return "", "", err
	}
	u.Path = "/" + name
	return name, u.String(), nil
}

func dropDatabase(name string) error {
	return adminExec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
}

// testPool returns a pool on the package's migrated database, closed when
// the test ends. Tests share it, so each uses its own gate ids.
func testPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pkgDBOnce.Do(func() {
		pkgDBName, pkgDBURL, pkgDBErr = createDatabase()
		if pkgDBErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p, err := pgxpool.New(ctx, pkgDBURL)
		if err != nil {
			pkgDBErr = err
			return
		}
		defer p.Close()
		pkgDBErr = Migrate(ctx, p)
	})
	if pkgDBErr != nil {
		t.Fatal(pgUnreachable(pkgDBErr))
	}
	return openPool(t, pkgDBURL)
}

// freshDatabase returns the URL of a new empty database dropped when the
// test ends.
func freshDatabase(t testing.TB) string {
	t.Helper()
	name, dbURL, err := createDatabase()
	if err != nil {
		t.Fatal(pgUnreachable(err))
	}
	t.Cleanup(func() {
		if err := dropDatabase(name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return dbURL
}

func openPool(t testing.TB, dbURL string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// testLog discards unless the test runs with -v.
func testLog(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil)).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// batch returns records of gate with the given seqs, each field filled.
func batch(gate string, seqs ...uint64) *wire.Records {
	r := &wire.Records{Gate: gate}
	at := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	for _, s := range seqs {
		r.Records = append(r.Records, store.Event{
			Seq: s, Type: store.TypeDecision, At: at.Add(time.Duration(s) * time.Second),
			Gate: gate, Venue: "central", Allow: s%2 == 0, Reason: "ok", Colour: "green",
			Kind: "single", Class: "adult", Issuer: "metro", Voucher: "0123456789abcdef0123456789abcdef",
			Subject: "fedcba9876543210fedcba9876543210", Alert: s%7 == 0, Attendant: s%5 == 0,
			Warnings: []string{"clock_untrusted"}, Ref: s / 2, Detail: "passed",
		})
	}
	return r
}

var gateSerial atomic.Int64

// gateName makes a gate id unique in the package database, so tests can
// run repeatedly (-count) against it.
func gateName(base string) string {
	return fmt.Sprintf("%s-%d", base, gateSerial.Add(1))
}

func seqRange(from, through uint64) []uint64 {
	var s []uint64
	for i := from; i <= through; i++ {
		s = append(s, i)
	}
	return s
}

// countRows returns how many rows gate has with from <= seq <= through.
func countRows(t testing.TB, pool *pgxpool.Pool, gate string, from, through uint64) int {
	t.Helper()
	var n int
	err := pool.QueryRow(context.Background(),
		"SELECT count(*) FROM wicket_records WHERE gate = $1 AND seq BETWEEN $2 AND $3",
		gate, int64(from), int64(through)).Scan(&n)
	if err != nil {
		t.Fatalf("count rows: %v", err)
	}
	return n
}
