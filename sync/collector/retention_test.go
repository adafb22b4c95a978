package collector

import (
	"context"
	"testing"
	"time"
)

// A purge plan names the whole days before its cutoff and counts their
// records; it changes nothing until applied, and then removes exactly
// those records: the days' partitions and the default partition's rows
// before the cutoff, keeping everything from the cutoff's day on.
func TestPurge(t *testing.T) {
	ctx := context.Background()
	pool := openPool(t, freshDatabase(t))
	if err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	day := func(n int) time.Time { return now.AddDate(0, 0, n) }
	gate := "purged-gate"
	times := []time.Time{
		day(-100), day(-100), day(-95), // old: purged
		day(-90),     // the cutoff's day: kept
		day(-1), now, // recent
		time.Unix(0, 0).UTC(), // default partition, old: purged
		day(60),               // default partition, ahead: kept
	}
	w := NewWriter(pool, testLog(t))
	if n, err := w.Write(ctx, dayRecords(gate, 1, times...)); err != nil || n != len(times) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(times))
	}
	before := day(-90)
	plan, err := PlanPurge(ctx, pool, before)
	if err != nil {
		t.Fatal(err)
	}
	y, m, d := before.Date()
	if want := time.Date(y, m, d, 0, 0, 0, 0, time.UTC); !plan.Before.Equal(want) {
		t.Errorf("plan.Before = %v; want %v (the start of the UTC day)", plan.Before, want)
	}
	if len(plan.Partitions) != 2 || plan.Partitions[0].Name != partitionName(day(-100)) || plan.Partitions[0].Rows != 2 ||
		plan.Partitions[1].Name != partitionName(day(-95)) || plan.Partitions[1].Rows != 1 {
		t.Errorf("plan.Partitions = %+v; want %s with 2 rows and %s with 1", plan.Partitions, partitionName(day(-100)), partitionName(day(-95)))
	}
	if plan.DefaultRows != 1 || plan.Rows() != 4 {
		t.Errorf("plan: %d default rows, %d in all; want 1 and 4", plan.DefaultRows, plan.Rows())
	}
	if n := countRows(t, pool, gate, 1, 100); n != len(times) {
		t.Fatalf("%d rows after planning; want all %d", n, len(times))
	}

	removed, err := plan.Apply(ctx, pool)
	if err != nil || removed != 4 {
		t.Fatalf("Apply = %d, %v; want 4, nil", removed, err)
	}
	left := partitionOf(t, pool, gate)
	for seq, want := range map[int64]bool{1: false, 2: false, 3: false, 4: true, 5: true, 6: true, 7: false, 8: true} {
		if _, ok := left[seq]; ok != want {
			t.Errorf("seq %d (at %v) kept = %v; want %v", seq, times[seq-1], ok, want)
		}
	}
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", partitionName(day(-100))).Scan(&exists); err != nil || exists {
		t.Errorf("partition %s exists after the purge = %v, %v; want false", partitionName(day(-100)), exists, err)
	}
	// Nothing left to purge; a late record of a purged day is stored again.
	if again, err := PlanPurge(ctx, pool, before); err != nil || again.Rows() != 0 || len(again.Partitions) != 0 {
		t.Fatalf("second plan = %+v, %v; want nothing", again, err)
	}
	if n, err := NewWriter(pool, testLog(t)).Write(ctx, dayRecords(gate, 1, times[0])); err != nil || n != 1 {
		t.Fatalf("late record of a purged day: Write = %d, %v; want 1, nil", n, err)
	}
}
