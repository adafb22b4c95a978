package gate

import (
	"fmt"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// OpenGPIO initialises the host's GPIO drivers, looks up the pins named in
// cfg and returns the Turnstile and Feedback on them. A named pin that does
// not exist is an error; an empty name means the part is absent (except
// the relay, which is required).
func OpenGPIO(cfg Config, opts Options) (*Turnstile, *Feedback, error) {
	if _, err := host.Init(); err != nil {
		return nil, nil, fmt.Errorf("%w: init gpio drivers: %w", ErrGPIO, err)
	}
	var missing error
	pin := func(field, name string) gpio.PinIO {
		if name == "" || missing != nil {
			return nil
		}
		p := gpioreg.ByName(name)
		if p == nil {
			missing = fmt.Errorf("%w: %s %q: no such GPIO on this board; use a name such as GPIO17", ErrConfig, field, name)
		}
		return p
	}
	tc, fc := cfg.Turnstile, cfg.Feedback
	if tc.RelayPin == "" {
		return nil, nil, fmt.Errorf("%w: RelayPin is empty: name the GPIO driving the lock relay, such as GPIO17", ErrConfig)
	}
	tp := TurnstilePins{Relay: pin("RelayPin", tc.RelayPin)}
	if p := pin("PassagePin", tc.PassagePin); p != nil {
		tp.Passage = p
	}
	if p := pin("EmergencyPin", tc.EmergencyPin); p != nil {
		tp.Emergency = p
	}
	var fp FeedbackPins
	if p := pin("GreenPin", fc.GreenPin); p != nil {
		fp.Green = p
	}
	if p := pin("RedPin", fc.RedPin); p != nil {
		fp.Red = p
	}
	if p := pin("BuzzerPin", fc.BuzzerPin); p != nil {
		fp.Buzzer = p
	}
	if missing != nil {
		return nil, nil, missing
	}
	t, err := NewTurnstile(tc, tp, opts)
	if err != nil {
		return nil, nil, err
	}
	f, err := NewFeedback(fc, fp, opts)
	if err != nil {
		return nil, nil, err
	}
	return t, f, nil
}
