package collector

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PurgePlan is what a purge removes: the records of every UTC day before
// Before, that is the partitions of those days whole and the rows of the
// default partition timed before Before. PlanPurge makes one without
// changing anything; Apply carries it out.
type PurgePlan struct {
	Before     time.Time
	Partitions []PurgePartition
	// DefaultRows is how many rows of wicket_records_default are timed
	// before Before.
	DefaultRows int64
}

// PurgePartition is one day's partition a purge drops.
type PurgePartition struct {
	Name string
	Day  time.Time
	Rows int64
}

// Rows is how many records the plan removes.
func (p *PurgePlan) Rows() int64 {
	n := p.DefaultRows
	for _, part := range p.Partitions {
		n += part.Rows
	}
	return n
}

// partitionRE matches the names wicket_records_partition gives.
var partitionRE = regexp.MustCompile(`^wicket_records_([0-9]{8})$`)

// PlanPurge finds what a purge of the records of the UTC days before
// before's day would remove, counting the rows. It only reads.
func PlanPurge(ctx context.Context, pool *pgxpool.Pool, before time.Time) (*PurgePlan, error) {
	y, m, d := before.UTC().Date()
	p := &PurgePlan{Before: time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
	rows, err := pool.Query(ctx, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "+
		"WHERE i.inhparent = 'wicket_records'::regclass ORDER BY c.relname")
	if err != nil {
		return nil, fmt.Errorf("plan purge: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("plan purge: %w", err)
	}
	for _, name := range names {
		m := partitionRE.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		day, err := time.Parse("20060102", m[1])
		if err != nil || !day.Before(p.Before) {
			continue
		}
		part := PurgePartition{Name: name, Day: day}
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{name}.Sanitize()).Scan(&part.Rows); err != nil {
			return nil, fmt.Errorf("plan purge: count %s: %w", name, err)
		}
		p.Partitions = append(p.Partitions, part)
	}
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM wicket_records_default WHERE at < $1", p.Before).Scan(&p.DefaultRows); err != nil {
		return nil, fmt.Errorf("plan purge: count the default partition: %w", err)
	}
	return p, nil
}

// purgeLockTimeout bounds how long a purge waits for a partition's lock:
// dropping one waits for the queries reading it, and the collectors'
// inserts queue behind the waiting drop.
const purgeLockTimeout = 5 * time.Second

// Apply drops the plan's partitions, one transaction each, and then
// deletes the default partition's rows timed before p.Before. It is
// destructive and cannot be undone. It stops at the first failure (a lock
// not granted within purgeLockTimeout, a role that may not drop tables:
// purging is the database owner's) and reports how many records were
// removed until then. A partition's records are counted as the plan
// counted them: late records its day received since are dropped with it.
// PostgreSQL locks the partitioned table before the partition for the
// drop, in the collectors' order, so purging beside them cannot deadlock.
func (p *PurgePlan) Apply(ctx context.Context, pool *pgxpool.Pool) (removed int64, err error) {
	lockTimeout := fmt.Sprintf("SET LOCAL lock_timeout = %d", purgeLockTimeout.Milliseconds())
	for _, part := range p.Partitions {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, lockTimeout); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "DROP TABLE "+pgx.Identifier{part.Name}.Sanitize())
			return err
		})
		if err != nil {
			return removed, fmt.Errorf("purge: drop %s: %w", part.Name, err)
		}
		removed += part.Rows
	}
	tag, err := pool.Exec(ctx, "DELETE FROM wicket_records_default WHERE at < $1", p.Before)
	if err != nil {
		return removed, fmt.Errorf("purge: delete from the default partition: %w", err)
	}
	return removed + tag.RowsAffected(), nil
}
