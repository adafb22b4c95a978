package gate

import (
	"context"
	"fmt"
	"log/slog"

	"periph.io/x/conn/v3/gpio"

	"wicket/internal/clock"
)

// Tamper watches the enclosure's tamper switch (a door or lid switch): an
// input that is active while the enclosure is open. It drives nothing and
// changes no decision; it reports each change, for an alert. The methods
// are safe for concurrent use.
type Tamper struct {
	pin      gpio.PinIn
	active   gpio.Level
	clock    clock.Clock
	log      *slog.Logger
	onChange func(open bool)
}

// NewTamper sets pin up as the tamper input, active high unless activeLow,
// with the pin's resistor as it is (PullKeep): wire a normally-closed
// switch to ground with a pull-up and activeLow false, so a cut wire reads
// as an open enclosure. onChange is called from Run with each change of
// state, and first with true if the enclosure is open when Run starts; it
// must not block for long.
func NewTamper(pin gpio.PinIn, activeLow bool, onChange func(open bool), opts Options) (*Tamper, error) {
	if pin == nil {
		return nil, fmt.Errorf("%w: no tamper pin", ErrConfig)
	}
	opts = opts.withDefaults()
	if err := pin.In(PullKeep.gpio(), gpio.NoEdge); err != nil {
		return nil, fmt.Errorf("%w: set up tamper input %s: %w", ErrGPIO, pin, err)
	}
	return &Tamper{pin: pin, active: gpio.Level(!activeLow), clock: opts.Clock, log: opts.Logger.With("component", "tamper"), onChange: onChange}, nil
}

// Open reads the switch now: true while the enclosure is open.
func (t *Tamper) Open() bool { return t.pin.Read() == t.active }

// Run reads the switch every tamperPoll until ctx ends and reports each
// change that two reads in a row agree on, so a bouncing contact is one
// change; an enclosure open at the start is reported at once. It returns
// nil when ctx ends.
func (t *Tamper) Run(ctx context.Context) error {
	prev := t.Open()
	reported := false
	if prev {
		reported = true
		t.report(true)
	}
	for clock.Sleep(ctx, t.clock, tamperPoll) {
		cur := t.Open()
		if cur == prev && cur != reported {
			reported = cur
			t.report(cur)
		}
		prev = cur
	}
	return nil
}

func (t *Tamper) report(open bool) {
	if open {
		t.log.Warn("tamper: enclosure open")
	} else {
		t.log.Info("tamper: enclosure closed")
	}
	t.onChange(open)
}
