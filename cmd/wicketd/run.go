package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"wicket/cmd/wicketd/config"
	"wicket/cmd/wicketd/display"
	"wicket/cmd/wicketd/loop"
	"wicket/decoder/qr"
	"wicket/device"
	"wicket/device/camera"
	"wicket/device/gate"
	"wicket/sync/mqttsync"
	"wicket/sync/snapfile"
	"wicket/sync/store"
	"wicket/sync/trust"
	"wicket/sync/wire"
	"wicket/verifier"
)

func cmdRun(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("run", "-config FILE", stderr)
	cfgPath := fs.String("config", "/etc/wicket/wicketd.yaml", "config file")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return exitUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		printConfigError(stderr, "run", *cfgPath, err)
		return exitUsage
	}
	level := new(slog.LevelVar)
	log := newLogger(cfg, level, stderr)
	d := &daemon{cfgPath: *cfgPath, cfg: cfg, level: level, log: log, stdin: stdin, stdout: stdout}
	d.cfgHash.Store(ptr(fileHash(*cfgPath)))
	if err := d.run(ctx); err != nil {
		log.Error("wicketd stopped", "err", err)
		if errors.Is(err, errSetup) {
			return exitUsage
		}
		return exitDenied
	}
	return exitOK
}

// errSetup marks failures to start that a technician must fix.
var errSetup = errors.New("setup")

func newLogger(cfg *config.Config, level *slog.LevelVar, w io.Writer) *slog.Logger {
	level.Set(parseLevel(cfg.Log.Level))
	return slog.New(newLogHandler(w, cfg.Log.Format == "text", underJournal(w), &slog.HandlerOptions{Level: level}))
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	l.UnmarshalText([]byte(s))
	return l
}

// daemon holds what wicketd run wires together.
type daemon struct {
	cfgPath string
	cfg     *config.Config
	level   *slog.LevelVar
	log     *slog.Logger
	stdin   io.Reader
	stdout  io.Writer

	st    *store.Store
	roots verifier.RootKeys
	v     *verifier.Verifier
	trust *trust.Applier
	ts    *gate.Turnstile
	fb    *gate.Feedback
	loop  *loop.Loop
	sync  *mqttsync.Sync
	snap  *snapfile.Fetcher // with sync: snapshots announced by manifest
	disp  *display.Server

	// onSim, if set, gets the simulated gate when the sim backend opens,
	// so a test can drive its emergency input.
	onSim func(*gate.Sim)

	// attendMu guards attend: decisions waiting for an attendant, by seq.
	attendMu sync.Mutex
	attend   map[uint64]time.Time

	// id and venue are fixed at start (changing them needs a restart), so
	// other goroutines read them without racing a reload.
	id, venue string
	cfgHash   atomic.Pointer[string]
	decisions atomic.Uint64
	allowed   atomic.Uint64
	lastEvent atomic.Int64

	// storeFailing is set while the store cannot commit (the alert was
	// raised once); outboxFull while records are not queued for sync.
	storeFailing atomic.Bool
	outboxFull   atomic.Bool
	// syncFault says why fleet sync is off though the config turns it on.
	syncFault atomic.Pointer[string]
}

// run starts the gate: store, trust data, outputs in their safe state, then
// READY, then scanning until ctx ends (SIGTERM) or a file source ends.
func (d *daemon) run(ctx context.Context) error {
	cfg := d.cfg
	d.id, d.venue = cfg.Gate.ID, cfg.Gate.Venue
	warnings, err := cfg.CheckPermissions(d.cfgPath)
	if err != nil {
		return fmt.Errorf("%w: %w", errSetup, err)
	}
	for _, w := range warnings {
		d.log.Warn("file permissions", "warning", w)
	}
	statusDamage, storeDamage := make(chan error, 1), make(chan error, 1)
	d.st, err = openStore(cfg, d.log, offer(statusDamage), offer(storeDamage))
	if err != nil {
		return fmt.Errorf("%w: %w", errSetup, err)
	}
	defer d.st.Close()
	if moved := d.st.Recovered(); moved != "" {
		d.system("store_recovered", "corrupt store moved aside; started empty")
	}
	if moved := d.st.StatusRecovered(); len(moved) > 0 {
		d.system("revocations_recovered", "damaged revocation file moved aside; waiting for a snapshot")
	}
	if d.roots, err = loadRoots(cfg); err != nil {
		return fmt.Errorf("%w: %w", errSetup, err)
	}
	floor := buildFloor()
	if f := d.st.Floor(); f.After(floor) {
		floor = f
	}
	tclock := verifier.NewTrustedClock(verifier.SystemClock{}, floor)
	if d.v, err = verifier.New(tclock, d.st, &cfg.Policy); err != nil {
		return fmt.Errorf("%w: %w", errSetup, err)
	}
	if err := loadDCCPseudonymKey(cfg, d.v); err != nil {
		return fmt.Errorf("%w: %w", errSetup, err)
	}
	d.trust = d.newTrust()
	if err := d.installTrust(); err != nil {
		return fmt.Errorf("%w: %w", errSetup, err)
	}

	emergencies := make(chan gate.EmergencyState, 8)
	if err := d.openOutputs(offer(emergencies)); err != nil {
		return fmt.Errorf("%w: %w", errSetup, err)
	}
	defer d.closeOutputs()

	if cfg.Display.Enabled || cfg.HTTP.Metrics.Addr != "" || cfg.HTTP.Admin.Enabled() {
		if d.disp, err = d.newDisplay(); err != nil {
			return fmt.Errorf("%w: %w", errSetup, err)
		}
	}
	src, err := d.source()
	if err != nil {
		return fmt.Errorf("%w: %w", errSetup, err)
	}
	d.loop = loop.New(loop.Config{Gate: cfg.Gate.ID, Venue: cfg.Gate.Venue, HoldOff: cfg.Scanner.HoldOff,
		CommitBeforeOpen: cfg.Store.CommitBeforeOpen}, d.v, d.st, d.ts, d.fb, d.log)
	therm, closeTherm, err := d.openThermometer()
	if err != nil {
		return fmt.Errorf("%w: %w", errSetup, err)
	}
	defer closeTherm()
	if therm != nil {
		d.loop.Thermo = therm
	}
	d.loop.OnDecision = func(r loop.Result) {
		if cfg.Turnstile.Backend == "sim" {
			simDisplay(d.stdout, r)
		}
		if d.disp == nil || r.Skipped {
			return
		}
		if r.Decision.Attendant {
			d.attendMu.Lock()
			if d.attend == nil {
				d.attend = map[uint64]time.Time{}
			}
			d.attend[r.Seq] = time.Now()
			d.attendMu.Unlock()
		}
		p := d.v.Policy()
		d.disp.Publish(display.FromDecision(r.Decision, r.Seq, p.Test.MaxAge > 0, p.MinDoses > 0, r.Temperature))
	}
	d.loop.OnResult = func(r loop.Result) {
		if r.Seq != 0 {
			d.decisions.Add(1)
			if r.Decision.Allow {
				d.allowed.Add(1)
			}
		}
		if r.Decision.Allow && r.Passage == gate.PassageError {
			d.deviceError("relay")
		}
		if d.disp != nil && !r.Skipped {
			m := d.disp.Metrics()
			m.ObserveDecision(string(r.Decision.Reason), r.Decision.Allow)
			if !r.Opened.IsZero() {
				m.ObserveScanToRelay(r.Opened.Sub(r.ScanAt))
			}
		}
	}
	d.loop.OnCommit = d.committed
	d.loop.OnCommitFailed = d.commitFailed
	if cfg.Sync.Enabled {
		if d.sync, err = d.newSync(); err != nil {
			d.sync = nil
			d.reportSyncFault(err)
		} else {
			d.trust.OnChange = d.sync.StatusChanged
			d.snap.OnChange = d.sync.StatusChanged
		}
	}
	d.system("start", "wicketd "+version)
	d.log.Info("ready", "gate", cfg.Gate.ID, "venue", cfg.Gate.Venue, "key_set", keySetVersion(d.v), "status", d.st.Info().Version, "clock_floor", tclock.Floor().UTC())
	sdNotify("READY=1\nSTATUS=scanning")

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	scans := make(chan device.Scan, scanQueue)
	g.Go(func() error {
		defer close(scans)
		err := src.Run(gctx, scans)
		if err == nil && gctx.Err() == nil {
			d.log.Info("scan source ended")
		}
		return err
	})
	g.Go(func() error {
		err := d.loop.Run(gctx, scans)
		cancel()
		return err
	})
	g.Go(func() error { return d.ts.Run(gctx) })
	tamper := d.cfg.Turnstile
	g.Go(func() error { return d.watchTamper(gctx, tamper) })
	if therm != nil {
		g.Go(func() error { therm.Run(gctx); return nil })
		g.Go(func() error { return d.watchThermometer(gctx, therm) })
	}
	if d.sync != nil {
		g.Go(func() error {
			if err := d.sync.Run(gctx); err != nil {
				d.reportSyncFault(err)
			}
			return nil
		})
		g.Go(func() error { return d.snap.Run(gctx) })
	}
	if d.disp != nil {
		g.Go(func() error {
			if err := d.disp.Run(gctx); err != nil {
				return fmt.Errorf("http: %w", err)
			}
			return nil
		})
		g.Go(func() error { return d.displayState(gctx) })
	}
	g.Go(func() error { return d.housekeeping(gctx, tclock) })
	g.Go(func() error { return d.upkeep(gctx) })
	g.Go(func() error { return d.watchdog(gctx) })
	g.Go(func() error { return d.reloads(gctx) })
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case s := <-emergencies:
				d.log.Warn("emergency release", "state", s.String())
				d.system("emergency", s.String())
			case err := <-storeDamage:
				// The background check of the store file found damage: stop
				// (the relay locks) and let systemd restart wicketd, whose
				// next Open checks the file in full and moves it aside.
				return fmt.Errorf("store file damaged, restarting to recover: %w", err)
			case err := <-statusDamage:
				// The background check of the revocation file failed: it
				// is dropped and the gate needs a snapshot again.
				d.log.Error("revocation file damaged: dropped, waiting for a snapshot", "err", err)
				d.system("revocations_recovered", "damaged revocation file moved aside; waiting for a snapshot")
				if d.sync != nil {
					d.sync.Resync()
				}
			}
		}
	})
	err = g.Wait()
	sdNotify("STOPPING=1")
	d.system("stop", "")
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// offer returns a callback that hands its argument to ch without ever
// blocking the caller (a device or store goroutine); a full channel
// already holds news for the run loop.
func offer[T any](ch chan T) func(T) {
	return func(v T) {
		select {
		case ch <- v:
		default:
		}
	}
}

// scanQueue bounds scans waiting while the turnstile is open: a few people
// in a queue; more would be stale by the time they are decided.
const scanQueue = 4

// openStore opens the gate's store with the check of the bbolt file in
// the background (a full access log is hundreds of MB to read at a cold
// start); onDamage hears of damage found by that check, onStatusDamage of
// damage to the revocation file.
func openStore(cfg *config.Config, log *slog.Logger, onStatusDamage, onDamage func(error)) (*store.Store, error) {
	var key []byte
	if cfg.Trust.RecordKey != "" {
		b, err := os.ReadFile(cfg.Path(cfg.Trust.RecordKey))
		if err != nil {
			return nil, fmt.Errorf("trust.record_key: %w", err)
		}
		if len(b) < 32 {
			return nil, fmt.Errorf("trust.record_key: %d bytes; make one with: head -c 32 /dev/urandom > FILE", len(b))
		}
		key = b
	}
	st, err := store.Open(store.Options{
		Path: cfg.Path(cfg.Store.Path), LockTimeout: cfg.Store.LockTimeout,
		MaxEvents: cfg.Store.MaxEvents, MaxOutbox: cfg.Store.MaxOutbox, RecordKey: key, Logger: log,
		OnStatusDamage: onStatusDamage, BackgroundCheck: true, OnDamage: onDamage,
	})
	if err != nil {
		return nil, fmt.Errorf("store.path: %w", err)
	}
	return st, nil
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
	if _, err := d.st.Append(&ev, 0); err != nil {
		d.log.Error("store commit failed", "event", kind, "err", err)
		d.commitFailed(ev, err)
		return
	}
	d.committed(ev)
}

// alertKinds are the gate events that are alerts: they go to the fleet at
// once and count in wicket_alerts_total.
var alertKinds = map[string]bool{
	"store_recovered": true, "revocations_recovered": true, "store_failure": true, "disk_full": true,
	"forced_passage": true, "outbox_full": true, "tamper": true,
}

// isAlert reports whether ev goes to the fleet's alert topic.
func isAlert(ev store.Event) bool {
	return ev.Alert || ev.Type == store.TypeAlert || ev.Type == "emergency"
}

// alertReason is the reason an alert is counted under.
func alertReason(ev store.Event) string {
	if ev.Type == "emergency" {
		return "emergency"
	}
	return ev.Reason
}

// commitFailed handles an event the store refused. The first failure of a
// run raises store_failure (disk_full for a full file system): logged as
// an ALERT at error level and sent to the fleet from memory, since the
// store cannot hold it. An alert that could not be committed is sent the
// same way and counted, so a red code on a full disk still reaches staff.
func (d *daemon) commitFailed(ev store.Event, err error) {
	if errors.Is(err, store.ErrCommit) && d.storeFailing.CompareAndSwap(false, true) {
		kind := "store_failure"
		if errors.Is(err, store.ErrDiskFull) {
			kind = "disk_full"
		}
		d.log.Error("ALERT", "reason", kind, "committed", false, "err", err)
		d.uncommittedAlert(store.Event{Type: store.TypeAlert, At: time.Now(), Gate: d.id, Venue: d.venue, Reason: kind,
			Detail: "the store cannot commit: every scan is denied internal_error"})
	}
	if isAlert(ev) {
		if !ev.Alert {
			d.log.Error("ALERT", "reason", alertReason(ev), "committed", false, "detail", ev.Detail)
		}
		d.uncommittedAlert(ev)
	}
}

// uncommittedAlert sends an alert the store could not hold straight to the
// fleet and counts it.
func (d *daemon) uncommittedAlert(ev store.Event) {
	if d.disp != nil {
		m := d.disp.Metrics()
		m.Alert(alertReason(ev))
		m.AlertUncommitted(alertReason(ev))
	}
	if d.sync != nil {
		d.sync.Alert(ev)
	}
}

// committed wakes the fleet sync for a durable event, and sends alerts
// (red codes, emergencies, a recovered store) at once.
func (d *daemon) committed(ev store.Event) {
	d.lastEvent.Store(ev.At.UnixNano())
	if isAlert(ev) && d.disp != nil {
		d.disp.Metrics().Alert(alertReason(ev))
	}
	if d.sync == nil {
		return
	}
	d.sync.Notify()
	if isAlert(ev) {
		d.sync.Alert(ev)
	}
}

// upkeepEvery is how often the store's health and the outbox are checked
// for alerts.
const upkeepEvery = 2 * time.Second

// upkeep raises and clears the alerts that no single event shows: a store
// that cannot commit (tried again every upkeepEvery with a system event,
// whose success is the record of the recovery) and an outbox that is full.
func (d *daemon) upkeep(ctx context.Context) error {
	return everyTick(ctx, upkeepEvery, d.checkStore)
}

// checkStore is one round of upkeep.
func (d *daemon) checkStore() {
	if h := d.st.CommitHealth(); h.Err != nil && !d.storeFailing.Load() {
		d.commitFailed(store.Event{}, h.Err)
	}
	if d.storeFailing.Load() {
		h := d.st.CommitHealth()
		if h.Err != nil {
			d.system("store_writable", fmt.Sprintf("commits succeed again after %d failures since %s", h.Failures, h.Since.UTC().Format(time.RFC3339)))
		}
		if h := d.st.CommitHealth(); h.Err == nil && d.storeFailing.CompareAndSwap(true, false) {
			d.log.Warn("store commits again")
		}
	}
	c, err := d.st.Counters()
	if err != nil {
		return
	}
	if full := c.Outbox >= d.cfg.Store.MaxOutbox && d.cfg.Store.MaxOutbox > 0; full != d.outboxFull.Load() {
		d.outboxFull.Store(full)
		if full {
			d.log.Error("ALERT", "reason", "outbox_full", "outbox", c.Outbox, "dropped", c.Dropped)
			d.system("outbox_full", fmt.Sprintf("%d records wait; new records are kept in the log but not sent", c.Outbox))
		}
	}
}

// everyTick calls fn every period until ctx ends, then returns nil.
func everyTick(ctx context.Context, period time.Duration, fn func()) error {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			fn()
		}
	}
}

// newSync builds the fleet sync from the config. Its files (CA,
// certificate, password) are read here, so that a bad one is found before
// the gate starts scanning.
func (d *daemon) newSync() (*mqttsync.Sync, error) {
	y := d.cfg.Sync
	conn := y.Conn
	for _, p := range []*string{&conn.PasswordFile, &conn.CAFile, &conn.CertFile, &conn.KeyFile} {
		*p = d.cfg.Path(*p)
	}
	if _, err := conn.Options(); err != nil {
		return nil, err
	}
	var key ed25519.PrivateKey
	if y.IdentityKey != "" {
		var err error
		key, err = wire.ReadIdentity(d.cfg.Path(y.IdentityKey))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// The gate still decides; only its records wait.
			d.log.Error("sync.identity_key is missing: this gate is not enrolled and no collector takes its records; make it with wicketd identity",
				"path", d.cfg.Path(y.IdentityKey))
		case err != nil:
			return nil, fmt.Errorf("sync.identity_key: %w", err)
		}
	}
	snap, err := snapfile.New(snapfile.Config{
		Roots: d.roots, Dir: filepath.Join(filepath.Dir(d.cfg.Path(d.cfg.Store.Path)), "snapfile"), Jitter: y.SnapshotJitter,
		Fallback: &snapfile.Broker{Conn: conn, Fleet: y.Fleet},
	}, d.st, d.trust, d.log)
	if err != nil {
		return nil, err
	}
	s, err := mqttsync.New(mqttsync.Config{
		Conn: conn, Fleet: y.Fleet, Gate: d.cfg.Gate.ID, BatchSize: y.BatchSize, MaxInflight: y.MaxInflight,
		AckTimeout: y.AckTimeout, StatusEvery: y.StatusEvery, ReconnectMin: y.ReconnectMin, ReconnectMax: y.ReconnectMax,
		Key: key, Roots: d.roots, Manifest: func(raw []byte) { snap.Offer(raw) },
	}, d.st, d.trust, d.gateStatus, d.log)
	if err == nil {
		d.snap = snap
	}
	return s, err
}

// reportSyncFault turns fleet sync off for this run, saying why: a sync
// setting never takes the gate's decisions down (systemd would restart it
// every few seconds forever); the gate decides offline, its records wait
// in the outbox, and the fault is in the log at error priority, the access
// log (system event sync_fault) and wicketd status.
func (d *daemon) reportSyncFault(err error) {
	msg := err.Error()
	d.syncFault.Store(&msg)
	d.log.Error("fleet sync is off: its settings are wrong; the gate decides offline and keeps its records until the config is fixed (wicketd check-config, then restart)", "err", err)
	d.system("sync_fault", msg)
}

// gateStatus is the retained status the gate publishes.
func (d *daemon) gateStatus() wire.Status {
	now := time.Now()
	s := wire.Status{
		Gate: d.id, Venue: d.venue, Version: version, ConfigHash: *d.cfgHash.Load(),
		Decisions: d.decisions.Load(), Allowed: d.allowed.Load(), At: now.UTC(),
	}
	if ks := d.v.KeySet(); ks != nil {
		s.KeySetVersion, s.KeySetIssued = ks.Version, ks.IssuedAt.UTC()
	}
	info := d.st.Info()
	s.StatusVersion, s.StatusIssued = info.Version, info.IssuedAt.UTC()
	ts := d.trust.Stats()
	s.TrustGap, s.TrustRefused, s.LastRefusal = ts.Gap, ts.Refused, ts.LastRefusal
	if as := ts.Assembling; as != nil {
		s.SnapshotParts = fmt.Sprintf("%d: %d/%d", as.Version, as.Have, as.Of)
	}
	if d.snap != nil {
		s.SnapshotFetch = d.snap.State().String()
	}
	ss := d.st.StatusStats()
	s.StatusRecords = ss.FileRecords + uint64(ss.OverlayRecords)
	_, s.ClockTrusted = d.v.Clock().Now(d.v.Policy().ClockSkew)
	s.ClockFloor = d.v.Clock().Floor().UTC()
	if c, err := d.st.Counters(); err == nil {
		s.Outbox, s.Dropped, s.LastSeq = c.Outbox, c.Dropped, c.LastSeq
	}
	if t := d.lastEvent.Load(); t != 0 {
		s.LastRecord = time.Unix(0, t).UTC()
	}
	if d.ts != nil {
		s.Emergency = d.ts.EmergencyState().String()
	}
	if d.sync != nil {
		y := d.sync.State()
		s.LastAck, s.Sent, s.Acked, s.Resends = y.LastAck.UTC(), y.Published, y.Acked, y.Resends
		s.AcksRefused, s.Ignored, s.Oversized = y.AcksRefused, y.Ignored, y.Oversized
		if y.LastAck.IsZero() {
			s.LastAck = time.Time{}
		}
	}
	return s
}

func keySetVersion(v *verifier.Verifier) uint64 {
	if ks := v.KeySet(); ks != nil {
		return ks.Version
	}
	return 0
}

// installTrust installs the stored key set, then the config's key set
// file if it is newer, then the config's batch files, through the same
// checks as data from the broker. A file that does not verify is an error
// (a technician must see it); one older than the installed data is skipped.
func (d *daemon) installTrust() error {
	cfg := d.cfg
	if err := d.trust.LoadStored(); err != nil {
		return err
	}
	if cfg.Trust.KeySet != "" {
		path := cfg.Path(cfg.Trust.KeySet)
		doc, err := readTrustDoc(path)
		if err != nil {
			return fmt.Errorf("trust.key_set: %w", err)
		}
		if _, err := d.trust.KeySet(doc, path); err != nil {
			return fmt.Errorf("trust.key_set: %w", err)
		}
	}
	batches, err := cfg.BatchFiles()
	if err != nil {
		return err
	}
	for _, path := range batches {
		doc, err := readTrustDoc(path)
		if err != nil {
			return fmt.Errorf("trust.batches: %w", err)
		}
		if _, err := d.trust.Batch(doc, path); err != nil {
			return fmt.Errorf("trust.batches: %w", err)
		}
	}
	if as := d.trust.Stats().Assembling; as != nil && len(batches) > 0 {
		return fmt.Errorf("trust.batches: snapshot %d has %d parts, the files hold %d of them", as.Version, as.Of, as.Have)
	}
	return nil
}

// gateConfig maps wicketd.yaml to the device/gate config.
func gateConfig(cfg *config.Config) (gate.Config, error) {
	t, f := cfg.Turnstile, cfg.Feedback
	mode := gate.RelayPulse
	if t.Mode == "level" {
		mode = gate.RelayLevel
	}
	gc := gate.Config{
		Turnstile: gate.TurnstileConfig{
			RelayPin: t.Relay.Name, RelayActiveLow: t.Relay.ActiveLow, Mode: mode,
			PulseWidth: t.PulseWidth, PassageTimeout: t.OpenTimeout, FailSafe: t.FailSafe,
			PassagePin: t.Passage.Name, PassageActiveLow: t.Passage.ActiveLow,
			EmergencyPin: t.Emergency.Name, EmergencyActiveLow: t.Emergency.ActiveLow,
		},
		Feedback: gate.FeedbackConfig{
			GreenPin: f.GreenLED.Name, GreenActiveLow: f.GreenLED.ActiveLow,
			RedPin: f.RedLED.Name, RedActiveLow: f.RedLED.ActiveLow,
			BuzzerPin: f.Buzzer.Name, BuzzerActiveLow: f.Buzzer.ActiveLow,
		},
	}
	for name, spec := range f.Patterns {
		p, err := spec.Pattern()
		if err != nil {
			return gc, fmt.Errorf("feedback.patterns.%s: %w", name, err)
		}
		switch name {
		case "allow":
			gc.Feedback.Allow = p
		case "deny":
			gc.Feedback.Deny = p
		case "error":
			gc.Feedback.Error = p
		case "offline":
			gc.Feedback.Offline = p
		}
	}
	return gc, nil
}

// simPassAfter is when the simulated person walks through.
const simPassAfter = 200 * time.Millisecond

// openOutputs opens the turnstile and feedback in their safe state.
func (d *daemon) openOutputs(onEmergency func(gate.EmergencyState)) error {
	gc, err := gateConfig(d.cfg)
	if err != nil {
		return err
	}
	opts := gate.Options{Logger: d.log.With("component", "gate"), OnEmergency: onEmergency, OnForcedPassage: d.forcedPassage}
	switch d.cfg.Turnstile.Backend {
	case "gpio":
		d.ts, d.fb, err = gate.OpenGPIO(gc, opts)
		if err != nil {
			return fmt.Errorf("turnstile: %w", err)
		}
	case "sim":
		gc.Turnstile.RelayPin = "sim"
		sim, err := gate.NewSim(d.stdout, gc, gate.SimConfig{PassAfter: simPassAfter}, opts)
		if err != nil {
			return fmt.Errorf("turnstile: %w", err)
		}
		d.ts, d.fb = sim.Turnstile, sim.Feedback
		if d.onSim != nil {
			d.onSim(sim)
		}
	}
	return nil
}

// forcedPassage raises the forced_passage alert: the passage sensor fired
// with the gate locked.
func (d *daemon) forcedPassage() {
	if d.disp != nil {
		d.disp.Metrics().ForcedPassage()
	}
	d.system("forced_passage", "passage sensor active with no grant")
}

func (d *daemon) closeOutputs() {
	if d.fb != nil {
		d.fb.Close()
	}
	if d.ts != nil {
		if err := d.ts.Close(); err != nil {
			d.log.Error("turnstile close", "err", err)
		}
	}
}

// source builds the scan source the config names.
func (d *daemon) source() (device.Source, error) {
	s := d.cfg.Scanner
	log := d.log.With("component", "scanner")
	switch s.Type {
	case "stdin":
		return device.NewReaderSource("stdin", d.stdin, device.ReaderConfig{MaxFrame: s.MaxFrame, StripAIM: s.StripAIM}, log)
	case "file":
		return device.NewFileSource(d.cfg.Path(s.Path), device.ReaderConfig{MaxFrame: s.MaxFrame, StripAIM: s.StripAIM}, log)
	case "camera":
		return d.cameraSource(log)
	}
	term, err := device.ParseTerminator(s.Terminator)
	if err != nil {
		return nil, fmt.Errorf("scanner.terminator: %w", err)
	}
	return device.NewSerialSource(device.SerialConfig{
		Device: s.Device, Baud: s.Baud, Terminator: term, MaxFrame: s.MaxFrame,
		InterByteTimeout: s.InterByteTimeout, FlushPartial: s.FlushPartial, StripAIM: s.StripAIM,
	}, device.SerialOptions{
		Logger: log,
		OnState: func(connected bool, err error) {
			if connected {
				log.Info("scanner connected", "device", s.Device)
				return
			}
			log.Error("scanner unavailable; retrying", "device", s.Device, "err", err)
			d.deviceError("scanner")
		},
	})
}

// displayStateEvery is how often the page's banners and the gauges are
// refreshed.
const displayStateEvery = 2 * time.Second

// displayState keeps the page's gate state (/healthz) and the gauges of
// /metrics up to date.
func (d *daemon) displayState(ctx context.Context) error {
	t := time.NewTicker(displayStateEvery)
	defer t.Stop()
	for {
		rd := d.v.Readiness()
		st := display.State{Ready: rd.NotReady == "", Reason: rd.NotReady, ClockUntrusted: !rd.ClockTrusted, Stale: rd.Stale != ""}
		m := d.disp.Metrics()
		m.SetClockTrusted(rd.ClockTrusted)
		now, _ := d.v.Clock().Now(d.v.Policy().ClockSkew)
		if ks := d.v.KeySet(); ks != nil {
			m.SetTrustAge("key_set", now.Sub(ks.IssuedAt))
		}
		if info := d.st.Info(); info.Version != 0 {
			m.SetTrustAge("status", now.Sub(info.IssuedAt))
		}
		if c, err := d.st.Counters(); err == nil {
			m.SetOutbox(c.Outbox)
			m.SetOutboxDropped(c.Dropped)
		}
		m.SetTrustVersion("key_set", keySetVersion(d.v))
		m.SetTrustVersion("status", d.st.Info().Version)
		floor := d.v.Clock().Floor()
		m.SetClock(floor, time.Since(floor))
		h := d.st.CommitHealth()
		m.SetStoreCommit(h.Err == nil, h.DiskFull(), h.Failures)
		if d.sync != nil {
			st.Offline = !d.sync.State().Connected
			m.SetBrokerConnected(!st.Offline)
		}
		es := d.ts.EmergencyState()
		st.Emergency, st.EmergencyLatched = es != gate.EmergencyNormal, es == gate.EmergencyLatched
		m.SetEmergency(int(es))
		if h.Err != nil {
			st.Ready, st.Reason = false, "store cannot commit"
			if h.DiskFull() {
				st.Reason = "store cannot commit: disk full"
			}
		}
		if st.Ready && !d.loop.Healthy(3*heartbeatTolerance) {
			st.Ready, st.Reason = false, "decision loop unresponsive"
		}
		d.disp.SetState(st)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// heartbeatTolerance is how long the loop may go without passing its
// select before it counts as unresponsive.
const heartbeatTolerance = 2 * time.Second

// errNoAttendantCheck: the seq is not a decision waiting for an attendant.
var errNoAttendantCheck = errors.New("no attendant check pending for this decision")

// attendantWindow is how long an attendant may take to answer.
const attendantWindow = 5 * time.Minute

// attendant records an attendant's answer to a decision that needed a
// photo check, as its own event; a confirmation opens the turnstile.
func (d *daemon) attendant(seq uint64, confirm bool) error {
	d.attendMu.Lock()
	at, ok := d.attend[seq]
	delete(d.attend, seq)
	for s, t := range d.attend {
		if time.Since(t) > attendantWindow {
			delete(d.attend, s)
		}
	}
	d.attendMu.Unlock()
	if !ok || time.Since(at) > attendantWindow {
		return errNoAttendantCheck
	}
	detail := "rejected"
	if confirm {
		detail = "confirmed"
	}
	ev := store.Event{Type: "attendant", At: time.Now(), Gate: d.id, Venue: d.venue, Ref: seq, Detail: detail, Allow: confirm}
	if _, err := d.st.Append(&ev, 0); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	d.committed(ev)
	d.log.Info("attendant answer", "seq", seq, "answer", detail)
	if !confirm {
		d.fb.Show(gate.SignalDeny)
		return nil
	}
	d.fb.Show(gate.SignalAllow)
	go d.loop.Admit(context.Background(), ev.Seq)
	return nil
}

// cameraSource builds the camera scan source: a V4L2 device, or, for
// tests and demos, a directory of images or an .mjpeg file replayed at the
// configured rate.
func (d *daemon) cameraSource(log *slog.Logger) (device.Source, error) {
	c := d.cfg.Scanner.Camera
	dec := qr.NewDecoder()
	opts := dec.Options()
	opts.Downscale = c.Downscale
	if len(c.ROI) == 4 {
		opts.ROI = image.Rect(c.ROI[0], c.ROI[1], c.ROI[2], c.ROI[3])
	}
	if err := dec.SetOptions(opts); err != nil {
		return nil, fmt.Errorf("scanner.camera: %w", err)
	}
	var timed camera.Decoder = dec
	if d.disp != nil {
		timed = timedDecoder{dec, d.disp.Metrics()}
	}
	path := d.cfg.Path(c.Device)
	open := func() (camera.FrameSource, error) {
		return camera.OpenV4L2(camera.V4L2Config{Device: path, Format: camera.Format(c.Format), Width: c.Width, Height: c.Height, FPS: c.FPS}, log)
	}
	if st, err := os.Stat(path); err == nil && (st.IsDir() || st.Mode().IsRegular()) {
		open = func() (camera.FrameSource, error) { return camera.NewFileFrames([]string{path}, false, c.FPS) }
	}
	return camera.NewSource(camera.Config{Name: c.Device, MaxFPS: c.FPS, MaxDecodeRate: c.MaxDecodeRate}, open, timed, camera.Options{
		Logger: log,
		OnState: func(connected bool, err error) {
			if connected {
				log.Info("camera connected", "device", c.Device)
				return
			}
			log.Error("camera unavailable; retrying", "device", c.Device, "err", err)
			d.deviceError("camera")
		},
	})
}

// timedDecoder feeds the decode-time histogram of /metrics.
type timedDecoder struct {
	dec *qr.Decoder
	m   *display.Metrics
}

func (t timedDecoder) DecodeGray(img *image.Gray) ([]byte, error) {
	start := time.Now()
	b, err := t.dec.DecodeGray(img)
	t.m.ObserveDecode(time.Since(start))
	return b, err
}

// deviceError counts a device failure in /metrics.
func (d *daemon) deviceError(name string) {
	if d.disp != nil {
		d.disp.Metrics().DeviceError(name)
	}
}

// housekeepingEvery is how often the clock floor is saved and expired
// entries pruned.
const housekeepingEvery = time.Minute

// compactEvery is how often, at most, the revocation/override statements
// are rewritten into one file without the expired ones: a rewrite of a
// 10-million-entry file writes 180 MB, too much for an SD card every
// minute. Lookups never need it (an expired statement is harmless until
// then); the set also merges by itself when its deltas pile up.
const compactEvery = 6 * time.Hour

// housekeeping saves the clock floor and prunes expired data. The wall
// clock becomes the floor only while it is trusted and not implausibly far
// past the newest signed data (a clock set to 2040 by mistake must not
// lock the gate out of every voucher for good).
func (d *daemon) housekeeping(ctx context.Context, tclock *verifier.TrustedClock) error {
	t := time.NewTicker(housekeepingEvery)
	defer t.Stop()
	lastCompact := time.Now()
	for {
		now, trusted := tclock.Now(d.v.Policy().ClockSkew)
		newest := d.st.Info().IssuedAt
		if ks := d.v.KeySet(); ks != nil && ks.IssuedAt.After(newest) {
			newest = ks.IssuedAt
		}
		// Prune only up to a time known to have passed: a clock set a year
		// ahead must not forget revocations that are still in force.
		pruneAt := tclock.Floor()
		if trusted && !newest.IsZero() && now.Before(newest.Add(d.v.Policy().MaxKeySetAge)) {
			tclock.Raise(now)
			if err := d.st.RaiseFloor(now); err != nil {
				d.log.Error("save clock floor", "err", err)
			}
			pruneAt = now
		}
		if st := d.st.StatusStats(); time.Since(lastCompact) >= compactEvery &&
			(st.OverlayRecords > 0 || !st.MinExpires.IsZero() && !st.MinExpires.After(pruneAt)) {
			lastCompact = time.Now()
			if err := d.st.CompactStatus(pruneAt); err != nil {
				d.log.Error("compact revocations", "err", err)
			}
		}
		if w := d.v.Policy().AntiPassback; w > 0 {
			if _, err := d.st.PrunePassback(pruneAt, w); err != nil {
				d.log.Error("prune anti-passback", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// watchdog pings systemd at half the watchdog interval while the loop is
// healthy; a hung loop stops the pings and systemd restarts wicketd.
func (d *daemon) watchdog(ctx context.Context) error {
	every := watchdogInterval() / 2
	if every <= 0 {
		return nil
	}
	return everyTick(ctx, every, func() {
		if d.loop.Healthy(every) {
			sdNotify("WATCHDOG=1")
		} else {
			d.log.Error("decision loop unresponsive; withholding watchdog ping")
		}
	})
}

// reloads re-reads the config on SIGHUP: policy, trust files, log level
// and feedback patterns apply at once; other changes are logged as needing
// a restart. A bad config is refused and the old one stays.
func (d *daemon) reloads(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			d.reload()
		}
	}
}

func (d *daemon) reload() {
	sdNotify("RELOADING=1")
	defer sdNotify("READY=1")
	next, err := config.Load(d.cfgPath)
	if err != nil {
		d.log.Error("reload refused; keeping the running config", "err", err)
		return
	}
	if err := d.v.SetPolicy(&next.Policy); err != nil {
		d.log.Error("reload refused; keeping the running config", "err", err)
		return
	}
	d.level.Set(parseLevel(next.Log.Level))
	if gc, err := gateConfig(next); err == nil && d.fb != nil {
		if err := d.fb.SetPatterns(gc.Feedback); err != nil {
			d.log.Error("reload: feedback patterns", "err", err)
		}
	}
	for _, c := range restartOnly(d.cfg, next) {
		d.log.Warn("reload: change needs a restart (systemctl restart wicketd)", "section", c)
	}
	old := d.cfg
	d.cfg = next
	d.cfgHash.Store(ptr(fileHash(d.cfgPath)))
	if d.sync != nil {
		d.sync.StatusChanged()
	}
	if err := d.installTrust(); err != nil {
		d.log.Error("reload: trust files", "err", err)
		d.cfg = old
		return
	}
	d.log.Info("reloaded", "key_set", keySetVersion(d.v), "status", d.st.Info().Version)
}

// restartOnly lists the sections that changed but apply only at start.
func restartOnly(a, b *config.Config) []string {
	var out []string
	for _, x := range []struct {
		name string
		a, b any
	}{
		{"gate", a.Gate, b.Gate}, {"store", a.Store, b.Store}, {"scanner", a.Scanner, b.Scanner},
		{"turnstile", a.Turnstile, b.Turnstile}, {"trust.root_keys", a.Trust.RootKeys, b.Trust.RootKeys},
		{"trust.record_key", a.Trust.RecordKey, b.Trust.RecordKey}, {"trust.dcc_pseudonym_key", a.Trust.DCCPseudonymKey, b.Trust.DCCPseudonymKey}, {"log.format", a.Log.Format, b.Log.Format},
		{"display", a.Display, b.Display}, {"http", a.HTTP, b.HTTP},
		{"feedback pins", [3]config.Pin{a.Feedback.GreenLED, a.Feedback.RedLED, a.Feedback.Buzzer}, [3]config.Pin{b.Feedback.GreenLED, b.Feedback.RedLED, b.Feedback.Buzzer}},
	} {
		if !reflect.DeepEqual(x.a, x.b) {
			out = append(out, x.name)
		}
	}
	return out
}

// simDisplay prints what the gate's display would show, for the simulated
// gate: the verdict, the message, and the least the attendant needs. The
// masked name stays on the real screen: this goes to stdout, which under
// systemd is the journal, where names never go.
func simDisplay(w io.Writer, r loop.Result) {
	if r.Skipped {
		fmt.Fprintln(w, "display: (same code still in front of the reader: no new decision)")
		return
	}
	d := r.Decision
	verdict := "DENY "
	if d.Allow {
		verdict = "ALLOW"
	}
	line := fmt.Sprintf("display: %s %s / %s  [%s", verdict, d.Message.Zh, d.Message.En, d.Reason)
	if v := d.Voucher; v != nil {
		line += fmt.Sprintf("; %v %v %v", d.Colour, v.Kind, v.Class)
	}
	line += "]"
	if d.Alert {
		line += "  ALERT: report to the epidemic-prevention office"
	}
	switch {
	case d.Attendant && (d.Reason == verifier.ReasonFever || d.Reason == verifier.ReasonNoTemperature || d.Reason == verifier.ReasonThermometerFault):
		line += "  → attendant: take the temperature by hand"
	case d.Attendant:
		line += "  → attendant: compare the photo"
	}
	fmt.Fprintln(w, line)
}

// fileHash is the first 8 bytes of a file's SHA-256, in hex: enough for an
// operator to see which gates run the same config.
func fileHash(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func ptr[T any](v T) *T { return &v }
