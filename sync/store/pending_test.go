package store

import (
	"testing"
	"time"
)

// TestPrepareCommit: a prepared record, and its anti-passback memory,
// are invisible to readers until Commit; the record carries its final seq
// before it, and after Commit is exactly what Append would have written.
func TestPrepareCommit(t *testing.T) {
	s := openTest(t, Options{})
	v := s.HashID([]byte("v1"))
	first := Event{Type: TypeDecision, At: t0, Venue: "north", Voucher: v, Allow: true, Reason: "ok"}
	mustAppend(t, s, &first, time.Minute)

	again := Event{Type: TypeDecision, At: t0.Add(time.Second), Venue: "north", Voucher: v, Allow: true, Reason: "ok"}
	p, err := s.Prepare(&again, time.Minute)
	if err != nil {
		t.Fatalf("Prepare = %v", err)
	}
	if again.Seq != 2 || !again.Allow || again.Reason != "ok" {
		t.Fatalf("prepared event = seq %d allow %v reason %q; want seq 2, allowed ok as given", again.Seq, again.Allow, again.Reason)
	}
	if evs, err := s.Events(0, 10); err != nil || len(evs) != 1 {
		t.Fatalf("Events before Commit = %v, %v; want only the first record", seqs(evs), err)
	}
	if at, ok, err := s.LastAllowed("north", v); err != nil || !ok || !at.Equal(first.At) {
		t.Fatalf("LastAllowed before Commit = %v, %v, %v; want the first record's %v", at, ok, err, first.At)
	}
	if err := p.Commit(); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	if err := p.Commit(); err == nil {
		t.Fatal("second Commit = nil; want an error")
	}
	p.Rollback() // a no-op after Commit
	for name, read := range map[string]func(uint64, int) ([]Event, error){"Events": s.Events, "Outbox": s.Outbox} {
		evs, err := read(1, 10)
		if err != nil || len(evs) != 1 || evs[0].Seq != 2 || !evs[0].Allow {
			t.Fatalf("%s after Commit = %+v, %v; want seq 2 allowed", name, evs, err)
		}
	}
	if at, ok, err := s.LastAllowed("north", v); err != nil || !ok || !at.Equal(again.At) {
		t.Fatalf("LastAllowed after Commit = %v, %v, %v; want %v", at, ok, err, again.At)
	}
}

// TestPrepareRollback: a rolled-back record leaves nothing, not even its
// anti-passback entry, and its seq goes to the next record.
func TestPrepareRollback(t *testing.T) {
	s := openTest(t, Options{})
	v := s.HashID([]byte("v1"))
	ev := Event{Type: TypeDecision, At: t0, Venue: "north", Voucher: v, Allow: true, Reason: "ok"}
	p, err := s.Prepare(&ev, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	p.Rollback()
	if err := p.Commit(); err == nil {
		t.Fatal("Commit after Rollback = nil; want an error")
	}
	c, err := s.Counters()
	if err != nil || c != (Counters{}) {
		t.Fatalf("Counters after Rollback = %+v, %v; want zero", c, err)
	}
	if at, ok, err := s.LastAllowed("north", v); err != nil || ok {
		t.Fatalf("LastAllowed after Rollback = %v, %v, %v; want no anti-passback entry left", at, ok, err)
	}
	next := Event{Type: TypeDecision, At: t0.Add(time.Second), Venue: "north", Voucher: v, Allow: true, Reason: "ok"}
	if seq := mustAppend(t, s, &next, time.Minute); seq != 1 || !next.Allow {
		t.Fatalf("Append after Rollback = seq %d allow %v; want seq 1 allowed", seq, next.Allow)
	}
}

// TestPrepareHoldsWriters: other writers wait for the prepared
// transaction, and go on once it is committed.
func TestPrepareHoldsWriters(t *testing.T) {
	s := openTest(t, Options{})
	ev := Event{Type: TypeSystem, At: t0}
	p, err := s.Prepare(&ev, 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan uint64)
	go func() {
		other := Event{Type: TypeSystem, At: t0}
		seq, err := s.Append(&other, 0)
		if err != nil {
			t.Error(err)
		}
		done <- seq
	}()
	select {
	case seq := <-done:
		t.Fatalf("Append committed seq %d while a prepared transaction was open", seq)
	case <-time.After(50 * time.Millisecond):
	}
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	if seq := <-done; seq != 2 {
		t.Fatalf("Append after Commit = seq %d; want 2", seq)
	}
}
