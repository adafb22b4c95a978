package gate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"

	"wicket/internal/clock"
)

// Passage is the outcome of Turnstile.Open.
type Passage uint8

const (
	// PassageError: the gate could not be driven, or Open was refused;
	// the error says why.
	PassageError Passage = iota
	// Passed: the passage sensor saw someone go through.
	Passed
	// NotPassed: nobody went through before PassageTimeout. The caller
	// logs it as granted but not passed.
	NotPassed
	// PassageUnknown: there is no passage sensor, so nobody knows.
	PassageUnknown
)

// String returns "error", "passed", "not passed" or "unknown".
func (p Passage) String() string {
	switch p {
	case PassageError:
		return "error"
	case Passed:
		return "passed"
	case NotPassed:
		return "not passed"
	case PassageUnknown:
		return "unknown"
	}
	return fmt.Sprintf("Passage(%d)", uint8(p))
}

// EmergencyState is the state of the emergency release.
type EmergencyState uint8

const (
	// EmergencyNormal: no emergency; the gate works normally.
	EmergencyNormal EmergencyState = iota
	// EmergencyActive: the emergency input is active; the gate is free.
	EmergencyActive
	// EmergencyLatched: the input has cleared but nobody acknowledged the
	// release yet; the gate stays free.
	EmergencyLatched
)

// String returns "normal", "active" or "latched".
func (s EmergencyState) String() string {
	switch s {
	case EmergencyNormal:
		return "normal"
	case EmergencyActive:
		return "active"
	case EmergencyLatched:
		return "latched"
	}
	return fmt.Sprintf("EmergencyState(%d)", uint8(s))
}

// TurnstilePins are the pins of a Turnstile. Relay is required; a nil
// Passage or Emergency means there is none.
type TurnstilePins struct {
	Relay     gpio.PinOut
	Passage   gpio.PinIn
	Emergency gpio.PinIn
}

// Turnstile drives a turnstile's lock relay. The relay is on (unlocked)
// while Open holds it or the emergency release is on, and off (locked)
// otherwise; after Close or a GPIO error it is in the safe state, which is
// locked unless FailSafe is set. An emergency release overrides all of
// that, Close included. The methods are safe for concurrent use.
type Turnstile struct {
	cfg   TurnstileConfig
	log   *slog.Logger
	clock clock.Clock
	trace io.Writer // the simulation's narration; nil on hardware

	onEmergency func(EmergencyState)
	onForced    func()

	passage         gpio.PinIn
	passageEdge     gpio.Edge
	emergency       gpio.PinIn
	emergencyActive gpio.Level
	emergencyEdges  bool

	openMu   sync.Mutex    // one Open at a time
	opens    atomic.Uint64 // Open calls so far; the passage watch reads it
	notifyMu sync.Mutex    // keeps OnEmergency calls in order

	mu      sync.Mutex // guards the fields below
	relay   *output
	openReq bool
	faulted bool
	stuck   bool // the relay could not be driven to the safe state
	closed  bool
	state   EmergencyState
}

// NewTurnstile sets up the pins and locks the gate (or frees it, if the
// emergency input is already active). It fails if a pin cannot be set up.
func NewTurnstile(cfg TurnstileConfig, pins TurnstilePins, opts Options) (*Turnstile, error) {
	return newTurnstile(cfg, pins, opts, nil)
}

func newTurnstile(cfg TurnstileConfig, pins TurnstilePins, opts Options, trace io.Writer) (*Turnstile, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if pins.Relay == nil {
		return nil, fmt.Errorf("%w: no relay pin: set RelayPin", ErrConfig)
	}
	cfg = cfg.withDefaults()
	opts = opts.withDefaults()
	t := &Turnstile{
		cfg:             cfg,
		log:             opts.Logger.With("component", "turnstile"),
		clock:           opts.Clock,
		trace:           trace,
		onEmergency:     opts.OnEmergency,
		onForced:        opts.OnForcedPassage,
		passage:         pins.Passage,
		passageEdge:     gpio.RisingEdge,
		emergency:       pins.Emergency,
		emergencyActive: gpio.Level(!cfg.EmergencyActiveLow),
		relay:           newOutput("relay", pins.Relay, cfg.RelayActiveLow),
	}
	if cfg.PassageActiveLow {
		t.passageEdge = gpio.FallingEdge
	}
	if t.passage != nil {
		if err := t.passage.In(cfg.PassagePull.gpio(), t.passageEdge); err != nil {
			return nil, fmt.Errorf("%w: set up passage sensor %s: %w", ErrGPIO, t.passage, err)
		}
	}
	if t.emergency != nil {
		t.emergencyEdges = true
		if err := t.emergency.In(cfg.EmergencyPull.gpio(), gpio.BothEdges); err != nil {
			t.log.Info("emergency input has no edge detection; polling it", "pin", t.emergency.String(), "err", err)
			t.emergencyEdges = false
			if err := t.emergency.In(cfg.EmergencyPull.gpio(), gpio.NoEdge); err != nil {
				return nil, fmt.Errorf("%w: set up emergency input %s: %w", ErrGPIO, t.emergency, err)
			}
		}
		if t.emergency.Read() == t.emergencyActive {
			t.state = EmergencyActive
			t.log.Warn("emergency input active at start: gate free")
			t.tracef("emergency input active: relay ON (unlock) until cleared and acknowledged")
		}
	}
	t.mu.Lock()
	err := t.apply()
	t.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("set relay at start: %w", err)
	}
	if t.state == EmergencyNormal {
		t.tracef("start: relay OFF (lock)")
	}
	return t, nil
}

// tracef narrates what the hardware does, for the simulation.
func (t *Turnstile) tracef(format string, args ...any) {
	if t.trace != nil {
		fmt.Fprintf(t.trace, "turnstile: "+format+"\n", args...)
	}
}

// apply drives the relay to the state the fields call for. On a write
// error it marks the turnstile faulted and tries the safe state. The caller
// holds t.mu.
func (t *Turnstile) apply() error {
	on := t.openReq
	if t.closed || t.faulted {
		on = t.cfg.FailSafe
	}
	if t.state != EmergencyNormal {
		on = true
	}
	err := t.relay.set(on)
	if err == nil {
		t.stuck = false
		return nil
	}
	t.faulted = true
	safe := t.cfg.FailSafe || t.state != EmergencyNormal
	if serr := t.relay.set(safe); serr != nil {
		t.stuck = true
		t.log.Error("relay stuck: cannot reach the safe state; retrying", "err", serr, "safe_unlocked", safe)
		return errors.Join(err, serr)
	}
	t.stuck = false
	t.log.Error("relay write failed; relay in safe state", "err", err, "safe_unlocked", safe)
	t.tracef("GPIO error: relay in safe state (%s)", lockWord(safe))
	return err
}

func lockWord(unlocked bool) string {
	if unlocked {
		return "unlocked"
	}
	return "locked"
}

// Unlocked reports whether the relay was last set to unlock. It reads no
// pin.
func (t *Turnstile) Unlocked() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.relay.known && t.relay.on
}

// Open unlocks the gate for one person and returns how that went. In pulse
// mode the relay is energised for PulseWidth; in level mode until the
// passage sensor fires or PassageTimeout ends. Open then waits for the
// sensor up to PassageTimeout from the start, and returns with the gate
// locked again: Passed, NotPassed, or PassageUnknown without a sensor.
//
// Open blocks for up to PassageTimeout; concurrent calls wait their turn.
// It returns ErrEmergency while the emergency release is on, ErrClosed
// after Close, an ErrGPIO error if the relay could not be driven (it is
// then in the safe state), or ctx's error if ctx ended first, which locks
// the gate at once.
func (t *Turnstile) Open(ctx context.Context) (Passage, error) {
	t.openMu.Lock()
	defer t.openMu.Unlock()
	t.opens.Add(1)
	if err := t.unlock(); err != nil {
		return PassageError, err
	}
	if t.passage != nil {
		stop := context.AfterFunc(ctx, func() { _ = t.passage.Halt() })
		defer stop()
	}
	start := t.clock.Now()
	pulseEnd := start.Add(t.cfg.PulseWidth)
	deadline := start.Add(t.cfg.PassageTimeout)
	holding, passed := true, false
	for {
		now := t.clock.Now()
		closed := t.isClosed()
		if holding {
			release := passed || !now.Before(deadline)
			if t.cfg.Mode == RelayPulse {
				release = !now.Before(pulseEnd)
			}
			if release || ctx.Err() != nil || closed {
				holding = false
				if err := t.lock(); err != nil {
					return PassageError, err
				}
			}
		}
		if !holding {
			switch {
			case ctx.Err() != nil:
				return PassageError, fmt.Errorf("open: %w", ctx.Err())
			case closed:
				return PassageError, ErrClosed
			case passed:
				return Passed, nil
			case t.passage == nil:
				return PassageUnknown, nil
			case !now.Before(deadline):
				t.log.Debug("no passage", "timeout", t.cfg.PassageTimeout)
				t.tracef("no passage within %v", t.cfg.PassageTimeout)
				return NotPassed, nil
			}
		}
		next := deadline
		if holding && t.cfg.Mode == RelayPulse {
			next = pulseEnd
		}
		// Some drivers read a zero timeout as "forever": keep it positive.
		wait := max(min(next.Sub(now), maxEdgeWait), time.Millisecond)
		if passed || t.passage == nil {
			clock.Sleep(ctx, t.clock, wait)
			continue
		}
		// The sensor is set up for its active edge only, so an edge is a
		// passage even if the level is back to idle by now.
		if t.passage.WaitForEdge(wait) {
			passed = true
			t.log.Debug("passage detected")
			t.tracef("passage detected")
		}
	}
}

// unlock re-arms the passage sensor and energises the relay.
func (t *Turnstile) unlock() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return ErrClosed
	case t.state != EmergencyNormal:
		return ErrEmergency
	}
	if t.passage != nil {
		// In() also drops edges left from before.
		if err := t.passage.In(t.cfg.PassagePull.gpio(), t.passageEdge); err != nil {
			return fmt.Errorf("%w: arm passage sensor %s: %w", ErrGPIO, t.passage, err)
		}
	}
	t.faulted = false
	t.openReq = true
	if err := t.apply(); err != nil {
		t.openReq = false
		return fmt.Errorf("unlock: %w", err)
	}
	if t.cfg.Mode == RelayPulse {
		t.log.Debug("unlock", "mode", "pulse", "width", t.cfg.PulseWidth)
		t.tracef("relay ON (unlock) for %v", t.cfg.PulseWidth)
	} else {
		t.log.Debug("unlock", "mode", "level", "timeout", t.cfg.PassageTimeout)
		t.tracef("relay ON (unlock) until passage, at most %v", t.cfg.PassageTimeout)
	}
	return nil
}

// lock ends the unlock that Open asked for.
func (t *Turnstile) lock() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.openReq = false
	if err := t.apply(); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if t.relay.on {
		t.tracef("relay stays ON (emergency release)")
	} else {
		t.tracef("relay OFF (lock)")
	}
	return nil
}

func (t *Turnstile) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// EmergencyState returns the state of the emergency release.
func (t *Turnstile) EmergencyState() EmergencyState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state
}

// Run watches the emergency input until ctx is done, then returns nil. It
// reads the input's level on every edge and at least every 250 ms. Without
// an emergency input it just waits for ctx. Run is called once, by the
// owner of the Turnstile's lifetime.
//
// When the input becomes active the gate is freed at once (EmergencyActive)
// whatever else is going on. When it clears, the gate stays free
// (EmergencyLatched) until Acknowledge.
//
// Run also retries the safe state every relayRetry while a relay write
// has failed both ways, so a relay pin that comes back after a fault
// locks the gate (or frees it, with FailSafe) without waiting for a scan.
func (t *Turnstile) Run(ctx context.Context) error {
	if t.passage != nil && t.onForced != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			t.watchPassage(ctx)
		}()
		defer func() { <-done }()
	}
	if t.emergency == nil {
		for clock.Sleep(ctx, t.clock, relayRetry) {
			t.retrySafe()
		}
		return nil
	}
	stop := context.AfterFunc(ctx, func() { _ = t.emergency.Halt() })
	defer stop()
	if s := t.EmergencyState(); s != EmergencyNormal && t.onEmergency != nil {
		t.onEmergency(s)
	}
	for {
		t.sampleEmergency()
		t.retrySafe()
		if ctx.Err() != nil {
			return nil
		}
		if t.emergencyEdges {
			t.emergency.WaitForEdge(emergencyPoll)
		} else if !clock.Sleep(ctx, t.clock, emergencyPoll) {
			return nil
		}
	}
}

// watchPassage reads the passage sensor's level every passageWatch while
// no Open runs, and reports each change from idle to active that no Open
// explains as a forced passage. It only reads the level: Open keeps the
// sensor's edges to itself. A sensor still active when an Open ends is
// the granted person, not a new passage.
func (t *Turnstile) watchPassage(ctx context.Context) {
	active := gpio.Level(!t.cfg.PassageActiveLow)
	var wasActive bool
	var seen uint64
	for clock.Sleep(ctx, t.clock, passageWatch) {
		if !t.openMu.TryLock() {
			continue
		}
		now := t.passage.Read() == active
		opens := t.opens.Load()
		t.openMu.Unlock()
		forced := now && !wasActive && opens == seen && t.EmergencyState() == EmergencyNormal && !t.isClosed()
		wasActive, seen = now, opens
		if forced {
			t.log.Warn("forced passage: the passage sensor fired with no grant")
			t.tracef("forced passage: sensor active with the gate locked")
			t.onForced()
		}
	}
}

// retrySafe drives a stuck relay to the safe state again.
func (t *Turnstile) retrySafe() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stuck {
		return
	}
	safe := t.cfg.FailSafe || t.state != EmergencyNormal
	if err := t.relay.set(safe); err != nil {
		return
	}
	t.stuck = false
	t.log.Warn("relay works again: in the safe state", "safe_unlocked", safe)
	t.tracef("relay works again: relay in safe state (%s)", lockWord(safe))
}

func (t *Turnstile) sampleEmergency() {
	active := t.emergency.Read() == t.emergencyActive
	t.notifyMu.Lock()
	defer t.notifyMu.Unlock()
	t.mu.Lock()
	prev := t.state
	switch {
	case active && t.state != EmergencyActive:
		t.state = EmergencyActive
	case !active && t.state == EmergencyActive:
		t.state = EmergencyLatched
	}
	s := t.state
	var err error
	if s != prev {
		err = t.apply()
	}
	t.mu.Unlock()
	if s == prev {
		return
	}
	switch s {
	case EmergencyActive:
		t.log.Warn("emergency input active: gate free")
		t.tracef("emergency input active: relay ON (unlock) until cleared and acknowledged")
	case EmergencyLatched:
		t.log.Warn("emergency input cleared: gate stays free until acknowledged")
		t.tracef("emergency input cleared: gate stays free until acknowledged")
	}
	if err != nil {
		t.log.Error("emergency release: relay write failed", "err", err)
	}
	if t.onEmergency != nil {
		t.onEmergency(s)
	}
}

// Acknowledge ends a latched emergency release and locks the gate again.
// It returns ErrEmergencyActive, changing nothing, while the input is
// still active, and nil if there is nothing to acknowledge. It reads the
// input itself rather than trusting Run's last sample, so an alarm that
// came back since then keeps the gate free. It is safe to call from any
// goroutine (an attendant's page, the CLI, a signed message from the
// authority).
func (t *Turnstile) Acknowledge() error {
	t.notifyMu.Lock()
	defer t.notifyMu.Unlock()
	t.mu.Lock()
	switch {
	case t.state == EmergencyNormal:
		t.mu.Unlock()
		return nil
	case t.state == EmergencyActive, t.emergency != nil && t.emergency.Read() == t.emergencyActive:
		t.mu.Unlock()
		return ErrEmergencyActive
	}
	t.state = EmergencyNormal
	err := t.apply()
	t.mu.Unlock()
	t.log.Info("emergency release acknowledged")
	t.tracef("emergency acknowledged: relay OFF (lock)")
	if t.onEmergency != nil {
		t.onEmergency(EmergencyNormal)
	}
	if err != nil {
		return fmt.Errorf("acknowledge: %w", err)
	}
	return nil
}

// Close puts the relay in the safe state (or leaves the gate free during an
// emergency release) and halts the input pins, which ends a running Open.
// It is idempotent; Open fails with ErrClosed afterwards. Run must still be
// stopped through its context.
func (t *Turnstile) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.openReq = false
	err := t.apply()
	unlocked := t.relay.known && t.relay.on
	t.mu.Unlock()
	t.log.Info("turnstile closed", "unlocked", unlocked)
	t.tracef("closed: relay %s", onOff(unlocked))
	var errs []error
	if err != nil {
		errs = append(errs, fmt.Errorf("close: %w", err))
	}
	for _, p := range []gpio.PinIn{t.passage, t.emergency} {
		if p == nil {
			continue
		}
		if err := p.Halt(); err != nil {
			errs = append(errs, fmt.Errorf("%w: halt %s: %w", ErrGPIO, p, err))
		}
	}
	return errors.Join(errs...)
}

func onOff(unlocked bool) string {
	if unlocked {
		return "ON (unlock)"
	}
	return "OFF (lock)"
}
