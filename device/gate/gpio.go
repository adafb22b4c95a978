package gate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

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
			if err := ChipAccess(chipPattern); err != nil {
				missing = fmt.Errorf("%s %q: %w", field, name, err)
				return nil
			}
			missing = fmt.Errorf("%w: %s %q: no such GPIO on this board; use a name such as GPIO17", ErrConfig, field, name)
		}
		return p
	}
	// Outputs are requested at their off level (relay locked, lights
	// and buzzer off) so that starting wicketd never flicks them on.
	var held []gpio.PinOut
	out := func(field, name string, activeLow bool) gpio.PinOut {
		p := pin(field, name)
		if p == nil {
			return nil
		}
		l, err := openLineOut(name, gpio.Level(activeLow))
		if err != nil {
			missing = fmt.Errorf("%s %q: %w", field, name, err)
			return nil
		}
		if l == nil {
			return p
		}
		held = append(held, l)
		return l
	}
	release := func() {
		for _, l := range held {
			l.Halt()
		}
	}
	tc, fc := cfg.Turnstile, cfg.Feedback
	if tc.RelayPin == "" {
		return nil, nil, fmt.Errorf("%w: RelayPin is empty: name the GPIO driving the lock relay, such as GPIO17", ErrConfig)
	}
	tp := TurnstilePins{Relay: out("RelayPin", tc.RelayPin, tc.RelayActiveLow)}
	if p := pin("PassagePin", tc.PassagePin); p != nil {
		tp.Passage = p
	}
	if p := pin("EmergencyPin", tc.EmergencyPin); p != nil {
		tp.Emergency = p
	}
	var fp FeedbackPins
	if p := out("GreenPin", fc.GreenPin, fc.GreenActiveLow); p != nil {
		fp.Green = p
	}
	if p := out("RedPin", fc.RedPin, fc.RedActiveLow); p != nil {
		fp.Red = p
	}
	if p := out("BuzzerPin", fc.BuzzerPin, fc.BuzzerActiveLow); p != nil {
		fp.Buzzer = p
	}
	if missing != nil {
		release()
		return nil, nil, missing
	}
	t, err := NewTurnstile(tc, tp, opts)
	if err != nil {
		release()
		return nil, nil, err
	}
	f, err := NewFeedback(fc, fp, opts)
	if err != nil {
		release()
		return nil, nil, err
	}
	return t, f, nil
}

// chipPattern matches the kernel's GPIO character devices.
const chipPattern = "/dev/gpiochip*"

// ChipAccess tries to open each GPIO character device matching pattern
// and returns an ErrGPIO naming the first this user may not open, with
// the fix; nil if all open (or there are none). The GPIO drivers skip a
// chip they cannot open, so without this a permission problem looks like
// a pin that does not exist.
func ChipAccess(pattern string) error {
	chips, _ := filepath.Glob(pattern)
	for _, c := range chips {
		f, err := os.OpenFile(c, os.O_RDWR, 0)
		if err == nil {
			f.Close()
			continue
		}
		if err := chipError(c, err); err != nil {
			return err
		}
	}
	return nil
}

// chipError says what an error opening a GPIO chip means for the
// technician; nil for errors other than a denied permission.
func chipError(chip string, err error) error {
	if !errors.Is(err, fs.ErrPermission) {
		return nil
	}
	return fmt.Errorf("%w: permission denied opening %s: add the wicket user to the gpio group (usermod -aG gpio wicket), then restart wicketd", ErrGPIO, chip)
}
