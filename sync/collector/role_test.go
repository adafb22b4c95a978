package collector

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The roles the wicket-authority package ships.
const (
	roleSQL          = "../../packaging/sql/collector-role.sql"
	reportingRoleSQL = "../../packaging/sql/reporting-role.sql"
)

// runRoleSQL runs collector-role.sql in the database at dbURL.
func runRoleSQL(t *testing.T, dbURL string) error { return runSQLFile(t, roleSQL, dbURL) }

// runSQLFile runs the SQL file at path in the database at dbURL as psql
// would (its psql meta-commands, lines starting with a backslash, aside).
func runSQLFile(t *testing.T, path, dbURL string) error {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sql []string
	for line := range strings.SplitSeq(string(data), "\n") {
		if !strings.HasPrefix(line, `\`) {
			sql = append(sql, line)
		}
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, strings.Join(sql, "\n"))
	return err
}

// asRole is dbURL with the user and password replaced.
func asRole(t *testing.T, dbURL, user, password string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

// The shipped role: the collector starts on a migrated database, stores
// and reads records, and can do nothing else; on a database without the
// schema the SQL refuses, and a collector with the role says who must
// migrate.
func TestCollectorRoleLeastPrivilege(t *testing.T) {
	ctx := context.Background()
	// Roles are the cluster's: dropped after the database (cleanups run
	// last-registered first).
	t.Cleanup(func() {
		if err := adminExec("DROP ROLE IF EXISTS wicket_collector"); err != nil {
			t.Errorf("drop role wicket_collector: %v", err)
		}
	})
	dbURL := freshDatabase(t)

	if err := runRoleSQL(t, dbURL); err == nil || !strings.Contains(err.Error(), "no Wicket records tables") {
		t.Fatalf("collector-role.sql before migrating: err = %v; want \"no Wicket records tables\"", err)
	}
	role := asRole(t, dbURL, "wicket_collector", rolePassword(t, "wicket_collector"))
	if err := Migrate(ctx, openPool(t, role)); !errors.Is(err, ErrMigrateDenied) {
		t.Fatalf("Migrate as wicket_collector on an empty database: err = %v; want ErrMigrateDenied", err)
	}

	if err := Migrate(ctx, openPool(t, dbURL)); err != nil {
		t.Fatalf("Migrate as the owner: %v", err)
	}
	for i := range 2 { // idempotent
		if err := runRoleSQL(t, dbURL); err != nil {
			t.Fatalf("collector-role.sql #%d: %v", i+1, err)
		}
	}

	pool := openPool(t, role)
	if err := Migrate(ctx, pool); err != nil {
		t.Fatalf("Migrate as wicket_collector on an up-to-date schema: %v", err)
	}
	gate := gateName("role")
	w := NewWriter(pool, testLog(t))
	if n, err := w.Write(ctx, batch(gate, 1, 2, 3)); err != nil || n != 3 {
		t.Fatalf("Write as wicket_collector = %d, %v; want 3, nil", n, err)
	}
	if n, err := w.Write(ctx, batch(gate, 3, 4)); err != nil || n != 1 {
		t.Fatalf("Write of a resent record as wicket_collector = %d, %v; want 1, nil", n, err)
	}
	if n := countRows(t, pool, gate, 1, 4); n != 4 {
		t.Fatalf("rows read as wicket_collector = %d; want 4", n)
	}

	// The day's partition, created through wicket_records_partition.
	day := time.Now().UTC().AddDate(0, 0, -3)
	if n, err := w.Write(ctx, dayRecords(gate, 10, day)); err != nil || n != 1 {
		t.Fatalf("Write of a record of %s as wicket_collector = %d, %v; want 1, nil", day.Format(time.DateOnly), n, err)
	}
	if got := partitionOf(t, pool, gate)[10]; got != partitionName(day) {
		t.Fatalf("record written as wicket_collector is in %s; want %s", got, partitionName(day))
	}
	// Refused messages are counted.
	if err := w.addRefusals(ctx, map[refusalKey]refusalCount{{gate, RefusedSignature}: {1, 0}}); err != nil {
		t.Fatalf("count a refusal as wicket_collector: %v", err)
	}
	if err := w.addRefusals(ctx, map[refusalKey]refusalCount{{gate, RefusedSignature}: {2, 0}}); err != nil {
		t.Fatalf("add to a refusal count as wicket_collector: %v", err)
	}

	denied(t, pool, "wicket_collector", []string{
		"UPDATE wicket_records SET allow = true",
		"DELETE FROM wicket_records",
		"TRUNCATE wicket_records",
		"DELETE FROM wicket_refusals",
		"INSERT INTO wicket_schema_migrations (version) VALUES (999)",
		"DELETE FROM wicket_schema_migrations",
		"CREATE TABLE wicket_other (x int)",
		"CREATE TEMPORARY TABLE wicket_tmp (x int)",
		"ALTER TABLE wicket_records ADD COLUMN x int",
		"DROP TABLE wicket_records",
		"DROP TABLE wicket_records_default",
		"SELECT count(*) FROM wicket_records_default",
		"CREATE ROLE wicket_other",
		"CREATE DATABASE wicket_other",
	})
	if n := countRows(t, openPool(t, dbURL), gate, 1, 10); n != 5 {
		t.Fatalf("rows after the denied statements = %d; want 5", n)
	}
}

// rolePassword gives role (created if missing) a random password, for
// TCP logins where pg_hba.conf trusts only postgres, and returns it.
func rolePassword(t *testing.T, role string) string {
	t.Helper()
	var b [12]byte
	rand.Read(b[:])
	password := hex.EncodeToString(b[:])
	if err := adminExec("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '" + role + "') THEN CREATE ROLE " + role + " LOGIN; END IF; END $$; " +
		"ALTER ROLE " + role + " PASSWORD '" + password + "'"); err != nil {
		t.Fatal(err)
	}
	return password
}

// denied checks that each statement fails on pool for want of privilege.
func denied(t *testing.T, pool *pgxpool.Pool, role string, sqls []string) {
	t.Helper()
	for _, sql := range sqls {
		_, err := pool.Exec(context.Background(), sql)
		var pgErr *pgconn.PgError
		// 25006: read_only_sql_transaction, where a read-only role is
		// stopped before the privilege check.
		if !errors.As(err, &pgErr) || (pgErr.Code != "42501" && pgErr.Code != "25006") {
			t.Errorf("%s as %s: err = %v; want permission denied (42501 or 25006)", sql, role, err)
		}
	}
}

// The shipped reporting role reads the records and the refusal counts
// and can change nothing, not even by asking for a read-write
// transaction.
func TestReportingRoleReadOnly(t *testing.T) {
	ctx := context.Background()
	t.Cleanup(func() {
		if err := adminExec("DROP ROLE IF EXISTS wicket_reporting"); err != nil {
			t.Errorf("drop role wicket_reporting: %v", err)
		}
	})
	dbURL := freshDatabase(t)
	if err := runSQLFile(t, reportingRoleSQL, dbURL); err == nil || !strings.Contains(err.Error(), "no Wicket records tables") {
		t.Fatalf("reporting-role.sql before migrating: err = %v; want \"no Wicket records tables\"", err)
	}
	owner := openPool(t, dbURL)
	if err := Migrate(ctx, owner); err != nil {
		t.Fatal(err)
	}
	gate := gateName("reporting")
	day := time.Now().UTC().AddDate(0, 0, -1)
	if _, err := NewWriter(owner, testLog(t)).Write(ctx, dayRecords(gate, 1, day, day, time.Unix(0, 0))); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // idempotent
		if err := runSQLFile(t, reportingRoleSQL, dbURL); err != nil {
			t.Fatalf("reporting-role.sql #%d: %v", i+1, err)
		}
	}
	pool := openPool(t, asRole(t, dbURL, "wicket_reporting", rolePassword(t, "wicket_reporting")))
	if n := countRows(t, pool, gate, 1, 3); n != 3 {
		t.Fatalf("rows read as wicket_reporting = %d; want 3", n)
	}
	var refusals int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM wicket_refusals").Scan(&refusals); err != nil {
		t.Fatalf("read wicket_refusals as wicket_reporting: %v", err)
	}
	denied(t, pool, "wicket_reporting", []string{
		"INSERT INTO wicket_records (gate, seq, type, at) VALUES ('x', 1, 'decision', now())",
		"UPDATE wicket_records SET allow = true",
		"DELETE FROM wicket_records",
		"TRUNCATE wicket_records",
		"INSERT INTO wicket_refusals (gate, reason) VALUES ('x', 'y')",
		"DELETE FROM wicket_refusals",
		"SELECT wicket_records_partition(current_date - 2)",
		"SELECT count(*) FROM wicket_schema_migrations",
		"SELECT count(*) FROM wicket_records_default",
		"CREATE TABLE wicket_other (x int)",
		"CREATE TEMPORARY TABLE wicket_tmp (x int)",
		"DROP TABLE wicket_records",
		"CREATE ROLE wicket_other",
	})
	// Asking for a read-write transaction does not lift the privileges.
	for _, sql := range []string{
		"BEGIN READ WRITE; DELETE FROM wicket_records; COMMIT",
		"BEGIN READ WRITE; SELECT wicket_records_partition(current_date - 2); COMMIT",
	} {
		_, err := pool.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s as wicket_reporting: err = %v; want permission denied (42501)", sql, err)
		}
	}
	if n := countRows(t, owner, gate, 1, 3); n != 3 {
		t.Fatalf("rows after the denied statements = %d; want 3", n)
	}
	var partitions int
	if err := owner.QueryRow(ctx, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'wicket_records'::regclass AND inhrelid = to_regclass($1)",
		partitionName(time.Now().UTC().AddDate(0, 0, -2))).Scan(&partitions); err != nil || partitions != 0 {
		t.Fatalf("partition of 2 days ago after the denied calls: %d, %v; want none", partitions, err)
	}
}
