// Package ledger keeps the issuing authority's state in PostgreSQL: every
// revocation, colour override and void-before it decided, and every key
// set, roster and batch version it signed, per fleet. A version can be
// signed once only (a primary key, not a convention), and the next batch's
// version, base and entries follow from what the ledger holds.
package ledger

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"wicket/decoder"
	"wicket/pgmigrate"
	"wicket/verifier"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// schema is the ledger's migrations, recorded apart from the collector's
// so both can live in one database; the lock key is "wktauth" in ASCII.
var schema = pgmigrate.Set{FS: migrationFiles, Dir: "migrations", Table: "wicket_authority_migrations", LockKey: 0x776b7461757468}

// Migrate brings the ledger's tables up to date. It is idempotent and
// safe to run from several processes at once.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return schema.Apply(ctx, pool)
}

// Kinds of versioned trust documents.
const (
	KindKeySet = "keyset"
	KindRoster = "roster"
	KindBatch  = "batch"
)

// ErrVersionUsed: the version was signed before (by this ledger, possibly
// by another run at the same time).
var ErrVersionUsed = errors.New("version already used")

// Ledger is one fleet's part of the ledger database. Its methods are safe
// for concurrent use; each is one transaction.
type Ledger struct {
	pool  *pgxpool.Pool
	fleet string
}

// New returns the ledger of fleet in pool's database, which Migrate has
// brought up to date.
func New(pool *pgxpool.Pool, fleet string) *Ledger {
	return &Ledger{pool: pool, fleet: fleet}
}

// Entry is a recorded statement.
type Entry struct {
	ID int64
	verifier.Entry
	// PublishedIn is the batch that first carried it; 0 while pending.
	PublishedIn uint64
}

// Version is a signed trust document version.
type Version struct {
	Kind          string
	Version, Base uint64
	Entries       int
	SignedAt      time.Time
	Published     bool
}

// Record adds statements, pending until a batch carries them, and returns
// their ids. Keys must be 8 to 32 bytes.
func (l *Ledger) Record(ctx context.Context, entries []verifier.Entry) ([]int64, error) {
	ids := make([]int64, 0, len(entries))
	var batch pgx.Batch
	for _, en := range entries {
		if len(en.Key) < decoder.MinIDLen || len(en.Key) > decoder.MaxIDLen {
			return nil, fmt.Errorf("record: key %x: want %d to %d bytes", en.Key, decoder.MinIDLen, decoder.MaxIDLen)
		}
		batch.Queue(`INSERT INTO wicket_authority_entries (fleet, op, key, at, expires, colour)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			l.fleet, int16(en.Op), en.Key, en.Time, en.Expires, int16(en.Colour))
	}
	// One round trip for all of them, in one transaction.
	err := pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		br := tx.SendBatch(ctx, &batch)
		defer br.Close()
		for range entries {
			var id int64
			if err := br.QueryRow().Scan(&id); err != nil {
				return fmt.Errorf("record: %w", err)
			}
			ids = append(ids, id)
		}
		return br.Close()
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// Last returns the highest version of kind signed for the fleet, published
// or not; Version 0 when there is none.
func (l *Ledger) Last(ctx context.Context, kind string) (Version, error) {
	v, err := l.version(ctx, kind, "ORDER BY version DESC LIMIT 1")
	if errors.Is(err, pgx.ErrNoRows) {
		return Version{Kind: kind}, nil
	}
	return v, err
}

// Unpublished returns the oldest version of kind signed but neither
// acknowledged by the broker nor abandoned, with its documents in part
// order; nil when there is none.
func (l *Ledger) Unpublished(ctx context.Context, kind string) (*Version, [][]byte, error) {
	v, err := l.version(ctx, kind, "AND published_at IS NULL AND abandoned_in IS NULL ORDER BY version LIMIT 1")
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	rows, err := l.pool.Query(ctx, `SELECT doc FROM wicket_authority_documents
		WHERE fleet = $1 AND kind = $2 AND version = $3 ORDER BY part`, l.fleet, kind, int64(v.Version))
	if err != nil {
		return nil, nil, err
	}
	docs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, nil, err
	}
	return &v, docs, nil
}

func (l *Ledger) version(ctx context.Context, kind, tail string) (Version, error) {
	v := Version{Kind: kind}
	var version, base int64
	var published *time.Time
	err := l.pool.QueryRow(ctx, `SELECT version, base, entries, signed_at, published_at FROM wicket_authority_versions
		WHERE fleet = $1 AND kind = $2 `+tail, l.fleet, kind).Scan(&version, &base, &v.Entries, &v.SignedAt, &published)
	v.Version, v.Base, v.Published = uint64(version), uint64(base), published != nil
	return v, err
}

// Pending returns the statements no batch has carried yet, oldest first.
func (l *Ledger) Pending(ctx context.Context) ([]Entry, error) {
	return l.entries(ctx, "AND published_in IS NULL")
}

// Open returns every statement no snapshot has dropped, oldest first:
// what a snapshot would carry, before expiry is considered.
func (l *Ledger) Open(ctx context.Context) ([]Entry, error) {
	return l.entries(ctx, "")
}

func (l *Ledger) entries(ctx context.Context, cond string) ([]Entry, error) {
	rows, err := l.pool.Query(ctx, `SELECT id, op, key, at, expires, colour, coalesce(published_in, 0)
		FROM wicket_authority_entries WHERE fleet = $1 AND dropped_in IS NULL `+cond+` ORDER BY id`, l.fleet)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var en Entry
		var op, colour int16
		var pub int64
		err := r.Scan(&en.ID, &op, &en.Key, &en.Time, &en.Expires, &colour, &pub)
		en.Op, en.Colour, en.PublishedIn = verifier.Op(op), decoder.Colour(colour), uint64(pub)
		return en, err
	})
}

// Signed is a version about to be published.
type Signed struct {
	Version
	// Docs are the signed documents: one, or the parts in order.
	Docs [][]byte
	// Carried are the ids of the statements the batch carries; those
	// still pending become published in it.
	Carried []int64
	// Dropped are the ids of statements a snapshot leaves out.
	Dropped []int64
}

// Sign records a signed version and its documents in one transaction,
// before it is published. A version signed before, for this fleet and
// kind, is ErrVersionUsed and nothing is recorded. A key set or a
// snapshot abandons the unpublished versions of its kind below it: it
// replaces them (a snapshot carries every statement not dropped).
func (l *Ledger) Sign(ctx context.Context, s Signed) error {
	return pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO wicket_authority_versions (fleet, kind, version, base, entries)
			VALUES ($1, $2, $3, $4, $5)`, l.fleet, s.Kind, int64(s.Version.Version), int64(s.Base), s.Entries)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" {
			return fmt.Errorf("%w: %s version %d of fleet %s", ErrVersionUsed, s.Kind, s.Version.Version, l.fleet)
		}
		if err != nil {
			return fmt.Errorf("sign %s %d: %w", s.Kind, s.Version.Version, err)
		}
		if s.Kind != KindBatch || s.Base == 0 {
			if _, err := tx.Exec(ctx, `UPDATE wicket_authority_versions SET abandoned_in = $3
				WHERE fleet = $1 AND kind = $2 AND version < $3 AND published_at IS NULL AND abandoned_in IS NULL`,
				l.fleet, s.Kind, int64(s.Version.Version)); err != nil {
				return fmt.Errorf("sign %s %d: abandon older: %w", s.Kind, s.Version.Version, err)
			}
		}
		for i, d := range s.Docs {
			if _, err := tx.Exec(ctx, `INSERT INTO wicket_authority_documents (fleet, kind, version, part, doc)
				VALUES ($1, $2, $3, $4, $5)`, l.fleet, s.Kind, int64(s.Version.Version), i, d); err != nil {
				return fmt.Errorf("sign %s %d: document %d: %w", s.Kind, s.Version.Version, i, err)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE wicket_authority_entries SET published_in = $2
			WHERE id = ANY($1) AND published_in IS NULL`, s.Carried, int64(s.Version.Version)); err != nil {
			return fmt.Errorf("sign %s %d: carried statements: %w", s.Kind, s.Version.Version, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE wicket_authority_entries SET dropped_in = $2
			WHERE id = ANY($1)`, s.Dropped, int64(s.Version.Version)); err != nil {
			return fmt.Errorf("sign %s %d: dropped statements: %w", s.Kind, s.Version.Version, err)
		}
		return nil
	})
}

// MarkPublished records that the broker acknowledged every document of a
// version. It is idempotent.
func (l *Ledger) MarkPublished(ctx context.Context, kind string, version uint64) error {
	_, err := l.pool.Exec(ctx, `UPDATE wicket_authority_versions SET published_at = coalesce(published_at, now())
		WHERE fleet = $1 AND kind = $2 AND version = $3`, l.fleet, kind, int64(version))
	return err
}
