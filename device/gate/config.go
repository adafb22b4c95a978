package gate

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"periph.io/x/conn/v3/gpio"

	"wicket/internal/clock"
)

// RelayMode says how the relay unlocks the turnstile.
type RelayMode uint8

const (
	// RelayPulse energises the relay for PulseWidth; the turnstile's own
	// controller then lets one person through.
	RelayPulse RelayMode = iota
	// RelayLevel holds the relay until the passage sensor fires or
	// PassageTimeout ends.
	RelayLevel
)

// String returns "pulse" or "level".
func (m RelayMode) String() string {
	switch m {
	case RelayPulse:
		return "pulse"
	case RelayLevel:
		return "level"
	}
	return fmt.Sprintf("RelayMode(%d)", uint8(m))
}

// MarshalText returns "pulse" or "level", so a config renders as it is
// written.
func (m RelayMode) MarshalText() ([]byte, error) {
	if m > RelayLevel {
		return nil, fmt.Errorf("%w: relay mode %d", ErrConfig, uint8(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText parses "pulse" or "level", so config files can name it.
func (m *RelayMode) UnmarshalText(b []byte) error {
	switch strings.ToLower(string(b)) {
	case "pulse":
		*m = RelayPulse
	case "level":
		*m = RelayLevel
	default:
		return fmt.Errorf("%w: relay mode %q: use pulse or level", ErrConfig, b)
	}
	return nil
}

// Pull is the internal resistor set on an input pin.
type Pull uint8

const (
	// PullKeep leaves the pin's resistor as it is (external resistors).
	PullKeep Pull = iota
	PullUp
	PullDown
	PullFloat
)

// UnmarshalText parses "", "keep", "up", "down" or "float".
func (p *Pull) UnmarshalText(b []byte) error {
	switch strings.ToLower(string(b)) {
	case "", "keep":
		*p = PullKeep
	case "up":
		*p = PullUp
	case "down":
		*p = PullDown
	case "float":
		*p = PullFloat
	default:
		return fmt.Errorf("%w: pull %q: use up, down, float or keep", ErrConfig, b)
	}
	return nil
}

func (p Pull) gpio() gpio.Pull {
	switch p {
	case PullUp:
		return gpio.PullUp
	case PullDown:
		return gpio.PullDown
	case PullFloat:
		return gpio.Float
	}
	return gpio.PullNoChange
}

// TurnstileConfig configures a Turnstile. Pin names are periph's
// (gpioreg), such as "GPIO17"; they are used by OpenGPIO only.
type TurnstileConfig struct {
	// RelayPin drives the lock relay; energised means unlocked. Required
	// for OpenGPIO.
	RelayPin string
	// RelayActiveLow: the relay is energised by a low level (most relay
	// boards with an opto-coupler input).
	RelayActiveLow bool
	// Mode is RelayPulse (default) or RelayLevel.
	Mode RelayMode
	// PulseWidth is how long a pulse lasts. Zero means DefaultPulseWidth.
	PulseWidth time.Duration
	// PassageTimeout is how long Open waits for the passage sensor, and in
	// level mode the longest the relay is held. Zero means
	// DefaultPassageTimeout.
	PassageTimeout time.Duration
	// FailSafe makes the safe state unlocked (relay energised) rather than
	// locked, where regulations want a dead gate to let people out. The
	// safe state is taken on Close and on any GPIO error; in service the
	// gate is locked between passages either way.
	FailSafe bool

	// PassagePin is the optional passage sensor input.
	PassagePin string
	// PassageActiveLow: the sensor pulls the line low when someone passes.
	PassageActiveLow bool
	// PassagePull is the sensor input's resistor; default PullKeep.
	PassagePull Pull

	// EmergencyPin is the optional emergency (fire alarm) input. While it
	// is active the gate is free; see Turnstile.
	EmergencyPin string
	// EmergencyActiveLow: the alarm is signalled by a low level.
	EmergencyActiveLow bool
	// EmergencyPull is the emergency input's resistor; default PullKeep.
	// With a normally-closed alarm contact to ground, use PullUp and
	// EmergencyActiveLow false, so a cut wire also frees the gate.
	EmergencyPull Pull
}

func (c TurnstileConfig) withDefaults() TurnstileConfig {
	if c.PulseWidth == 0 {
		c.PulseWidth = DefaultPulseWidth
	}
	if c.PassageTimeout == 0 {
		c.PassageTimeout = DefaultPassageTimeout
	}
	return c
}

// Validate reports the first invalid field, naming it and the fix. Zero
// values are valid: they stand for the defaults.
func (c TurnstileConfig) Validate() error {
	if c.Mode > RelayLevel {
		return fmt.Errorf("%w: Mode %d: use RelayPulse or RelayLevel", ErrConfig, c.Mode)
	}
	d := c.withDefaults()
	if d.PassageTimeout < 0 || d.PassageTimeout > MaxPassageTimeout {
		return fmt.Errorf("%w: PassageTimeout %v: use a duration up to %v, or 0 for %v", ErrConfig, c.PassageTimeout, MaxPassageTimeout, DefaultPassageTimeout)
	}
	if d.PulseWidth < 0 || d.PulseWidth > d.PassageTimeout {
		return fmt.Errorf("%w: PulseWidth %v: use a positive duration no longer than PassageTimeout (%v)", ErrConfig, c.PulseWidth, d.PassageTimeout)
	}
	for _, p := range []Pull{c.PassagePull, c.EmergencyPull} {
		if p > PullFloat {
			return fmt.Errorf("%w: pull %d: use PullKeep, PullUp, PullDown or PullFloat", ErrConfig, p)
		}
	}
	return nil
}

// Step is one step of a feedback pattern: the output is on for On, then
// off for Off. A step with On zero is a pause.
type Step struct {
	On, Off time.Duration
}

// Pattern is what the feedback outputs do for one Signal. The three lists
// run side by side from the same start; an output whose list is empty
// stays off. The pattern ends when the longest list ends, and every output
// is off then.
type Pattern struct {
	Green, Red, Buzzer []Step
}

func (p Pattern) empty() bool {
	return len(p.Green) == 0 && len(p.Red) == 0 && len(p.Buzzer) == 0
}

func (p Pattern) validate(name string) error {
	for i, steps := range [][]Step{p.Green, p.Red, p.Buzzer} {
		out := [...]string{"Green", "Red", "Buzzer"}[i]
		if len(steps) > MaxPatternSteps {
			return fmt.Errorf("%w: %s.%s has %d steps: use at most %d", ErrConfig, name, out, len(steps), MaxPatternSteps)
		}
		var total time.Duration
		for _, s := range steps {
			if s.On < 0 || s.Off < 0 {
				return fmt.Errorf("%w: %s.%s: step %+v has a negative duration", ErrConfig, name, out, s)
			}
			total += s.On + s.Off
		}
		if total > MaxPatternLength {
			return fmt.Errorf("%w: %s.%s lasts %v: keep it within %v", ErrConfig, name, out, total, MaxPatternLength)
		}
	}
	return nil
}

// Default patterns, used for a Signal whose Pattern is empty.
var (
	// DefaultAllow: green for a second and a short beep.
	DefaultAllow = Pattern{
		Green:  []Step{{On: time.Second}},
		Buzzer: []Step{{On: 100 * time.Millisecond}},
	}
	// DefaultDeny: red for a second and a half and two beeps.
	DefaultDeny = Pattern{
		Red:    []Step{{On: 1500 * time.Millisecond}},
		Buzzer: []Step{{On: 100 * time.Millisecond, Off: 100 * time.Millisecond}, {On: 100 * time.Millisecond}},
	}
	// DefaultError: red blinking fast and a long beep.
	DefaultError = Pattern{
		Red:    []Step{{On: 150 * time.Millisecond, Off: 150 * time.Millisecond}, {On: 150 * time.Millisecond, Off: 150 * time.Millisecond}, {On: 150 * time.Millisecond, Off: 150 * time.Millisecond}},
		Buzzer: []Step{{On: 600 * time.Millisecond}},
	}
	// DefaultOffline: green and red taking turns, silently.
	DefaultOffline = Pattern{
		Green: []Step{{On: 250 * time.Millisecond, Off: 250 * time.Millisecond}, {On: 250 * time.Millisecond}},
		Red:   []Step{{Off: 250 * time.Millisecond}, {On: 250 * time.Millisecond, Off: 250 * time.Millisecond}, {On: 250 * time.Millisecond}},
	}
)

// FeedbackConfig configures Feedback. Each output is optional.
type FeedbackConfig struct {
	// GreenPin, RedPin and BuzzerPin name the GPIOs of the green LED, the
	// red LED and the buzzer (an active buzzer: on means sounding). Used by
	// OpenGPIO only; empty means the output is absent.
	GreenPin, RedPin, BuzzerPin string
	// GreenActiveLow, RedActiveLow and BuzzerActiveLow: the output is on
	// at a low level (driven through a PNP transistor or sinking current).
	GreenActiveLow, RedActiveLow, BuzzerActiveLow bool

	// Allow, Deny, Error and Offline are the patterns of each Signal; an
	// empty one means DefaultAllow, DefaultDeny, DefaultError or
	// DefaultOffline.
	Allow, Deny, Error, Offline Pattern
}

func (c FeedbackConfig) withDefaults() FeedbackConfig {
	for _, p := range []struct {
		p   *Pattern
		def Pattern
	}{{&c.Allow, DefaultAllow}, {&c.Deny, DefaultDeny}, {&c.Error, DefaultError}, {&c.Offline, DefaultOffline}} {
		if p.p.empty() {
			*p.p = p.def
		}
	}
	return c
}

// Validate reports the first invalid pattern, naming it and the fix.
func (c FeedbackConfig) Validate() error {
	for _, p := range []struct {
		name string
		p    Pattern
	}{{"Allow", c.Allow}, {"Deny", c.Deny}, {"Error", c.Error}, {"Offline", c.Offline}} {
		if err := p.p.validate(p.name); err != nil {
			return err
		}
	}
	return nil
}

// Config is the whole gate: turnstile and feedback.
type Config struct {
	Turnstile TurnstileConfig
	Feedback  FeedbackConfig
}

// Options are the optional collaborators of a Turnstile and Feedback.
type Options struct {
	// Logger receives log lines; nil discards them.
	Logger *slog.Logger
	// Clock is the time source; nil means the real clock.
	Clock clock.Clock
	// OnEmergency is called with each new emergency state, in order, from
	// Turnstile.Run or Acknowledge. It must not block for long and must not
	// call Acknowledge.
	OnEmergency func(EmergencyState)
	// OnForcedPassage, if set, is called from Turnstile.Run each time the
	// passage sensor becomes active while the gate was not opened for
	// anyone and no emergency release is on: someone jumped or forced the
	// turnstile. Without it the sensor is only read during Open. It must
	// not block for long.
	OnForcedPassage func()
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Clock = clock.OrReal(o.Clock)
	return o
}
