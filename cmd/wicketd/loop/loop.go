// Package loop is the gate's decision loop: one scan in, one decision out,
// its record written to the store as the turnstile moves.
//
// For each scan it applies the hold-off (a held code decides once), asks
// the verifier, applies the gate's own rules (the rules type at the
// end of this file: temperature screening, anti-passback, which decisions wait for an attendant) and
// builds the access event and its outbox row in one store transaction.
// A denial is committed before its feedback plays. For an allowed scan
// the turnstile opens first, after reads of the store only, and the
// transaction is built and committed (fsynced) while the relay is on, so
// the relay waits neither for the disk nor for the store's write lock
// (another writer's commit in flight); a power cut between the relay
// edge and the end of that commit (the wait for the lock included; tens
// of ms on SD-class storage, see docs/design.md for the bound) loses the
// record of a passage that the powerless, fail-secure turnstile then
// cannot complete (docs/design.md, "Relay before fsync").
// Config.CommitBeforeOpen (store.commit_before_open) restores the old
// order. If a commit fails, the loop alerts and commits
// before opening until a decision's record commits again, so a failing
// disk denies every scan. The loop never waits on the network.
//
// What it owns: the final decision on a scan (the verifier's, then
// its rules'), the order of commit, relay and feedback, and waking the
// outbox (Outbox) for every record it writes. What it may not touch: the
// verifier's rules (it only adds its own after them), the store's
// contents other than through Prepare/Append, and anything of the daemon
// (display, metrics, alerts about the store): it reports to an Observer
// and never calls back into main.
//
// Single writer: the loop is the only writer of decision records, one
// scan at a time (Loop.mu). Anti-passback reads the store's memory
// (store.LastAllowed) and then records the decision with it, which is
// exact only because no other decision can be recorded in between; the
// daemon's own records (system, attendant) carry no anti-passback memory.
// The station's memory (Options.Station, sync/station) is not exact: it
// holds the grants of the station's other gates once they arrive over the
// broker, a few milliseconds after their relay opened (docs/BENCHMARKS.md,
// "Station-wide anti-passback"), and nothing while the broker is away.
package loop

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"wicket/decoder"
	"wicket/device"
	"wicket/device/gate"
	"wicket/sync/store"
	"wicket/verifier"
)

// Turnstile is the relay seam: device/gate.Turnstile on hardware or in
// simulation.
type Turnstile interface {
	Open(ctx context.Context) (gate.Passage, error)
}

// Feedback is the LED and buzzer seam.
type Feedback interface {
	Show(s gate.Signal) <-chan struct{}
}

// Config is what the loop needs from wicketd.yaml.
type Config struct {
	Gate, Venue string
	// HoldOff is the same-code window; 0 turns it off.
	HoldOff time.Duration
	// CommitBeforeOpen makes an allowed scan's record durable before the
	// turnstile opens, as denials are: no window for a power cut, at the
	// cost of the disk's flush latency on every opening.
	CommitBeforeOpen bool
}

// Options are the loop's seams besides the verifier, store and turnstile.
// Every field may be left nil.
type Options struct {
	// Feedback drives the LEDs and buzzer.
	Feedback Feedback
	// Thermometer is the sensor policy.temperature reads.
	Thermometer Thermometer
	// Outbox is fleet sync: woken for each durable record, handed each
	// alert at once. Nil when the gate does not sync.
	Outbox Outbox
	// Observer sees each decision, each result and each record's fate
	// (display, metrics, the daemon's store alert).
	Observer Observer
	// Attendants is told of each recorded decision that waits for an
	// attendant's answer (the kiosk's queue). Nil when nobody can answer.
	Attendants Attendants
	// Station shares anti-passback with the other gates of the station:
	// the rules consult it beside the store's memory, and each admitted
	// voucher is announced to it once its record has a seq (for a scan
	// opened before its record is written, from the goroutine writing
	// it, as the turnstile opens). Nil: this gate's memory only.
	Station Station
	// Logger is the daemon's logger; nil discards.
	Logger *slog.Logger
}

// Result is what happened to one scan.
type Result struct {
	// Skipped: the hold-off swallowed the scan; nothing else is set.
	Skipped bool
	// Decision is the final decision (the loop's rules and store
	// failures included).
	Decision verifier.Decision
	// Seq is the access event's sequence number (0 if not committed).
	// What Observer.Decided sees of a scan allowed before its record is
	// written has none yet (0): the store gives it after the relay edge.
	Seq uint64
	// Passage is the turnstile's outcome for an allowed decision.
	Passage gate.Passage
	// Temperature is the screening result (TempNormal, TempFever,
	// TempNone, TempFault), "" when none was taken.
	Temperature string
	// ScanAt is when the scanner completed the frame; Committed when the
	// event was durable; Opened when the turnstile was told to open (an
	// allowed scan's commit ends after it).
	ScanAt, Committed, Opened time.Time
	// Taken is when the loop took the scan, Verified when the verifier
	// had decided and Ruled when the gate's rules had (the anti-passback
	// read of the store included): with ScanAt and Opened, where a scan's
	// time to the relay went (logged at debug level, "scan stages").
	Taken, Verified, Ruled time.Time
}

// Loop is the decision loop. Create it with New; Run drives it (Handle
// decides one scan, for tests and tools).
type Loop struct {
	cfg   Config
	v     *verifier.Verifier
	st    *store.Store
	ts    Turnstile
	fb    Feedback
	rules rules
	out   Outbox
	obs   Observer
	att   Attendants
	hold  *device.HoldOff
	log   *slog.Logger
	now   func() time.Time

	// admits holds attendants' confirmations for Run to open the
	// turnstile on, one passage at a time with the scans.
	admits chan uint64

	mu sync.Mutex // one scan at a time
	// prepare is st.Prepare; tests make it fail.
	prepare func(ev *store.Event, passback time.Duration) (*store.Pending, error)
	// lostOpen: an opened passage's record failed to commit, and no
	// decision has been committed since. Guarded by mu.
	lostOpen bool
	// passage is closed once the passage outcome being written (see
	// passed) is durable or refused; nil when none was. Guarded by mu.
	passage   chan struct{}
	heartbeat atomic.Int64
	limiter   *device.LogLimiter
}

// New returns a Loop.
func New(cfg Config, v *verifier.Verifier, st *store.Store, ts Turnstile, opts Options) *Loop {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Loop{cfg: cfg, v: v, st: st, ts: ts, fb: opts.Feedback, out: opts.Outbox, obs: opts.Observer, att: opts.Attendants,
		log: log.With("component", "loop"), now: time.Now, limiter: device.NewLogLimiter(logEvery),
		admits: make(chan uint64, admitQueue)}
	l.prepare = st.Prepare
	l.rules = rules{v: v, st: st, thermo: opts.Thermometer, station: opts.Station, now: l.now}
	if cfg.HoldOff > 0 {
		l.hold = device.NewHoldOff(cfg.HoldOff, device.DefaultHoldOffSize)
	}
	l.heartbeat.Store(time.Now().UnixNano())
	return l
}

// admitQueue bounds attendants' confirmations waiting for the turnstile:
// one kiosk, one person at a time; more are refused, not queued.
const admitQueue = 4

// heartbeatEvery is how often an idle loop proves it is alive.
const heartbeatEvery = time.Second

// ErrAdmitBusy: too many confirmations already wait for the turnstile.
var ErrAdmitBusy = errors.New("the turnstile has confirmations waiting; try again")

// Run handles scans and attendants' confirmations until ctx ends or scans
// is closed; it returns nil then, once the last passage outcome is
// written. Every turnstile movement and decision record of the loop
// happens on Run's goroutine (or, for an allowed scan's commit, on one
// Run joins before the next scan); a passage outcome is written on a
// goroutine of its own while Run takes the next scan (see passed).
func (l *Loop) Run(ctx context.Context, scans <-chan device.Scan) error {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	defer l.flushPassage()
	for {
		l.heartbeat.Store(l.now().UnixNano())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case ref := <-l.admits:
			l.admit(ctx, ref)
		case s, ok := <-scans:
			if !ok {
				return nil
			}
			l.logStages(l.handle(ctx, s))
		}
	}
}

// Healthy reports whether the loop has been through its select within
// maxAge: the watchdog pings systemd only while it is.
func (l *Loop) Healthy(maxAge time.Duration) bool {
	return l.now().Sub(time.Unix(0, l.heartbeat.Load())) <= maxAge
}

// Handle decides on one scan, drives the turnstile and feedback and
// commits its record (a denial's before the feedback, an allowed scan's
// as the turnstile opens). It blocks until the turnstile reports the
// passage outcome and the commits of the record and of the passage
// outcome have ended.
func (l *Loop) Handle(ctx context.Context, s device.Scan) Result {
	r := l.handle(ctx, s)
	l.flushPassage()
	return r
}

// handle is Handle without the wait for the passage outcome's commit:
// Run takes the next scan while it is written.
func (l *Loop) handle(ctx context.Context, s device.Scan) Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := Result{ScanAt: s.At, Taken: l.now()}
	if l.hold != nil && !l.hold.Allow(s.Payload, s.At) {
		r.Skipped = true
		l.decided(r)
		return r
	}
	pol := l.v.Policy()
	vd := l.v.Verify(s.Payload)
	r.Verified = l.now()
	d, temp, err := l.rules.apply(ctx, pol, s.At, l.cfg.Venue, vd)
	r.Ruled = l.now()
	ev := l.event(d)
	ev.Temperature, ev.Celsius = temp.state, temp.celsius
	r.Temperature = temp.state
	if err != nil {
		return l.notCommitted(r, d, ev, err)
	}
	window := PassbackWindow(pol, d)
	r.Decision = d
	if d.Allow && !l.commitFirst() {
		return l.openThenCommit(ctx, r, ev, window)
	}
	// The loop's records stay in order: the previous passage outcome
	// first (a denial waits for the write lock anyway).
	l.waitPassage()
	pend, err := l.prepare(&ev, window)
	if err != nil {
		return l.notCommitted(r, d, ev, err)
	}
	r.Seq = ev.Seq
	if err := pend.Commit(); err != nil {
		return l.notCommitted(r, d, ev, err)
	}
	l.share(ev, window)
	l.lostOpen = false
	r.Committed = l.now()
	l.recorded(ev, nil)
	l.logDecision(r, ev)
	l.decided(r)
	if !d.Allow {
		l.signal(signalFor(d.Reason))
		l.report(r)
		return r
	}
	l.signal(gate.SignalAllow)
	r.Opened = l.now()
	r.Passage = l.open(ctx, r.Seq)
	l.report(r)
	return r
}

// logStages logs, at debug level, where the time of a scan that reached
// the turnstile went: from the frame's completion to the loop taking the
// scan, to the verifier's and the rules' decisions, to the relay told to
// open (durations from the frame's completion); frame is the frame's
// completion in Unix nanoseconds, for a tool that stamped the last byte.
// It runs after the scan was handled, off the relay's path.
func (l *Loop) logStages(r Result) {
	if r.Skipped || r.Opened.IsZero() || !l.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	l.log.Debug("scan stages", "frame", r.ScanAt.UnixNano(), "taken", r.Taken.Sub(r.ScanAt),
		"verified", r.Verified.Sub(r.ScanAt), "ruled", r.Ruled.Sub(r.ScanAt), "opened", r.Opened.Sub(r.ScanAt))
}

// commitFirst reports whether an allowed scan's record must be durable
// before the turnstile opens: when configured so, while the store cannot
// begin a write (closed, read-only) or its last commit failed, and after
// an opened passage's record failed to commit
// until a decision commits again (a failing disk then denies every scan,
// as its record can't be written, instead of opening first and losing it;
// a small write that fits in the file's free pages does not count).
func (l *Loop) commitFirst() bool {
	return l.cfg.CommitBeforeOpen || l.lostOpen || l.st.Writable() != nil || l.st.CommitHealth().Err != nil
}

// notCommitted denies a scan whose record could not be built or written.
func (l *Loop) notCommitted(r Result, d verifier.Decision, ev store.Event, err error) Result {
	// Reported after the passage outcome in flight, as every record.
	l.waitPassage()
	l.log.Error("store commit failed; denying", "err", err)
	l.recorded(ev, err)
	r.Seq = 0
	r.Decision = failSecure(d, "store commit: "+err.Error())
	l.signal(gate.SignalError)
	l.decided(r)
	l.report(r)
	return r
}

// commitOutcome is how the record of an opened passage ended: its seq
// once committed, when the commit ended, and whether the station was told
// of the grant.
type commitOutcome struct {
	seq    uint64
	at     time.Time
	err    error
	shared bool
}

// openThenCommit opens the turnstile for an allowed scan and builds and
// writes its record while the relay is already on: the relay edge waits
// neither for the fsync nor for the store's write lock, which another
// writer's commit in flight (the sync's acks, the clock floor, the
// daemon's own records) may hold for a card flush or two. Between the
// decision and the relay the loop only reads the store (anti-passback,
// store.LastAllowed); the record is prepared and committed on a goroutine
// of its own, which reports it (to the outbox and observer, and the
// decision's log line) as soon as it ends, after the previous passage
// outcome's commit; the loop joins it after the turnstile, so the record
// is durable before the next scan is decided, and this passage's outcome
// is then written beside the next scan (passed). If the record could not be prepared or committed, it is
// written once more after the passage (a disk that failed for a moment),
// referred to by the passage event, and lostOpen makes the next scan
// commit before it opens. See docs/design.md, "Relay before fsync".
func (l *Loop) openThenCommit(ctx context.Context, r Result, ev store.Event, passback time.Duration) Result {
	// What Decided sees has no seq: the store gives one when the record
	// is prepared, after the relay edge, and a number guessed now could
	// be taken by another writer's record first.
	l.decided(r)
	l.signal(gate.SignalAllow)
	done := make(chan commitOutcome, 1)
	// The turnstile is told to open as the commit starts: Opened is
	// stamped first, so a commit faster than the goroutine's start (a
	// RAM disk) still reads as after it.
	r.Opened = l.now()
	prev := l.passage
	go func() {
		// The previous passage outcome is prepared first, so the loop's
		// records stay in order; the relay does not wait for it.
		if prev != nil {
			<-prev
		}
		done <- l.commitOpened(ev, passback, r)
	}()
	p, err := l.ts.Open(ctx)
	out := <-done
	r.Seq, r.Committed = out.seq, out.at
	if out.err != nil {
		l.lostOpen = true
		r.Seq, r.Committed = 0, time.Time{}
		retry := ev
		seq, err := l.st.Append(&retry, passback)
		if err != nil {
			l.log.Error("store commit of the opened passage's record failed again", "err", err)
			l.recorded(retry, err)
		} else {
			r.Seq, r.Committed = seq, l.now()
			if !out.shared {
				l.share(retry, passback)
			}
			l.recorded(retry, nil)
			l.logDecision(r, retry)
		}
	}
	r.Passage = l.passed(r.Seq, p, err)
	l.report(r)
	return r
}

// commitOpened prepares and commits ev, the record of the decision shown
// (its relay already told to open), and reports its fate. It runs on the
// goroutine openThenCommit starts, while Run's goroutine drives the
// turnstile and holds l.mu; it touches nothing of the loop that the
// turnstile's side does.
func (l *Loop) commitOpened(ev store.Event, passback time.Duration, shown Result) commitOutcome {
	var out commitOutcome
	pend, err := l.prepare(&ev, passback)
	if err == nil {
		// The station's grants carry the seq (its receivers refuse a
		// gate's seq that does not grow), so the grant is announced once
		// the record has one: a moment after the relay edge, or after
		// the wait for another writer's commit.
		l.share(ev, passback)
		out.shared = true
		err = pend.Commit()
	}
	out.at, out.err = l.now(), err
	if err != nil {
		l.log.Error("store commit failed after the turnstile opened: the passage has no record yet", "err", err)
		l.recorded(ev, err)
		return out
	}
	out.seq = ev.Seq
	l.recorded(ev, nil)
	shown.Seq = ev.Seq
	l.logDecision(shown, ev)
	return out
}

// Admit asks Run to open the turnstile for an event already committed
// (an attendant's confirmation, ref its seq) and to record the passage
// outcome, one passage at a time with the scans. It does not block: it
// returns ErrAdmitBusy when admitQueue confirmations already wait. A
// confirmation still waiting when Run returns is dropped (the gate is
// stopping; the turnstile stays locked).
func (l *Loop) Admit(ref uint64) error {
	select {
	case l.admits <- ref:
		return nil
	default:
		return ErrAdmitBusy
	}
}

// admit opens the turnstile for ref on Run's goroutine.
func (l *Loop) admit(ctx context.Context, ref uint64) gate.Passage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open(ctx, ref)
}

// open drives the turnstile and commits the passage outcome as an event
// referring to ref. The caller holds l.mu.
func (l *Loop) open(ctx context.Context, ref uint64) gate.Passage {
	p, err := l.ts.Open(ctx)
	return l.passed(ref, p, err)
}

// passed logs the outcome p, err of an Open for the event ref (0 when that
// event has no record) and writes it, with a relay alert if the relay
// failed, on a goroutine of its own: the next scan is decided, and its
// relay opened, while that commit runs (its own record is prepared only
// once the outcome's commit ended: waitPassage). At most one outcome is
// in flight. The caller holds l.mu.
func (l *Loop) passed(ref uint64, p gate.Passage, err error) gate.Passage {
	l.waitPassage()
	detail := passageDetail(p)
	if err != nil {
		detail = "error"
		if errors.Is(err, gate.ErrEmergency) {
			detail = "emergency_free"
		}
		l.log.Warn("turnstile did not open normally", "seq", ref, "err", err)
	}
	pev := store.Event{Type: "passage", At: l.now(), Gate: l.cfg.Gate, Venue: l.cfg.Venue, Ref: ref, Detail: detail}
	relayFault := errors.Is(err, gate.ErrGPIO)
	done := make(chan struct{})
	l.passage = done
	go func() {
		defer close(done)
		l.append(pev, "store commit of passage outcome failed")
		if relayFault {
			// The relay did not do what it was told: staff must look at
			// the gate now, whatever state it was left in.
			l.append(store.Event{Type: store.TypeAlert, At: l.now(), Gate: l.cfg.Gate, Venue: l.cfg.Venue, Ref: ref,
				Reason: "relay_fault", Detail: "relay write failed"}, "store commit of relay alert failed")
		}
	}()
	if p == gate.NotPassed {
		l.log.Info("granted but not passed", "seq", ref)
	}
	return p
}

// flushPassage is waitPassage for a caller that does not hold l.mu.
func (l *Loop) flushPassage() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waitPassage()
}

// waitPassage waits until the passage outcome in flight, if any, is
// durable or refused. The caller holds l.mu.
func (l *Loop) waitPassage() {
	if l.passage != nil {
		<-l.passage
		l.passage = nil
	}
}

// share announces an admitted voucher to the station, once the gate is
// bound to open for it and its record has a seq: once prepared, while the
// relay opens, or once a commit-first record is durable. A decision
// without a window is not shared.
func (l *Loop) share(ev store.Event, window time.Duration) {
	if l.rules.station != nil && ev.Allow && ev.Voucher != "" && window > 0 {
		l.rules.station.Granted(ev.Voucher, ev.At, ev.Seq)
	}
}

// append records ev (no anti-passback memory) and reports it, as
// store.Append does but through l.prepare; failMsg is logged if the store
// refuses it.
func (l *Loop) append(ev store.Event, failMsg string) {
	e := ev
	pend, err := l.prepare(&e, 0)
	if err == nil {
		err = pend.Commit()
	}
	if err != nil {
		l.log.Error(failMsg, "seq", ev.Ref, "err", err)
		e = ev
	}
	l.recorded(e, err)
}

// event turns a decision into an access record: hashed identifiers only.
func (l *Loop) event(d verifier.Decision) store.Event {
	ev := store.Event{
		Type: "decision", At: d.At, Gate: l.cfg.Gate, Venue: l.cfg.Venue,
		Allow: d.Allow, Reason: string(d.Reason), Alert: d.Alert, Attendant: d.Attendant,
	}
	if d.Colour != 0 {
		ev.Colour = d.Colour.String()
	}
	for _, w := range d.Warnings {
		ev.Warnings = append(ev.Warnings, string(w))
	}
	if v := d.Voucher; v != nil {
		ev.Kind, ev.Class, ev.Issuer = v.Kind.String(), v.Class.String(), v.Issuer
		ev.Voucher = l.st.HashID(v.ID)
		ev.Subject = l.st.HashSubject(v.Subject)
	}
	return ev
}

// gateFaults are reasons that say the gate, not the holder, is at fault:
// they get the error pattern, so staff notice.
var gateFaults = map[verifier.Reason]bool{
	verifier.ReasonNoTrustData: true, verifier.ReasonClockUntrusted: true,
	verifier.ReasonTrustDataStale: true, verifier.ReasonInternal: true,
	verifier.ReasonThermometerFault: true,
}

func signalFor(r verifier.Reason) gate.Signal {
	if gateFaults[r] {
		return gate.SignalError
	}
	return gate.SignalDeny
}

// passageDetail is how a passage outcome is written in events.
func passageDetail(p gate.Passage) string {
	switch p {
	case gate.Passed:
		return "passed"
	case gate.NotPassed:
		return "not_passed"
	case gate.PassageUnknown:
		return "unknown"
	}
	return "error"
}

func (l *Loop) signal(s gate.Signal) {
	if l.fb != nil {
		l.fb.Show(s)
	}
}

// recorded reports a record's fate, err nil once it is durable: to the
// observer, then to the outbox. A red code the store refused is logged as
// an ALERT even so (keyed hashes only): the decision is denied, but staff
// must still hear of the holder.
func (l *Loop) recorded(ev store.Event, err error) {
	if err != nil && ev.Alert {
		l.log.Error("ALERT", "committed", false, "reason", ev.Reason, "voucher", ev.Voucher, "colour", ev.Colour, "kind", ev.Kind)
	}
	if l.obs != nil {
		l.obs.Recorded(ev, err)
	}
	Announce(l.out, ev, err)
}

// decided shows a decision before the turnstile moves, and queues a
// recorded one that waits for an attendant.
func (l *Loop) decided(r Result) {
	if l.att != nil && awaitsAttendant(r) {
		l.att.Await(r.Seq)
	}
	if l.obs != nil {
		l.obs.Decided(r)
	}
}

func (l *Loop) report(r Result) {
	if l.obs != nil {
		l.obs.Finished(r)
	}
}

// logDecision logs one line per decision, with no personal data, and
// rate-limits repeated bad codes so a scanner stuck on one can't flood
// the journal.
func (l *Loop) logDecision(r Result, ev store.Event) {
	d := r.Decision
	attrs := []any{"seq", r.Seq, "allow", d.Allow, "reason", d.Reason}
	if ev.Voucher != "" {
		attrs = append(attrs, "voucher", ev.Voucher, "colour", ev.Colour, "kind", ev.Kind)
	}
	if d.Detail != "" {
		attrs = append(attrs, "detail", d.Detail)
	}
	if len(ev.Warnings) > 0 {
		attrs = append(attrs, "warnings", ev.Warnings)
	}
	if ev.Temperature != "" {
		attrs = append(attrs, "temperature", ev.Temperature)
	}
	switch {
	case d.Alert:
		l.log.Warn("ALERT", attrs...)
	case d.Voucher == nil:
		if ok, n := l.limiter.Allow(string(d.Reason), l.now()); ok {
			if n > 0 {
				attrs = append(attrs, "suppressed", n)
			}
			l.log.Info("decision", attrs...)
		}
	default:
		l.log.Info("decision", attrs...)
	}
}

// logEvery is how often a line per reason of unreadable codes is logged.
const logEvery = 10 * time.Second

// rules are the gate's own rules, applied after the verifier's and in one
// place: temperature screening (policy.temperature), anti-passback
// (policy.anti_passback, per kind policy.kinds.<kind>.anti_passback, on
// the store's memory and the station's) and which decisions wait for an
// attendant. Each denies with the verifier's Decision.Deny, as the
// verifier itself does. The store only records what they decide.
type rules struct {
	v       *verifier.Verifier
	st      *store.Store
	thermo  Thermometer // nil: no thermometer
	station Station     // nil: anti-passback on this gate's memory only
	now     func() time.Time
}

// Details of anti-passback denials: passed here, or at another gate of
// the station (its grant came over the broker).
const (
	passbackDetail        = "voucher passed at this venue within the anti-passback window"
	stationPassbackDetail = "voucher passed at another gate of this station within the anti-passback window"
)

// apply turns the verifier's decision d on a scan completed at scanAt into
// the gate's final decision under the policy pol, with the temperature
// taken. The error is the store's, when the anti-passback memory could
// not be read: the caller must deny for a gate fault.
func (ru rules) apply(ctx context.Context, pol verifier.Policy, scanAt time.Time, venue string, d verifier.Decision) (verifier.Decision, temperature, error) {
	var temp temperature
	if ru.thermo != nil && pol.Temperature.Required && (d.Allow || d.Attendant) {
		d, temp = ru.checkTemperature(ctx, pol.Temperature, scanAt, d)
	}
	window := PassbackWindow(pol, d)
	if !d.Allow || window <= 0 {
		return d, temp, nil
	}
	voucher := ru.st.HashID(d.Voucher.ID)
	last, ok, err := ru.st.LastAllowed(venue, voucher)
	if err != nil {
		return d, temp, err
	}
	if ok && passedWithin(last, d.At, window) {
		return d.Deny(verifier.ReasonAntiPassback, passbackDetail), temp, nil
	}
	if ru.station != nil {
		if last, ok := ru.station.LastAllowed(voucher); ok && passedWithin(last, d.At, window) {
			d = d.Deny(verifier.ReasonAntiPassback, stationPassbackDetail)
		}
	}
	return d, temp, nil
}

// PassbackWindow is the anti-passback window for the voucher of d under
// pol: policy.kinds.<kind>.anti_passback when set, else
// policy.anti_passback; 0 (no rule) for a decision without a voucher.
func PassbackWindow(pol verifier.Policy, d verifier.Decision) time.Duration {
	if d.Voucher == nil {
		return 0
	}
	var k verifier.KindPolicy
	switch d.Voucher.Kind {
	case decoder.KindDynamic:
		k = pol.Kinds.Dynamic
	case decoder.KindPrinted:
		k = pol.Kinds.Printed
	case decoder.KindWatch:
		k = pol.Kinds.Watch
	}
	if k.AntiPassback > 0 {
		return k.AntiPassback
	}
	return pol.AntiPassback
}

// LongestPassback is the longest anti-passback window of pol, over every
// kind: what the store's and the station's memories must keep.
func LongestPassback(pol verifier.Policy) time.Duration {
	return max(pol.AntiPassback, pol.Kinds.Dynamic.AntiPassback, pol.Kinds.Printed.AntiPassback, pol.Kinds.Watch.AntiPassback)
}

// passedWithin is the anti-passback rule: a voucher last allowed at last
// may not pass again at at while at is within window of it, the edge
// included. A clock that stepped back (at before last) still denies.
func passedWithin(last, at time.Time, window time.Duration) bool {
	return !last.Before(at.Add(-window))
}

// awaitsAttendant reports whether a result waits for an attendant's
// answer: a recorded decision that asks for one (a photo check, or a
// temperature taken by hand).
func awaitsAttendant(r Result) bool {
	return !r.Skipped && r.Seq != 0 && r.Decision.Attendant
}

// failSecure turns any decision into a denial for a gate fault.
func failSecure(d verifier.Decision, detail string) verifier.Decision {
	return d.Deny(verifier.ReasonInternal, detail)
}
