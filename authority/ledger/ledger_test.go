package ledger

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"wicket/pgmigrate/pgtest"
	"wicket/verifier"
)

func open(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.Database(t, "wicket_ledger_test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestMigrateTwiceConcurrently: Migrate is idempotent and two at once
// leave one record per migration.
func TestMigrateTwiceConcurrently(t *testing.T) {
	pool := open(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = Migrate(context.Background(), pool) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate #%d: %v", i, err)
		}
	}
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM wicket_authority_migrations").Scan(&n); err != nil || n != 1 {
		t.Errorf("wicket_authority_migrations: %d rows, %v; want 1", n, err)
	}
}

// TestVersionsAndEntries: statements stay pending until a signed batch
// carries them; a version cannot be signed twice; fleets are apart.
func TestVersionsAndEntries(t *testing.T) {
	ctx := context.Background()
	pool := open(t)
	if err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	l, other := New(pool, "f1"), New(pool, "f2")
	key := bytes.Repeat([]byte{7}, 16)
	ids, err := l.Record(ctx, []verifier.Entry{{Op: verifier.OpRevoke, Key: key, Time: 100, Expires: 200}})
	if err != nil || len(ids) != 1 {
		t.Fatalf("Record = %v, %v", ids, err)
	}
	if _, err := l.Record(ctx, []verifier.Entry{{Op: verifier.OpRevoke, Key: key[:4], Time: 1, Expires: 2}}); err == nil {
		t.Error("Record(4-byte key) = nil; want an error")
	}
	if p, err := l.Pending(ctx); err != nil || len(p) != 1 || !bytes.Equal(p[0].Key, key) || p[0].Expires != 200 {
		t.Fatalf("Pending = %+v, %v; want the revocation", p, err)
	}
	s := Signed{Version: Version{Kind: KindBatch, Version: 1, Entries: 1}, Docs: [][]byte{{1, 2}}, Carried: ids}
	if err := l.Sign(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := l.Sign(ctx, s); !errors.Is(err, ErrVersionUsed) {
		t.Errorf("Sign(version 1 again) = %v; want ErrVersionUsed", err)
	}
	if err := other.Sign(ctx, s); err != nil {
		t.Errorf("Sign(version 1 of another fleet) = %v", err)
	}
	if p, err := l.Pending(ctx); err != nil || len(p) != 0 {
		t.Errorf("Pending after batch 1 = %+v, %v; want none", p, err)
	}
	v, docs, err := l.Unpublished(ctx, KindBatch)
	if err != nil || v == nil || v.Version != 1 || len(docs) != 1 {
		t.Fatalf("Unpublished = %+v, %d docs, %v; want version 1", v, len(docs), err)
	}
	if err := l.MarkPublished(ctx, KindBatch, 1); err != nil {
		t.Fatal(err)
	}
	if v, _, err := l.Unpublished(ctx, KindBatch); v != nil || err != nil {
		t.Errorf("Unpublished after MarkPublished = %+v, %v; want nil", v, err)
	}
	if last, err := l.Last(ctx, KindBatch); err != nil || last.Version != 1 || !last.Published {
		t.Errorf("Last = %+v, %v; want published 1", last, err)
	}
	if last, err := l.Last(ctx, KindKeySet); err != nil || last.Version != 0 {
		t.Errorf("Last(keyset) = %+v, %v; want 0", last, err)
	}
	err = l.Sign(ctx, Signed{Version: Version{Kind: KindBatch, Version: 2}, Dropped: ids})
	if open, _ := l.Open(ctx); err != nil || len(open) != 0 {
		t.Errorf("Open after dropping = %+v, %v; want none", open, err)
	}
}
