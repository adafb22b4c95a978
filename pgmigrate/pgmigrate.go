// Package pgmigrate brings a PostgreSQL schema up to date from numbered
// SQL files, each applied once, in order, in its own transaction. The
// collector's records and the authority's ledger each have a Set of
// their own, so they can share one database.
package pgmigrate

import (
	"context"
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

// ErrDenied: the database role may not change the schema (PostgreSQL's
// insufficient_privilege); the database's owner has to migrate.
var ErrDenied = errors.New("the database role may not change the schema")

// denied wraps PostgreSQL's insufficient_privilege in ErrDenied.
func denied(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" {
		return fmt.Errorf("%w: %w", ErrDenied, err)
	}
	return err
}

// Set is one schema's migrations and where their progress is kept.
type Set struct {
	// FS holds the migrations as Dir/NNNN_description.sql, numbered 1, 2,
	// 3, ... without gaps.
	FS  fs.FS
	Dir string
	// Table records the versions applied; it is created when missing.
	Table string
	// LockKey is the transaction-scoped advisory lock that serialises
	// Apply across processes; distinct per Set.
	LockKey int64
}

// Migration is one file of a Set.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the Set's migrations in version order, checking that
// the names are well formed and the versions 1, 2, 3, ...
func (s Set) Migrations() ([]Migration, error) {
	names, err := fs.Glob(s.FS, path.Join(s.Dir, "*.sql"))
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, p := range names {
		name := path.Base(p)
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || len(num) != 4 || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", name)
		}
		data, err := fs.ReadFile(s.FS, p)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(data)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %s: want version %04d (versions must be 1, 2, 3, ... without gaps or repeats)", m.Name, i+1)
		}
	}
	return ms, nil
}

// Apply applies the migrations the database lacks, in order, and records
// each in the Set's table. Every migration runs in its own transaction
// together with its record, so a failure leaves the schema at the last
// complete migration and the next call continues from there.
//
// Apply is idempotent and safe to run from several processes at once:
// each transaction first takes the Set's advisory lock, so they run one
// after the other and the later ones find nothing left to do. Versions in
// the table that this binary does not know (a newer binary migrated) are
// left alone.
//
// On a schema that is up to date Apply only reads the Set's table, so a
// role that may not change the schema (a least-privilege service role)
// can call it at every start; with migrations missing such a role gets
// ErrDenied.
func (s Set) Apply(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := s.Migrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	table := pgx.Identifier{s.Table}.Sanitize()
	var exists bool
	applied := 0
	err = pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists)
	if err == nil && exists {
		err = pool.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE version <= $1", len(ms)).Scan(&applied)
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", denied(err))
	}
	if applied == len(ms) {
		return nil
	}
	for _, m := range ms {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", s.LockKey); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
			create := "CREATE TABLE IF NOT EXISTS " + table + " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
			if _, err := tx.Exec(ctx, create); err != nil {
				return fmt.Errorf("create %s: %w", s.Table, err)
			}
			var done bool
			err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+table+" WHERE version = $1)", m.Version).Scan(&done)
			if err != nil || done {
				return err
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, "INSERT INTO "+table+" (version, applied_at) VALUES ($1, now())", m.Version)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %s: %w", m.Name, denied(err))
		}
	}
	return nil
}
