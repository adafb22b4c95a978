package main

import (
	"errors"
	"time"

	"wicket/cmd/wicketd/loop"
	"wicket/sync/store"
)

// This file is the daemon's side of the access log: the gate events it
// records itself, and what it does with every record's fate, the loop's
// included (the store alert, alert metrics, the last record's time).

// record appends a gate event of the daemon's own (no anti-passback
// memory) and reports it as the loop reports its records: to the daemon
// (Recorded) and to the outbox. It returns the record's seq.
func (d *daemon) record(ev store.Event) (uint64, error) {
	_, err := d.st.Append(&ev, 0)
	d.Recorded(ev, err)
	loop.Announce(d.outbox(), ev, err)
	return ev.Seq, err
}

// system logs a gate event (start, stop, emergency) to the access log.
func (d *daemon) system(kind, detail string) {
	typ := "system"
	if kind == "emergency" {
		typ = "emergency"
	}
	if alertKinds[kind] {
		typ = store.TypeAlert
	}
	ev := store.Event{Type: typ, At: time.Now(), Gate: d.id, Venue: d.venue, Reason: kind, Detail: detail}
	if _, err := d.record(ev); err != nil {
		d.log.Error("store commit failed", "event", kind, "err", err)
	}
}

// alertKinds are the gate events that are alerts: they go to the fleet at
// once and count in wicket_alerts_total.
var alertKinds = map[string]bool{
	"store_recovered": true, "revocations_recovered": true, "store_failure": true, "disk_full": true,
	"forced_passage": true, "outbox_full": true, "tamper": true,
}

// alertReason is the reason an alert is counted under.
func alertReason(ev store.Event) string {
	if ev.Type == "emergency" {
		return "emergency"
	}
	return ev.Reason
}

// Recorded handles a record's fate, err nil once it is durable (it is
// the loop's Observer.Recorded, and record's). The outbox hears of it
// from whoever wrote it (loop.Announce).
func (d *daemon) Recorded(ev store.Event, err error) {
	if err != nil {
		d.commitFailed(ev, err)
		return
	}
	d.lastEvent.Store(ev.At.UnixNano())
	if loop.IsAlert(ev) && d.disp != nil {
		d.disp.Metrics().Alert(alertReason(ev))
	}
}

// commitFailed handles an event the store refused. The first failure of a
// run raises store_failure (disk_full for a full file system): logged as
// an ALERT at error level and sent to the fleet from memory, since the
// store cannot hold it. An alert that could not be committed is counted
// (its writer hands it to the fleet from memory), so a red code on a
// full disk still reaches staff.
func (d *daemon) commitFailed(ev store.Event, err error) {
	if errors.Is(err, store.ErrCommit) && d.storeFailing.CompareAndSwap(false, true) {
		kind := "store_failure"
		if errors.Is(err, store.ErrDiskFull) {
			kind = "disk_full"
		}
		d.log.Error("ALERT", "reason", kind, "committed", false, "err", err)
		alert := store.Event{Type: store.TypeAlert, At: time.Now(), Gate: d.id, Venue: d.venue, Reason: kind,
			Detail: "the store cannot commit: every scan is denied internal_error"}
		d.countUncommitted(alert)
		loop.Announce(d.outbox(), alert, err)
	}
	if loop.IsAlert(ev) {
		if !ev.Alert {
			d.log.Error("ALERT", "reason", alertReason(ev), "committed", false, "detail", ev.Detail)
		}
		d.countUncommitted(ev)
	}
}

// countUncommitted counts an alert the store could not hold.
func (d *daemon) countUncommitted(ev store.Event) {
	if d.disp != nil {
		m := d.disp.Metrics()
		m.Alert(alertReason(ev))
		m.AlertUncommitted(alertReason(ev))
	}
}

// forcedPassage raises the forced_passage alert: the passage sensor fired
// with the gate locked.
func (d *daemon) forcedPassage() {
	if d.disp != nil {
		d.disp.Metrics().ForcedPassage()
	}
	d.system("forced_passage", "passage sensor active with no grant")
}
