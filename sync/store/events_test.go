package store

import (
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"wicket/verifier"
)

var t0 = time.Unix(1_700_000_000, 0)

func mustAppend(t testing.TB, s *Store, ev *Event, passback time.Duration) uint64 {
	t.Helper()
	seq, err := s.Append(ev, passback)
	if err != nil {
		t.Fatalf("Append(%+v) = %v", ev, err)
	}
	return seq
}

func seqs(evs []Event) []uint64 {
	out := []uint64{}
	for _, e := range evs {
		out = append(out, e.Seq)
	}
	return out
}

func span(from, to uint64) []uint64 {
	out := []uint64{}
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestAppendRoundTrip(t *testing.T) {
	s := openTest(t, Options{})
	ev := Event{
		Type: TypeDecision, At: t0.Add(123456789), Gate: "g1", Venue: "north", Allow: true, Reason: "ok",
		Colour: "green", Kind: "vaccination", Class: "adult", Issuer: "XX", Voucher: s.HashID([]byte("v1")),
		Subject: s.HashSubject([]byte("s1")), Alert: true, Attendant: true, Warnings: []string{"a", "b"}, Detail: "d",
	}
	in := ev
	seq := mustAppend(t, s, &ev, 0)
	if seq != 1 || ev.Seq != 1 {
		t.Fatalf("Append = %d, ev.Seq %d; want 1", seq, ev.Seq)
	}
	in.Seq = 1
	for name, read := range map[string]func(uint64, int) ([]Event, error){"Events": s.Events, "Outbox": s.Outbox} {
		got, err := read(0, 10)
		if err != nil || len(got) != 1 {
			t.Fatalf("%s(0, 10) = %+v, %v; want one event", name, got, err)
		}
		if !got[0].At.Equal(in.At) {
			t.Errorf("%s: At = %v; want %v", name, got[0].At, in.At)
		}
		got[0].At = in.At
		if !reflect.DeepEqual(got[0], in) {
			t.Errorf("%s(0, 10)[0] = %+v; want %+v", name, got[0], in)
		}
	}
}

func TestSeqAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wicket.db")
	var last uint64
	for round := range 4 {
		s := openTest(t, Options{Path: path, MaxEvents: 3})
		for range 5 {
			seq := mustAppend(t, s, &Event{Type: TypeSystem, At: t0}, 0)
			if seq != last+1 {
				t.Fatalf("round %d: Append = %d; want %d", round, seq, last+1)
			}
			last = seq
		}
		if n, err := s.Ack(last); err != nil || n != 5 {
			t.Fatalf("Ack(%d) = %d, %v; want 5", last, n, err)
		}
		s.Close()
	}
}

func TestEventsPagingAndPruning(t *testing.T) {
	s := openTest(t, Options{MaxEvents: 10})
	for range 25 {
		mustAppend(t, s, &Event{Type: TypeSystem, At: t0}, 0)
	}
	tests := []struct {
		after uint64
		max   int
		want  []uint64
	}{
		{0, 100, span(16, 25)},
		{0, 3, span(16, 18)},
		{17, 3, span(18, 20)},
		{24, 10, span(25, 25)},
		{25, 10, []uint64{}},
		{1<<64 - 1, 10, []uint64{}},
		{0, 0, []uint64{}},
		{0, -1, []uint64{}},
	}
	for _, tt := range tests {
		got, err := s.Events(tt.after, tt.max)
		if err != nil || !reflect.DeepEqual(seqs(got), tt.want) {
			t.Errorf("Events(%d, %d) = %v, %v; want %v", tt.after, tt.max, seqs(got), err, tt.want)
		}
	}
	// Pruned records stay queued until acked.
	if got, _ := s.Outbox(0, 100); !reflect.DeepEqual(seqs(got), span(1, 25)) {
		t.Errorf("Outbox(0, 100) = %v; want 1..25", seqs(got))
	}
	st, _ := s.Stats()
	if st.Events != 10 || st.Outbox != 25 || st.LastSeq != 25 {
		t.Errorf("Stats() = %+v; want 10 events, 25 queued, last 25", st)
	}
}

func TestMaxEventsLowered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wicket.db")
	s := openTest(t, Options{Path: path, MaxEvents: 5000})
	for range 3000 {
		mustAppend(t, s, &Event{Type: TypeSystem, At: t0}, 0)
	}
	s.Close()
	s = openTest(t, Options{Path: path, MaxEvents: 10})
	mustAppend(t, s, &Event{Type: TypeSystem, At: t0}, 0)
	st, _ := s.Stats()
	if want := 3001 - maxPrunePerTx; st.Events != want {
		t.Errorf("after one Append: Stats().Events = %d; want %d (pruning is bounded per commit)", st.Events, want)
	}
	for range 3 {
		mustAppend(t, s, &Event{Type: TypeSystem, At: t0}, 0)
	}
	if st, _ = s.Stats(); st.Events != 10 {
		t.Errorf("after more Appends: Stats().Events = %d; want 10", st.Events)
	}
}

func TestOutboxAck(t *testing.T) {
	s := openTest(t, Options{})
	for range 10 {
		mustAppend(t, s, &Event{Type: TypeSystem, At: t0}, 0)
	}
	steps := []struct {
		ack      uint64
		wantN    int
		wantLeft []uint64
	}{
		{0, 0, span(1, 10)},
		{3, 3, span(4, 10)},
		{3, 0, span(4, 10)},
		{2, 0, span(4, 10)},
		{7, 4, span(8, 10)},
		{100, 3, []uint64{}},
		{100, 0, []uint64{}},
	}
	for _, st := range steps {
		n, err := s.Ack(st.ack)
		if err != nil || n != st.wantN {
			t.Errorf("Ack(%d) = %d, %v; want %d", st.ack, n, err, st.wantN)
		}
		got, err := s.Outbox(0, 100)
		if err != nil || !reflect.DeepEqual(seqs(got), st.wantLeft) {
			t.Errorf("after Ack(%d): Outbox = %v, %v; want %v", st.ack, seqs(got), err, st.wantLeft)
		}
	}
	if got, _ := s.Outbox(5, 2); len(got) != 0 {
		t.Errorf("Outbox(5, 2) after acking everything = %v", seqs(got))
	}
	if got, _ := s.Events(0, 100); len(got) != 10 {
		t.Errorf("Ack removed log records: Events = %v", seqs(got))
	}
}

func TestOutboxFull(t *testing.T) {
	logs := &logBuffer{}
	s := openTest(t, Options{MaxOutbox: 3, Logger: newJSONLogger(logs)})
	for range 5 {
		mustAppend(t, s, &Event{Type: TypeSystem, At: t0}, 0)
	}
	if got, _ := s.Outbox(0, 100); !reflect.DeepEqual(seqs(got), span(1, 3)) {
		t.Errorf("Outbox = %v; want 1..3", seqs(got))
	}
	if got, _ := s.Events(0, 100); !reflect.DeepEqual(seqs(got), span(1, 5)) {
		t.Errorf("Events = %v; want 1..5 (dropped events are still logged)", seqs(got))
	}
	st, _ := s.Stats()
	if st.Dropped != 2 || st.Outbox != 3 {
		t.Errorf("Stats() = %+v; want 2 dropped, 3 queued", st)
	}
	if _, err := s.Ack(2); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, &Event{Type: TypeSystem, At: t0}, 0)
	if got, _ := s.Outbox(0, 100); !reflect.DeepEqual(seqs(got), []uint64{3, 6}) {
		t.Errorf("Outbox after Ack(2) and one Append = %v; want [3 6]", seqs(got))
	}
	var warned, resumed int
	for _, r := range logs.records(t) {
		switch r["level"] {
		case "WARN":
			warned++
		case "INFO":
			resumed++
		}
	}
	if warned != 1 || resumed != 1 {
		t.Errorf("logged %d warnings and %d resumptions; want one of each, not one per event", warned, resumed)
	}
}

// TestPassback: the store keeps the anti-passback memory with each record
// and never changes the decision it is given; LastAllowed reads back the
// last allowed passage of a voucher at a venue. (The rule that decides on
// it is the loop's: cmd/wicketd/loop, TestPassbackRule.)
func TestPassback(t *testing.T) {
	const window = time.Minute
	type step struct {
		venue    string
		voucher  string
		at       time.Duration // after t0
		allow    bool          // the caller's decision
		typ      string
		passback time.Duration
	}
	dec := func(venue, voucher string, at time.Duration) step {
		return step{venue, voucher, at, true, TypeDecision, window}
	}
	type want struct {
		venue, voucher string
		at             time.Duration // -1: not remembered
	}
	tests := []struct {
		name  string
		steps []step
		want  []want
	}{
		{"first use remembered", []step{dec("north", "aa", 0)}, []want{{"north", "aa", 0}}},
		{"later use remembered", []step{dec("north", "aa", 0), dec("north", "aa", 30*time.Second)}, []want{{"north", "aa", 30 * time.Second}}},
		{"other venue independent", []step{dec("north", "aa", 0), dec("south", "aa", time.Second)},
			[]want{{"north", "aa", 0}, {"south", "aa", time.Second}}},
		{"other voucher independent", []step{dec("north", "aa", 0), dec("north", "bb", time.Second)},
			[]want{{"north", "aa", 0}, {"north", "bb", time.Second}}},
		{"caller's denial not recorded", []step{
			dec("north", "aa", 0), {"north", "aa", time.Second, false, TypeDecision, window},
		}, []want{{"north", "aa", 0}}},
		{"zero window not recorded", []step{{"north", "aa", 0, true, TypeDecision, 0}}, []want{{"north", "aa", -1}}},
		{"no voucher not recorded", []step{dec("north", "", 0)}, []want{{"north", "", -1}}},
		{"passage events ignored", []step{{"north", "aa", 0, true, TypePassage, window}}, []want{{"north", "aa", -1}}},
		{"clock stepped back: the last record is remembered", []step{dec("north", "aa", time.Hour), dec("north", "aa", 0)},
			[]want{{"north", "aa", 0}}},
		{"never seen", nil, []want{{"north", "aa", -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, Options{})
			for i, st := range tt.steps {
				ev := Event{Type: st.typ, At: t0.Add(st.at), Venue: st.venue, Voucher: st.voucher, Allow: st.allow, Reason: "ok"}
				seq := mustAppend(t, s, &ev, st.passback)
				if ev.Allow != st.allow || ev.Reason != "ok" {
					t.Fatalf("step %d (%+v): Append changed the decision to Allow %v, Reason %q", i, st, ev.Allow, ev.Reason)
				}
				got, _ := s.Events(seq-1, 1)
				if len(got) != 1 || got[0].Allow != st.allow || got[0].Reason != "ok" {
					t.Errorf("step %d: logged %+v; want Allow %v, Reason ok", i, got, st.allow)
				}
			}
			for _, w := range tt.want {
				at, ok, err := s.LastAllowed(w.venue, w.voucher)
				if err != nil {
					t.Fatalf("LastAllowed(%q, %q) = %v", w.venue, w.voucher, err)
				}
				if w.at < 0 {
					if ok {
						t.Errorf("LastAllowed(%q, %q) = %v; want not remembered", w.venue, w.voucher, at)
					}
					continue
				}
				if !ok || !at.Equal(t0.Add(w.at)) {
					t.Errorf("LastAllowed(%q, %q) = %v, %v; want %v", w.venue, w.voucher, at, ok, t0.Add(w.at))
				}
			}
		})
	}
}

func TestPrunePassback(t *testing.T) {
	s := openTest(t, Options{})
	for i := range 10 {
		ev := Event{Type: TypeDecision, At: t0.Add(time.Duration(i) * time.Minute), Venue: "north", Voucher: fmt.Sprint(i), Allow: true}
		mustAppend(t, s, &ev, time.Hour)
	}
	now := t0.Add(20 * time.Minute)
	n, err := s.PrunePassback(now, 15*time.Minute) // keeps entries from minute 5 on
	if err != nil || n != 5 {
		t.Fatalf("PrunePassback = %d, %v; want 5", n, err)
	}
	for i := range 10 {
		_, remembered, err := s.LastAllowed("north", fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		if want := i >= 5; remembered != want {
			t.Errorf("voucher %d after pruning: remembered = %v; want %v", i, remembered, want)
		}
	}
}

// TestPruneKeepsRenewed: an entry found expired in the prune's read
// transaction but renewed before its delete (the voucher allowed again in
// between, as the loop may do) stays remembered.
func TestPruneKeepsRenewed(t *testing.T) {
	s := openTest(t, Options{})
	old := Event{Type: TypeDecision, At: t0, Venue: "north", Voucher: "v", Allow: true}
	mustAppend(t, s, &old, time.Hour)
	cutoff := t0.Add(time.Minute).UnixNano()
	keys, err := s.expiredPassback(cutoff)
	if err != nil || len(keys) != 1 {
		t.Fatalf("expiredPassback = %d keys, %v; want 1", len(keys), err)
	}
	renewed := Event{Type: TypeDecision, At: t0.Add(2 * time.Minute), Venue: "north", Voucher: "v", Allow: true}
	mustAppend(t, s, &renewed, time.Hour)
	if n, err := s.deletePassback(keys, cutoff); err != nil || n != 0 {
		t.Fatalf("deletePassback of a renewed entry = %d, %v; want 0", n, err)
	}
	at, remembered, err := s.LastAllowed("north", "v")
	if err != nil || !remembered || !at.Equal(renewed.At) {
		t.Fatalf("LastAllowed after the prune = %v, %v, %v; want %v, true", at, remembered, err, renewed.At)
	}
}

func TestAppendErrorsLeaveEventUnchanged(t *testing.T) {
	s := openTest(t, Options{})
	big := make([]string, 2000)
	for i := range big {
		big[i] = "warning-text"
	}
	ev := Event{Type: TypeDecision, At: t0, Allow: true, Voucher: "aa", Venue: "north", Warnings: big}
	if _, err := s.Append(&ev, time.Minute); err == nil {
		t.Fatal("Append of an oversized event succeeded")
	}
	if ev.Seq != 0 || !ev.Allow {
		t.Errorf("failed Append changed the event: %+v", ev)
	}
	ok := Event{Type: TypeDecision, At: t0, Allow: true, Voucher: "aa", Venue: "north"}
	if seq := mustAppend(t, s, &ok, time.Minute); seq != 1 || !ok.Allow {
		t.Errorf("Append after a failed one = %d, Allow %v; want 1, true (nothing of the failed one kept)", seq, ok.Allow)
	}
}

// TestConcurrentUse runs lookups against appends and batch installs; the
// race detector does the checking.
func TestConcurrentUse(t *testing.T) {
	s := openTest(t, Options{MaxEvents: 100, MaxOutbox: 50})
	rng := newRand(t)
	batches := make([]*verifier.Batch, 20)
	for i := range batches {
		batches[i] = randomBatch(rng, uint64(i+1), uint64(i), 200, t0)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	for r := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				id := poolKey(i % 800)
				if _, err := s.Revoked(id); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Subject(id); err != nil {
					t.Error(err)
					return
				}
				_ = s.Info()
				_ = s.Floor()
				if r == 0 {
					if _, err := s.Outbox(0, 10); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	var writers sync.WaitGroup
	writers.Go(func() {
		for _, b := range batches {
			if err := s.ApplyBatch(b, t0); err != nil {
				t.Error(err)
			}
		}
	})
	writers.Go(func() {
		for i := range 200 {
			ev := Event{Type: TypeDecision, At: t0.Add(time.Duration(i) * time.Second), Allow: true, Voucher: fmt.Sprint(i % 7)}
			if _, err := s.Append(&ev, time.Minute); err != nil {
				t.Error(err)
			}
			if i%10 == 0 {
				if _, err := s.Ack(uint64(i)); err != nil {
					t.Error(err)
				}
				if err := s.RaiseFloor(t0.Add(time.Duration(i) * time.Second)); err != nil {
					t.Error(err)
				}
			}
		}
	})
	writers.Wait()
	close(done)
	wg.Wait()
	if got := s.Info().Version; got != 20 {
		t.Errorf("Info().Version = %d; want 20", got)
	}
}

func TestOutboxAckRange(t *testing.T) {
	s := openTest(t, Options{})
	for range 10 {
		mustAppend(t, s, &Event{Type: TypeSystem, At: t0}, 0)
	}
	steps := []struct {
		from, through uint64
		wantN         int
		wantLeft      []uint64
	}{
		{4, 6, 3, []uint64{1, 2, 3, 7, 8, 9, 10}},
		{4, 6, 0, []uint64{1, 2, 3, 7, 8, 9, 10}},
		{9, 20, 2, []uint64{1, 2, 3, 7, 8}},
		{1, 1, 1, []uint64{2, 3, 7, 8}},
		{2, 8, 4, []uint64{}},
	}
	for _, st := range steps {
		n, err := s.AckRange(st.from, st.through)
		if err != nil || n != st.wantN {
			t.Errorf("AckRange(%d, %d) = %d, %v; want %d", st.from, st.through, n, err, st.wantN)
		}
		got, err := s.Outbox(0, 100)
		if err != nil || !reflect.DeepEqual(seqs(got), st.wantLeft) {
			t.Errorf("after AckRange(%d, %d): Outbox = %v, %v; want %v", st.from, st.through, seqs(got), err, st.wantLeft)
		}
	}
	if st, _ := s.Stats(); st.Outbox != 0 {
		t.Errorf("Stats.Outbox = %d after acking everything", st.Outbox)
	}
}
