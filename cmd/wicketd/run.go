package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"wicket/cmd/wicketd/config"
	"wicket/cmd/wicketd/display"
	"wicket/cmd/wicketd/loop"
	"wicket/device"
	"wicket/device/gate"
	"wicket/device/thermo"
	"wicket/sync/mqttsync"
	"wicket/sync/snapfile"
	"wicket/sync/station"
	"wicket/sync/store"
	"wicket/sync/trust"
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
	att   *attendants // nil without a kiosk to answer

	// station shares anti-passback with the gate's station; set with sync.
	station *station.Station

	// onSim, if set, gets the simulated gate when the sim backend opens,
	// so a test can drive its emergency input.
	onSim func(*gate.Sim)
	// simOut, if set, gets what the simulated gate's display shows.
	simOut io.Writer

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
	w := &wiring{}
	defer w.close()
	if err := d.start(w); err != nil {
		return fmt.Errorf("%w: %w", errSetup, err)
	}
	d.system("start", "wicketd "+version)
	d.log.Info("ready", "gate", d.id, "venue", d.venue, "key_set", keySetVersion(d.v), "status", d.st.Info().Version, "clock_floor", w.tclock.Floor().UTC())
	sdNotify("READY=1\nSTATUS=scanning")
	err := d.serve(ctx, w)
	sdNotify("STOPPING=1")
	d.system("stop", "")
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// wiring is what start opened for serve: the parts that run goroutines of
// their own, the channels devices and the store report on, and what to
// close, in reverse order, once every goroutine has returned.
type wiring struct {
	src                       device.Source
	therm                     *thermo.Monitor // nil: no thermometer
	tclock                    *verifier.TrustedClock
	emergencies               chan gate.EmergencyState
	storeDamage, statusDamage chan error
	closers                   []func()
}

func (w *wiring) close() {
	for i := len(w.closers) - 1; i >= 0; i-- {
		w.closers[i]()
	}
}

// start builds the gate in dependency order: store, trust and verifier,
// outputs (in their safe state), display, scan source, thermometer, fleet
// sync, and last the loop, which takes its seams from them.
func (d *daemon) start(w *wiring) error {
	cfg := d.cfg
	d.id, d.venue = cfg.Gate.ID, cfg.Gate.Venue
	warnings, err := cfg.CheckPermissions(d.cfgPath)
	if err != nil {
		return err
	}
	for _, msg := range warnings {
		d.log.Warn("file permissions", "warning", msg)
	}
	w.statusDamage, w.storeDamage = make(chan error, 1), make(chan error, 1)
	if d.st, err = openStore(cfg, d.log, offer(w.statusDamage), offer(w.storeDamage)); err != nil {
		return err
	}
	w.closers = append(w.closers, func() { d.st.Close() })
	if moved := d.st.Recovered(); moved != "" {
		d.system("store_recovered", "corrupt store moved aside; started empty")
	}
	if moved := d.st.StatusRecovered(); len(moved) > 0 {
		d.system("revocations_recovered", "damaged revocation file moved aside; waiting for a snapshot")
	}
	if w.tclock, err = d.openTrust(); err != nil {
		return err
	}
	w.emergencies = make(chan gate.EmergencyState, 8)
	if err := d.openOutputs(offer(w.emergencies)); err != nil {
		return err
	}
	w.closers = append(w.closers, d.closeOutputs)
	if cfg.Display.Enabled || cfg.HTTP.Metrics.Addr != "" || cfg.HTTP.Admin.Enabled() {
		if d.disp, err = d.newDisplay(); err != nil {
			return err
		}
	}
	if w.src, err = d.source(); err != nil {
		return err
	}
	therm, closeTherm, err := d.openThermometer()
	if err != nil {
		return err
	}
	w.therm = therm
	w.closers = append(w.closers, closeTherm)
	d.openSync()
	d.loop = d.newLoop(therm)
	return nil
}

// openTrust loads the root keys, builds the verifier on the trusted clock
// (its floor the build time or the saved floor, whichever is later) and
// installs the stored and configured trust data.
func (d *daemon) openTrust() (*verifier.TrustedClock, error) {
	cfg := d.cfg
	var err error
	if d.roots, err = loadRoots(cfg); err != nil {
		return nil, err
	}
	floor := buildFloor()
	if f := d.st.Floor(); f.After(floor) {
		floor = f
	}
	tclock := verifier.NewTrustedClock(verifier.SystemClock{}, floor)
	if d.v, err = verifier.New(tclock, d.st, &cfg.Policy); err != nil {
		return nil, err
	}
	if err := loadDCCPseudonymKey(cfg, d.v); err != nil {
		return nil, err
	}
	d.trust = d.newTrust()
	return tclock, d.installTrust(cfg)
}

// newLoop builds the decision loop on the gate's seams: the outbox it
// wakes itself, the daemon as its observer (display, metrics, store
// alert), and the kiosk's attendant queue when there is a kiosk.
func (d *daemon) newLoop(therm *thermo.Monitor) *loop.Loop {
	cfg := d.cfg
	opts := loop.Options{Feedback: d.fb, Outbox: d.outbox(), Station: d.stationSeam(), Observer: d, Logger: d.log}
	if therm != nil {
		opts.Thermometer = therm
	}
	if d.disp != nil {
		d.att = &attendants{}
		opts.Attendants = d.att
	}
	if cfg.Turnstile.Backend == "sim" {
		d.simOut = d.stdout
	}
	return loop.New(loop.Config{Gate: cfg.Gate.ID, Venue: cfg.Gate.Venue, HoldOff: cfg.Scanner.HoldOff,
		CommitBeforeOpen: cfg.Store.CommitBeforeOpen}, d.v, d.st, d.ts, opts)
}

// serve runs every goroutine of the gate in one errgroup and returns when
// all have: the scan source (its end ends the run), the loop, the
// turnstile, the watchers and upkeep. Nothing it starts outlives it.
func (d *daemon) serve(ctx context.Context, w *wiring) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	scans := make(chan device.Scan, scanQueue)
	g.Go(func() error {
		defer close(scans)
		err := w.src.Run(gctx, scans)
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
	if w.therm != nil {
		g.Go(func() error { w.therm.Run(gctx); return nil })
		g.Go(func() error { return d.watchThermometer(gctx, w.therm) })
	}
	if d.sync != nil {
		g.Go(func() error { d.runSync(gctx); return nil })
		g.Go(func() error { return d.snap.Run(gctx) })
	}
	if d.station != nil {
		g.Go(func() error { d.runStation(gctx); return nil })
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
	g.Go(func() error { return d.housekeeping(gctx, w.tclock) })
	g.Go(func() error { return d.upkeep(gctx) })
	g.Go(func() error { return d.watchdog(gctx) })
	g.Go(func() error { return d.reloads(gctx) })
	g.Go(func() error { return d.watchEvents(gctx, w) })
	return g.Wait()
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
