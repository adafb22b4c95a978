package gate

import (
	"errors"
	"io"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"

	"periph.io/x/conn/v3/physic"
	"wicket/internal/clock"
)

// SimConfig describes the simulated world around a simulated gate.
type SimConfig struct {
	// PassAfter is how long after the gate unlocks the simulated person
	// walks through. Zero means nobody does, and Open reports NotPassed
	// after PassageTimeout.
	PassAfter time.Duration
}

// Sim is a gate on simulated pins that narrates what the hardware would
// do to a writer, one line per action, such as
//
//	turnstile: relay ON (unlock) for 500ms
//	turnstile: passage detected
//	led green: on 1s
//	buzzer: beep 100ms
//
// Turnstile and Feedback are the same types as on hardware and behave the
// same; the simulation always has a passage sensor, an emergency input and
// all feedback outputs.
type Sim struct {
	Turnstile *Turnstile
	Feedback  *Feedback
	// Emergency is the simulated emergency input; Set(true) raises the
	// alarm.
	Emergency *SimInput
}

// NewSim builds a simulated gate writing to w. w must be safe for
// concurrent writes of whole lines (os.Stdout is). Pin names in cfg are
// ignored.
func NewSim(w io.Writer, cfg Config, sc SimConfig, opts Options) (*Sim, error) {
	opts = opts.withDefaults()
	tc := cfg.Turnstile
	emergency := &SimInput{name: "SIM_EMERGENCY", activeLow: tc.EmergencyActiveLow, edges: make(chan struct{}, 1)}
	emergency.level = gpio.Level(tc.EmergencyActiveLow)
	passage := &simSensor{clock: opts.Clock, passAfter: sc.PassAfter, active: gpio.Level(!tc.PassageActiveLow)}
	t, err := newTurnstile(tc, TurnstilePins{
		Relay:     &simPin{name: "SIM_RELAY"},
		Passage:   passage,
		Emergency: emergency,
	}, opts, w)
	if err != nil {
		return nil, err
	}
	f, err := newFeedback(cfg.Feedback, FeedbackPins{
		Green:  &simPin{name: "SIM_GREEN"},
		Red:    &simPin{name: "SIM_RED"},
		Buzzer: &simPin{name: "SIM_BUZZER"},
	}, opts, w)
	if err != nil {
		return nil, err
	}
	return &Sim{Turnstile: t, Feedback: f, Emergency: emergency}, nil
}

// simPin is an output pin that only remembers its level.
type simPin struct {
	name string
	mu   sync.Mutex
	l    gpio.Level
}

func (p *simPin) String() string   { return p.name }
func (p *simPin) Halt() error      { return nil }
func (p *simPin) Name() string     { return p.name }
func (p *simPin) Number() int      { return -1 }
func (p *simPin) Function() string { return "Out" }

func (p *simPin) Out(l gpio.Level) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.l = l
	return nil
}

func (p *simPin) PWM(gpio.Duty, physic.Frequency) error {
	return errors.New("simulated pin: no PWM")
}

// SimInput is a simulated level input, used for the emergency input.
type SimInput struct {
	name      string
	activeLow bool
	edges     chan struct{}

	mu    sync.Mutex
	level gpio.Level
}

// Set makes the input active or idle, as the alarm panel would.
func (p *SimInput) Set(active bool) {
	p.mu.Lock()
	p.level = gpio.Level(active != p.activeLow)
	p.mu.Unlock()
	select {
	case p.edges <- struct{}{}:
	default:
	}
}

func (p *SimInput) String() string                { return p.name }
func (p *SimInput) Name() string                  { return p.name }
func (p *SimInput) Number() int                   { return -1 }
func (p *SimInput) Function() string              { return "In" }
func (p *SimInput) Pull() gpio.Pull               { return gpio.PullNoChange }
func (p *SimInput) DefaultPull() gpio.Pull        { return gpio.PullNoChange }
func (p *SimInput) In(gpio.Pull, gpio.Edge) error { return nil }

// Halt wakes a WaitForEdge in progress.
func (p *SimInput) Halt() error {
	select {
	case p.edges <- struct{}{}:
	default:
	}
	return nil
}

// Read returns the level last Set.
func (p *SimInput) Read() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.level
}

// WaitForEdge returns true when Set was called, false after timeout. It
// uses the real clock: the emergency input is polled, not timed.
func (p *SimInput) WaitForEdge(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.edges:
		return true
	case <-t.C:
		return false
	}
}

// simSensor is a passage sensor that fires PassAfter after each In (which
// Open calls when it unlocks).
type simSensor struct {
	clock     clock.Clock
	passAfter time.Duration
	active    gpio.Level

	mu     sync.Mutex
	armed  time.Time
	fired  bool
	halted chan struct{}
}

func (p *simSensor) String() string         { return "SIM_PASSAGE" }
func (p *simSensor) Name() string           { return "SIM_PASSAGE" }
func (p *simSensor) Number() int            { return -1 }
func (p *simSensor) Function() string       { return "In" }
func (p *simSensor) Pull() gpio.Pull        { return gpio.PullNoChange }
func (p *simSensor) DefaultPull() gpio.Pull { return gpio.PullNoChange }

func (p *simSensor) In(gpio.Pull, gpio.Edge) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = p.clock.Now()
	p.fired = false
	p.halted = make(chan struct{})
	return nil
}

func (p *simSensor) Halt() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.halted != nil {
		close(p.halted)
		p.halted = nil
	}
	return nil
}

func (p *simSensor) Read() gpio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fired {
		return p.active
	}
	return !p.active
}

func (p *simSensor) WaitForEdge(timeout time.Duration) bool {
	p.mu.Lock()
	halted, fired := p.halted, p.fired
	due := p.armed.Add(p.passAfter).Sub(p.clock.Now())
	p.mu.Unlock()
	if halted == nil || fired {
		return false
	}
	edge := p.passAfter > 0 && due <= timeout
	wait := timeout
	if edge {
		wait = due
	}
	t := p.clock.NewTimer(wait)
	defer t.Stop()
	select {
	case <-halted:
		return false
	case <-t.Chan():
	}
	if edge {
		p.mu.Lock()
		p.fired = true
		p.mu.Unlock()
	}
	return edge
}

var (
	_ gpio.PinOut = (*simPin)(nil)
	_ gpio.PinIn  = (*SimInput)(nil)
	_ gpio.PinIn  = (*simSensor)(nil)
)
