package loop

import (
	"time"

	"wicket/sync/store"
)

// Outbox is fleet sync as the loop sees it (mqttsync.Sync): the loop wakes
// it for every record it makes durable, and hands it every alert at once
// (committed or not: a red code on a full disk still reaches staff). Its
// methods must not block.
type Outbox interface {
	// Notify says new records are in the outbox.
	Notify()
	// Alert publishes an alert at once, best effort.
	Alert(ev store.Event)
}

// Observer sees what the loop did: the gate's display, metrics and the
// daemon's store alert. Its methods must not block. They run on the
// loop's goroutine, except Recorded for an allowed scan's decision, which
// runs on the goroutine that commits it while the turnstile is open, and
// Recorded for a passage outcome (and a relay alert), which runs on the
// goroutine that commits it while the next scan is decided: Recorded may
// run at the same time as Decided and Finished, never as another
// Recorded.
type Observer interface {
	// Decided sees each decision before the turnstile moves (what the
	// display shows): a denial once it is committed, an allowed scan
	// before its record is built (Seq 0; its record is prepared and
	// committed as the turnstile opens) unless it commits first, and each
	// scan the hold-off swallowed.
	Decided(r Result)
	// Finished sees every final result, passage outcome included.
	Finished(r Result)
	// Recorded sees each record the loop wrote, err nil once it is
	// durable, or the store's error.
	Recorded(ev store.Event, err error)
}

// Attendants is the queue of decisions waiting for an attendant's answer
// (the kiosk). The answer comes back as Loop.Admit.
type Attendants interface {
	// Await says the recorded decision seq waits for an attendant. It
	// must not block.
	Await(seq uint64)
}

// Announce tells out of a record's fate, err nil once it is durable: a
// durable record wakes the outbox, and an alert (IsAlert) is handed over
// at once either way. out may be nil. The daemon uses it for the records
// it writes itself, so every record reaches the outbox the same way.
func Announce(out Outbox, ev store.Event, err error) {
	if out == nil {
		return
	}
	if err == nil {
		out.Notify()
	}
	if IsAlert(ev) {
		out.Alert(ev)
	}
}

// IsAlert reports whether ev goes to the fleet's alert topic.
func IsAlert(ev store.Event) bool {
	return ev.Alert || ev.Type == store.TypeAlert || ev.Type == store.TypeEmergency
}

// Station is the station's shared anti-passback as the loop sees it
// (sync/station.Station): the grants other gates of the station
// announced, and this gate's own to announce. Its methods must not
// block. Granted may run on the goroutine that writes an opened
// passage's record, never at the same time as another call of the loop.
type Station interface {
	// LastAllowed returns when another gate of the station last admitted
	// the voucher (its record hash), if known.
	LastAllowed(voucher string) (time.Time, bool)
	// Granted announces that this gate admitted the voucher (its record
	// hash) at at, recorded as seq.
	Granted(voucher string, at time.Time, seq uint64)
}
