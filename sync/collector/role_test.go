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

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// roleSQL is the least-privilege role the wicket-authority package ships.
const roleSQL = "../../packaging/sql/collector-role.sql"

// runRoleSQL runs collector-role.sql in the database at dbURL as psql
// would (its psql meta-commands, lines starting with a backslash, aside).
func runRoleSQL(t *testing.T, dbURL string) error {
	t.Helper()
	data, err := os.ReadFile(roleSQL)
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
	// A password for TCP logins where pg_hba.conf trusts only postgres.
	var b [12]byte
	rand.Read(b[:])
	password := hex.EncodeToString(b[:])
	if err := adminExec("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wicket_collector') THEN CREATE ROLE wicket_collector LOGIN; END IF; END $$; " +
		"ALTER ROLE wicket_collector PASSWORD '" + password + "'"); err != nil {
		t.Fatal(err)
	}
	role := asRole(t, dbURL, "wicket_collector", password)
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

	for _, sql := range []string{
		"UPDATE wicket_records SET allow = true",
		"DELETE FROM wicket_records",
		"TRUNCATE wicket_records",
		"INSERT INTO wicket_schema_migrations (version) VALUES (999)",
		"DELETE FROM wicket_schema_migrations",
		"CREATE TABLE wicket_other (x int)",
		"CREATE TEMPORARY TABLE wicket_tmp (x int)",
		"ALTER TABLE wicket_records ADD COLUMN x int",
		"DROP TABLE wicket_records",
		"CREATE ROLE wicket_other",
		"CREATE DATABASE wicket_other",
	} {
		_, err := pool.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s as wicket_collector: err = %v; want permission denied (42501)", sql, err)
		}
	}
	if n := countRows(t, openPool(t, dbURL), gate, 1, 4); n != 4 {
		t.Fatalf("rows after the denied statements = %d; want 4", n)
	}
}
