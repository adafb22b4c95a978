package collector

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrateLockKey is the advisory lock that serialises Migrate across
// collectors: "wicket" in ASCII.
const migrateLockKey = 0x7769636b6574

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS wicket_schema_migrations (
	version    integer     PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// migration is one file of migrations/: NNNN_name.sql, applied in order
// of NNNN.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order, checking
// that the names are well formed and the versions 1, 2, 3, ...
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, p := range names {
		name := path.Base(p)
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || len(num) != 4 || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", name)
		}
		data, err := migrationFiles.ReadFile(p)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(data)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: want version %04d (versions must be 1, 2, 3, ... without gaps or repeats)", m.name, i+1)
		}
	}
	return ms, nil
}

// Migrate applies the embedded migrations the database lacks, in order,
// and records each in wicket_schema_migrations. Every migration runs in its
// own transaction together with its record, so a failure leaves the schema
// at the last complete migration and the next call continues from there.
//
// Migrate is idempotent and safe to run from several collectors at once:
// each transaction first takes a transaction-scoped advisory lock, so they
// run one after the other and the later ones find nothing left to do.
// Versions in the table that this binary does not know (a newer collector
// migrated) are left alone.
//
// On a schema that is up to date Migrate only reads
// wicket_schema_migrations, so a collector whose database role may not
// change the schema (packaging/sql/collector-role.sql) starts; with
// migrations missing such a role gets ErrMigrateDenied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var exists bool
	var applied int
	err = pool.QueryRow(ctx, "SELECT to_regclass('wicket_schema_migrations') IS NOT NULL").Scan(&exists)
	if err == nil && exists {
		err = pool.QueryRow(ctx, "SELECT count(*) FROM wicket_schema_migrations WHERE version <= $1", len(ms)).Scan(&applied)
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", denied(err))
	}
	if applied == len(ms) {
		return nil
	}
	for _, m := range ms {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrateLockKey)); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
			if _, err := tx.Exec(ctx, createMigrationsTable); err != nil {
				return fmt.Errorf("create wicket_schema_migrations: %w", err)
			}
			var done bool
			err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM wicket_schema_migrations WHERE version = $1)", m.version).Scan(&done)
			if err != nil || done {
				return err
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, "INSERT INTO wicket_schema_migrations (version, applied_at) VALUES ($1, now())", m.version)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %s: %w", m.name, denied(err))
		}
	}
	return nil
}

// ErrMigrateDenied: the database role may not change the schema, as the
// collector's least-privilege role may not; the database's owner migrates.
var ErrMigrateDenied = errors.New("the database role may not change the schema: migrate as the database's owner (wicketctl collect -migrate -db URL)")

// denied wraps PostgreSQL's insufficient_privilege in ErrMigrateDenied.
func denied(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" {
		return fmt.Errorf("%w: %v", ErrMigrateDenied, err)
	}
	return err
}
