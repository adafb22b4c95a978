package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"

	"wicket/cmd/wicketd/config"
	"wicket/device/gate"
)

// feedbackOn is how long test-feedback turns each output on.
const feedbackOn = 1500 * time.Millisecond

// cmdTestFeedback turns the green LED, the red LED and the buzzer on one
// at a time and asks the technician, on the terminal, whether each did
// what it should. It exits 1 if any did not, with the fix.
func cmdTestFeedback(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	d, ok := outputsForTool("test-feedback", args, stdin, stdout, stderr)
	if !ok {
		return exitUsage
	}
	defer d.closeOutputs()
	cfg := d.cfg
	on := []gate.Step{{On: feedbackOn}}
	answers := bufio.NewScanner(stdin)
	failed := 0
	for _, o := range []struct {
		field, what, ask string
		pin              config.Pin
		pattern          gate.Pattern
	}{
		{"feedback.green_led", "green LED", "did the green LED light, and only it?", cfg.Feedback.GreenLED, gate.Pattern{Green: on}},
		{"feedback.red_led", "red LED", "did the red LED light, and only it?", cfg.Feedback.RedLED, gate.Pattern{Red: on}},
		{"feedback.buzzer", "buzzer", "did the buzzer sound?", cfg.Feedback.Buzzer, gate.Pattern{Buzzer: on}},
	} {
		if o.pin.Name == "" && cfg.Turnstile.Backend == "gpio" {
			fmt.Fprintf(stdout, "%-10s not connected (%s.name empty): skipped\n", o.what, o.field)
			continue
		}
		// Every signal plays this output alone, so Show(SignalAllow) is it.
		if err := d.fb.SetPatterns(gate.FeedbackConfig{Allow: o.pattern, Deny: o.pattern, Error: o.pattern, Offline: o.pattern}); err != nil {
			fmt.Fprintf(stderr, "wicketd test-feedback: %v\n", err)
			return exitUsage
		}
		fmt.Fprintf(stdout, "%-10s %s (active-%s): on for %v...\n", o.what, o.pin.Name, lowHigh(o.pin.ActiveLow), feedbackOn)
		select {
		case <-d.fb.Show(gate.SignalAllow):
		case <-ctx.Done():
			return exitDenied
		}
		fmt.Fprintf(stdout, "  %s [y/n] ", o.ask)
		if !answers.Scan() {
			fmt.Fprintln(stdout)
			fmt.Fprintln(stderr, "wicketd test-feedback: no answer on stdin; run it on a terminal")
			return exitUsage
		}
		if a := strings.ToLower(strings.TrimSpace(answers.Text())); a == "y" || a == "yes" {
			fmt.Fprintln(stdout, "  OK")
			continue
		}
		failed++
		fmt.Fprintf(stdout, "  FAILED: check the wiring to %s; if it was on when it should be off, flip %s.active_low\n", o.pin.Name, o.field)
	}
	if failed > 0 {
		return exitDenied
	}
	return exitOK
}

// lookupPin finds a GPIO by name; tests replace it.
var lookupPin = func(name string) gpio.PinIO { return gpioreg.ByName(name) }

// inputPoll bounds each wait for an edge, so test-inputs ends on time.
const inputPoll = 100 * time.Millisecond

// noPinReason says why a named pin was not found: this user may not open
// a GPIO chip, or the board has no such GPIO.
func noPinReason() string {
	if err := gate.ChipAccess("/dev/gpiochip*"); err != nil {
		return err.Error()
	}
	return "no such GPIO on this board"
}

// cmdTestInputs prints every change of the passage sensor, the emergency
// input and the tamper switch for a while (-for), so a technician can walk
// through the gate, pull the fire-alarm test switch and open the enclosure
// and see each. It reads the pins directly; the gate must be stopped.
func cmdTestInputs(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var watch time.Duration
	cfg, ok := loadForTool("test-inputs", args, stderr, func(fs *flag.FlagSet) {
		fs.DurationVar(&watch, "for", 30*time.Second, "how long to watch the inputs")
	})
	if !ok {
		return exitUsage
	}
	if cfg.Turnstile.Backend != "gpio" {
		fmt.Fprintln(stderr, "wicketd test-inputs: turnstile.backend is not gpio: there are no inputs to watch")
		return exitUsage
	}
	type input struct {
		what, field string
		cfg         config.Pin
		pin         gpio.PinIO
		changes     int
	}
	var inputs []*input
	for _, in := range []*input{
		{what: "passage sensor", field: "turnstile.passage.name", cfg: cfg.Turnstile.Passage},
		{what: "emergency input", field: "turnstile.emergency.name", cfg: cfg.Turnstile.Emergency},
		{what: "tamper switch", field: "turnstile.tamper.name", cfg: cfg.Turnstile.Tamper},
	} {
		if in.cfg.Name == "" {
			fmt.Fprintf(stdout, "%-15s not connected (%s empty)\n", in.what, in.field)
			continue
		}
		inputs = append(inputs, in)
	}
	if len(inputs) == 0 {
		fmt.Fprintln(stderr, "wicketd test-inputs: no inputs are configured")
		return exitUsage
	}
	host.Init() // errors show as pins not found, explained below
	for _, in := range inputs {
		if in.pin = lookupPin(in.cfg.Name); in.pin == nil {
			fmt.Fprintf(stderr, "wicketd test-inputs: %s %q: %s\n", in.field, in.cfg.Name, noPinReason())
			return exitUsage
		}
		if err := in.pin.In(gpio.PullNoChange, gpio.BothEdges); err != nil {
			fmt.Fprintf(stderr, "wicketd test-inputs: %s %q: %v (is wicketd running? stop it first: systemctl stop wicketd)\n", in.field, in.cfg.Name, err)
			return exitUsage
		}
	}
	state := func(in *input, l gpio.Level) string {
		if bool(l) != in.cfg.ActiveLow {
			return "ACTIVE"
		}
		return "inactive"
	}
	var mu sync.Mutex // one line at a time
	start := time.Now()
	for _, in := range inputs {
		fmt.Fprintf(stdout, "%-15s %s (active-%s): %s\n", in.what, in.cfg.Name, lowHigh(in.cfg.ActiveLow), state(in, in.pin.Read()))
	}
	fmt.Fprintf(stdout, "watching for %v: walk through the gate, trigger the emergency input, open the enclosure\n", watch)
	ctx, cancel := context.WithTimeout(ctx, watch)
	defer cancel()
	var wg sync.WaitGroup
	for _, in := range inputs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := in.pin.Read()
			for ctx.Err() == nil {
				if !in.pin.WaitForEdge(inputPoll) {
					continue
				}
				if l := in.pin.Read(); l != last {
					last = l
					mu.Lock()
					in.changes++
					fmt.Fprintf(stdout, "%8.3fs  %-15s %s\n", time.Since(start).Seconds(), in.what, state(in, l))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for _, in := range inputs {
		if in.changes == 0 {
			fmt.Fprintf(stdout, "%-15s no change seen: if you triggered it, check its wiring and %s's active_low\n", in.what, strings.TrimSuffix(in.field, ".name"))
		} else {
			fmt.Fprintf(stdout, "%-15s %d changes\n", in.what, in.changes)
		}
	}
	return exitOK
}
