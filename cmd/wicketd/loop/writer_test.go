package loop

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/device"
	"wicket/sync/store"
	"wicket/verifier"
)

// holdWriter prepares a record of another writer (a system event, as the
// daemon writes), which holds the store's write lock until release
// commits it. It returns the record's seq.
func holdWriter(t *testing.T, st *store.Store) (seq uint64, release func()) {
	t.Helper()
	ev := store.Event{Type: store.TypeSystem, At: time.Now(), Gate: "G1", Venue: "V1", Detail: "held"}
	pend, err := st.Prepare(&ev, 0)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if err := pend.Commit(); err != nil {
				t.Errorf("commit of the held record: %v", err)
			}
		})
	}
	t.Cleanup(release)
	return ev.Seq, release
}

// minHold is how long the test's other writer keeps the store's write lock
// at least: two card flushes of the tail (docs/BENCHMARKS.md, "Scan to
// relay on SD-class storage").
const minHold = 300 * time.Millisecond

// TestRelayDoesNotWaitForWriter: another writer holds the store's write
// lock (a commit in flight) when an allowed code is scanned. The relay is
// energised while the lock is still held; the record is committed once
// it is free, before Handle returns, with the seq after the other
// writer's; the seqs stay dense and in order; and the anti-passback
// memory written with it denies the same voucher on the next scan.
func TestRelayDoesNotWaitForWriter(t *testing.T) {
	r := newRig(t, 10*time.Millisecond, 0)
	p := verifier.DefaultPolicy()
	p.AntiPassback = 10 * time.Minute
	r.f.SetPolicy(t, p)
	var mu sync.Mutex
	var recorded []uint64
	r.rebuild(Options{Observer: observer{recorded: func(ev store.Event, err error) {
		if err != nil {
			t.Errorf("Observer.Recorded: %v", err)
			return
		}
		mu.Lock()
		recorded = append(recorded, ev.Seq)
		mu.Unlock()
	}}})
	text := r.f.Issue(t, r.f.Ed, r.f.Claims(decoder.KindPrinted))

	heldSeq, release := holdWriter(t, r.st)
	scan := r.scan(text)
	released := make(chan time.Time, 1)
	go func() {
		// Release at minHold, or later once the relay is on; give up
		// after 10 s (the relay waits for the lock).
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, on := firstHighAfter(r.relay, scan.At); on && time.Since(scan.At) >= minHold {
				break
			}
			time.Sleep(time.Millisecond)
		}
		at := time.Now()
		release()
		released <- at
	}()
	res := r.loop.Handle(context.Background(), scan)
	freed := <-released
	if !res.Decision.Allow {
		t.Fatalf("scan during another writer's commit: %v %v; want allowed", res.Decision.Reason, res.Decision.Detail)
	}
	hi, on := firstHighAfter(r.relay, scan.At)
	if !on || !hi.Before(freed) {
		t.Fatalf("relay energised %v at %v, the store's write lock freed at %v: the relay waited for the lock", on, hi, freed)
	}
	if res.Seq != heldSeq+1 || res.Committed.Before(freed) {
		t.Errorf("record seq %d committed at %v; want seq %d, committed after the lock was freed at %v", res.Seq, res.Committed, heldSeq+1, freed)
	}

	den := r.loop.Handle(context.Background(), r.scan(text))
	if den.Decision.Allow || den.Decision.Reason != verifier.ReasonAntiPassback || den.Seq != heldSeq+3 {
		t.Errorf("same voucher again: %v %v seq %d; want anti_passback, seq %d", den.Decision.Allow, den.Decision.Reason, den.Seq, heldSeq+3)
	}
	evs, err := r.st.Events(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Errorf("event %d has seq %d; want the seqs dense from 1", i, e.Seq)
		}
		got = append(got, fmt.Sprintf("%d:%s:%s:%d", e.Seq, e.Type, e.Reason, e.Ref))
	}
	want := []string{"1:system::0", "2:decision:ok:0", "3:passage::2", "4:decision:anti_passback:0"}
	if !slices.Equal(got, want) {
		t.Errorf("events %v; want %v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(recorded, []uint64{2, 3, 4}) {
		t.Errorf("Observer.Recorded saw seqs %v; want 2, 3, 4", recorded)
	}
}

// TestPrepareFailsAfterOpen: the record of an allowed scan cannot be
// built after the relay opened. The failure is reported, the record is
// written by the second try after the passage (the passage event refers
// to it), and the next scan commits before its relay moves.
func TestPrepareFailsAfterOpen(t *testing.T) {
	r := newRig(t, 10*time.Millisecond, 0)
	var mu sync.Mutex
	var fates []string
	r.rebuild(Options{Observer: observer{recorded: func(ev store.Event, err error) {
		mu.Lock()
		defer mu.Unlock()
		fates = append(fates, fmt.Sprintf("%s:%d:%v", ev.Type, ev.Seq, err != nil))
	}}})
	injected := errors.Join(store.ErrCommit, errors.New("injected: cannot begin the write"))
	fail := true
	r.loop.prepare = func(ev *store.Event, passback time.Duration) (*store.Pending, error) {
		if fail {
			fail = false
			return nil, injected
		}
		return r.st.Prepare(ev, passback)
	}
	code := func(id string) string {
		c := r.f.Claims(decoder.KindPrinted)
		c.ID = []byte(id)
		return r.f.Issue(t, r.f.Ed, c)
	}

	res := r.loop.Handle(context.Background(), r.scan(code("prepare-fails")))
	if !res.Decision.Allow || res.Opened.IsZero() {
		t.Fatalf("scan whose record could not be prepared: allow %v opened %v; want opened", res.Decision.Allow, res.Opened)
	}
	if _, on := firstHighAfter(r.relay, res.ScanAt); !on {
		t.Error("relay not energised for the scan whose record could not be prepared")
	}
	if res.Seq != 1 || res.Committed.IsZero() {
		t.Errorf("second try: seq %d committed %v; want seq 1, committed", res.Seq, res.Committed)
	}
	evs, err := r.st.Events(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Type != "decision" || evs[0].Seq != 1 || evs[1].Type != "passage" || evs[1].Ref != 1 {
		t.Errorf("events %+v; want the decision 1 and its passage", evs)
	}

	next := r.loop.Handle(context.Background(), r.scan(code("after-prepare-failed")))
	if !next.Decision.Allow || next.Seq != 3 {
		t.Fatalf("next scan: allow %v seq %d; want allowed, seq 3", next.Decision.Allow, next.Seq)
	}
	if hi, _ := firstHighAfter(r.relay, next.ScanAt); hi.Before(next.Committed) {
		t.Errorf("after a lost record the relay was energised at %v, before the commit at %v", hi, next.Committed)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"decision:0:true", "decision:1:false", "passage:2:false", "decision:3:false", "passage:4:false"}; !slices.Equal(fates, want) {
		t.Errorf("Observer.Recorded saw %v; want %v", fates, want)
	}
}

// TestNextScanDoesNotWaitForPassage: the passage outcome of an allowed
// scan is still being written (its Prepare held back by the test) when
// the next code is scanned. The next relay is energised meanwhile; the
// next decision's record is written only after the outcome, so the
// loop's records stay in order; the first voucher is still denied by
// anti-passback; and Run writes the last outcome before it returns.
func TestNextScanDoesNotWaitForPassage(t *testing.T) {
	r := newRig(t, 10*time.Millisecond, 0)
	p := verifier.DefaultPolicy()
	p.AntiPassback = 10 * time.Minute
	r.f.SetPolicy(t, p)
	hold := make(chan struct{})
	var held sync.Once
	r.loop.prepare = func(ev *store.Event, passback time.Duration) (*store.Pending, error) {
		if ev.Type == "passage" {
			held.Do(func() { <-hold })
		}
		return r.st.Prepare(ev, passback)
	}
	first := r.f.Issue(t, r.f.Ed, r.f.Claims(decoder.KindPrinted))
	c := r.f.Claims(decoder.KindPrinted)
	c.ID = []byte("second-voucher")
	second := r.f.Issue(t, r.f.Ed, c)

	scans := make(chan device.Scan)
	ran := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { ran <- r.loop.Run(ctx, scans) }()
	a := r.scan(first)
	scans <- a
	// The first passage's outcome is held: the relay went off, and Run
	// takes the next scan.
	b := r.scan(second)
	select {
	case scans <- b:
	case <-time.After(10 * time.Second):
		close(hold)
		t.Fatal("Run did not take the next scan while the previous passage's outcome was being written")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, on := firstHighAfter(r.relay, b.At); on {
			break
		}
		if time.Now().After(deadline) {
			close(hold)
			t.Fatal("the next scan's relay waited for the previous passage's outcome")
		}
		time.Sleep(time.Millisecond)
	}
	close(hold)
	scans <- r.scan(first)
	close(scans)
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	evs, err := r.st.Events(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, fmt.Sprintf("%d:%s:%s:%d", e.Seq, e.Type, e.Reason, e.Ref))
	}
	want := []string{"1:decision:ok:0", "2:passage::1", "3:decision:ok:0", "4:passage::3", "5:decision:anti_passback:0"}
	if !slices.Equal(got, want) {
		t.Errorf("events %v; want %v", got, want)
	}
}
