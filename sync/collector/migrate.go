package collector

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
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
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
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
			return fmt.Errorf("migrate %s: %w", m.name, err)
		}
	}
	return nil
}
