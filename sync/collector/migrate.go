package collector

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"wicket/pgmigrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// schema is the collector's migrations, recorded in
// wicket_schema_migrations under the advisory lock "wicket" in ASCII.
var schema = pgmigrate.Set{FS: migrationFiles, Dir: "migrations", Table: "wicket_schema_migrations", LockKey: 0x7769636b6574}

// migrations returns the embedded migrations in version order.
func migrations() ([]pgmigrate.Migration, error) { return schema.Migrations() }

// Migrate applies the embedded migrations the database lacks, in order,
// and records each in wicket_schema_migrations. Every migration runs in its
// own transaction together with its record, so a failure leaves the schema
// at the last complete migration and the next call continues from there.
//
// Migrate is idempotent and safe to run from several collectors at once
// (see pgmigrate.Set.Apply). Versions in the table that this binary does
// not know (a newer collector migrated) are left alone.
//
// On a schema that is up to date Migrate only reads
// wicket_schema_migrations, so a collector whose database role may not
// change the schema (packaging/sql/collector-role.sql) starts; with
// migrations missing such a role gets ErrMigrateDenied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	err := schema.Apply(ctx, pool)
	if errors.Is(err, pgmigrate.ErrDenied) {
		return fmt.Errorf("%w: %w", ErrMigrateDenied, err)
	}
	return err
}

// ErrMigrateDenied: the database role may not change the schema, as the
// collector's least-privilege role may not; the database's owner migrates.
var ErrMigrateDenied = errors.New("the collector's database role may not change the schema: migrate as the database's owner (wicketctl collect -migrate -db URL)")
