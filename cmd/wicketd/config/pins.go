package config

import (
	"fmt"
	"strconv"
	"strings"
)

// piHeader is the Raspberry Pi's 40-pin header (P1): for each physical
// pin, its BCM GPIO number, or one of the negative roles below.
var piHeader = [41]int{
	1: power3v3, 2: power5v, 3: 2, 4: power5v, 5: 3, 6: ground, 7: 4, 8: 14, 9: ground, 10: 15,
	11: 17, 12: 18, 13: 27, 14: ground, 15: 22, 16: 23, 17: power3v3, 18: 24, 19: 10, 20: ground,
	21: 9, 22: 25, 23: 11, 24: 8, 25: ground, 26: 7, 27: 0, 28: 1, 29: 5, 30: ground,
	31: 6, 32: 12, 33: 13, 34: ground, 35: 19, 36: 16, 37: 26, 38: 20, 39: ground, 40: 21,
}

const (
	ground   = -1
	power3v3 = -2
	power5v  = -3
)

// maxPiGPIO is the highest BCM GPIO on the header.
const maxPiGPIO = 27

// PiPin resolves a pin name as the config writes it ("GPIO17", or the
// header pin "P1_11") to its BCM GPIO name on the Raspberry Pi header,
// so that two names of one pin are seen as the same. The error says why
// the name is no usable pin and what to write instead.
func PiPin(name string) (string, error) {
	upper := strings.ToUpper(name)
	if n, err := strconv.Atoi(name); err == nil {
		return "", fmt.Errorf("%q is a bare number; write GPIO%d for BCM GPIO %d, or P1_%d for pin %d of the header (they are different pins)", name, n, n, n, n)
	}
	if rest, ok := strings.CutPrefix(upper, "GPIO"); ok {
		n, err := strconv.Atoi(rest)
		switch {
		case err != nil || n < 0:
			return "", fmt.Errorf("%q is not a GPIO name; write e.g. GPIO17", name)
		case n > maxPiGPIO:
			return "", fmt.Errorf("%q is not on this board's header; use one of GPIO2 to GPIO%d", name, maxPiGPIO)
		case n <= 1:
			return "", fmt.Errorf("%q is reserved for the HAT's ID EEPROM; use one of GPIO2 to GPIO%d", name, maxPiGPIO)
		}
		return fmt.Sprintf("GPIO%d", n), nil
	}
	if rest, ok := strings.CutPrefix(upper, "P1_"); ok {
		k, err := strconv.Atoi(rest)
		if err != nil || k < 1 || k >= len(piHeader) {
			return "", fmt.Errorf("%q: the header has pins P1_1 to P1_40", name)
		}
		switch g := piHeader[k]; g {
		case ground:
			return "", fmt.Errorf("%q is a ground pin; wire the part to a GPIO pin, e.g. P1_11 (GPIO17)", name)
		case power3v3, power5v:
			return "", fmt.Errorf("%q is a power pin; wire the part to a GPIO pin, e.g. P1_11 (GPIO17)", name)
		case 0, 1:
			return "", fmt.Errorf("%q is reserved for the HAT's ID EEPROM; use another GPIO pin, e.g. P1_11 (GPIO17)", name)
		default:
			return fmt.Sprintf("GPIO%d", g), nil
		}
	}
	return "", fmt.Errorf("%q is not a pin name; write GPIO17 (BCM numbering) or P1_11 (header pin)", name)
}

// NamedPin is one pin the config uses, with its field.
type NamedPin struct {
	Field string // e.g. turnstile.relay.name
	Name  string
}

// Pins lists the pins the config names (those left empty are not
// connected), relay first.
func (c *Config) Pins() []NamedPin {
	var out []NamedPin
	for _, p := range []NamedPin{
		{"turnstile.relay.name", c.Turnstile.Relay.Name},
		{"turnstile.passage.name", c.Turnstile.Passage.Name},
		{"turnstile.emergency.name", c.Turnstile.Emergency.Name},
		{"turnstile.tamper.name", c.Turnstile.Tamper.Name},
		{"feedback.green_led.name", c.Feedback.GreenLED.Name},
		{"feedback.red_led.name", c.Feedback.RedLED.Name},
		{"feedback.buzzer.name", c.Feedback.Buzzer.Name},
	} {
		if p.Name != "" {
			out = append(out, p)
		}
	}
	return out
}

// PinProblems checks each named pin against the Raspberry Pi header and
// that no pin serves two parts (by either of its names). Only for the
// gpio backend.
func (c *Config) PinProblems() Problems {
	if c.Turnstile.Backend != "gpio" {
		return nil
	}
	var probs Problems
	used := map[string]string{}
	for _, p := range c.Pins() {
		g, err := PiPin(p.Name)
		if err != nil {
			probs = append(probs, Problem{Line: c.Line(p.Field), Field: p.Field, Msg: err.Error()})
			continue
		}
		if other, ok := used[g]; ok {
			probs = append(probs, Problem{Line: c.Line(p.Field), Field: p.Field, Msg: fmt.Sprintf("%s is %s, already used by %s; each part needs its own pin", p.Name, g, other)})
			continue
		}
		used[g] = p.Field
	}
	return probs
}
