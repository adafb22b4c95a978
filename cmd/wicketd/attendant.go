package main

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"wicket/cmd/wicketd/loop"
	"wicket/device/gate"
	"wicket/sync/store"
)

// errNoAttendantCheck: the seq is not a decision waiting for an attendant.
var errNoAttendantCheck = errors.New("no attendant check pending for this decision")

// attendantWindow is how long an attendant may take to answer.
const attendantWindow = 5 * time.Minute

// attendants is the kiosk's queue: recorded decisions waiting for an
// attendant's answer, by seq, each for attendantWindow. The loop fills it
// (loop.Attendants); the admin API's answer takes from it. Safe for
// concurrent use.
type attendants struct {
	mu      sync.Mutex
	waiting map[uint64]time.Time
}

var _ loop.Attendants = (*attendants)(nil)

// Await queues the decision seq from now on.
func (a *attendants) Await(seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.waiting == nil {
		a.waiting = map[uint64]time.Time{}
	}
	a.waiting[seq] = time.Now()
}

// take removes seq from the queue, with every check older than the
// window, and reports whether seq was waiting within it.
func (a *attendants) take(seq uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.waiting[seq]
	delete(a.waiting, seq)
	for s, t := range a.waiting {
		if time.Since(t) > attendantWindow {
			delete(a.waiting, s)
		}
	}
	return ok && time.Since(at) <= attendantWindow
}

// attendant records an attendant's answer to a decision that needed a
// photo check, as its own event; a confirmation has the loop open the
// turnstile, on its own goroutine, after the scan it may be handling.
func (d *daemon) attendant(seq uint64, confirm bool) error {
	if d.att == nil || !d.att.take(seq) {
		return errNoAttendantCheck
	}
	detail := "rejected"
	if confirm {
		detail = "confirmed"
	}
	ref, err := d.record(store.Event{Type: "attendant", At: time.Now(), Gate: d.id, Venue: d.venue, Ref: seq, Detail: detail, Allow: confirm})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	d.log.Info("attendant answer", "seq", seq, "answer", detail)
	if !confirm {
		d.fb.Show(gate.SignalDeny)
		return nil
	}
	d.fb.Show(gate.SignalAllow)
	return d.loop.Admit(ref)
}
