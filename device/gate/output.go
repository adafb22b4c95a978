package gate

import (
	"fmt"

	"periph.io/x/conn/v3/gpio"
)

// output drives one GPIO output and remembers what it wrote. It never reads
// the pin back: periph would switch an output pin to an input to read it.
type output struct {
	name      string
	pin       gpio.PinOut
	activeLow bool
	on        bool
	known     bool // false until written, and after a failed write
}

func newOutput(name string, pin gpio.PinOut, activeLow bool) *output {
	if pin == nil {
		return nil
	}
	return &output{name: name, pin: pin, activeLow: activeLow}
}

// set switches the output on or off, writing the pin only if that changes
// what it last wrote. A nil output does nothing.
func (o *output) set(on bool) error {
	if o == nil || o.known && o.on == on {
		return nil
	}
	if err := o.pin.Out(gpio.Level(on != o.activeLow)); err != nil {
		o.known = false
		return fmt.Errorf("%w: %s %s: %w", ErrGPIO, o.name, o.pin, err)
	}
	o.on, o.known = on, true
	return nil
}
