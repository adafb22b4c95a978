// Command gpiowatch runs inside the board twin and prints every change of
// gpio-sim lines as seen through the simulator's sysfs attributes
// (sim_gpioN/value), one line per edge: the monotonic time in
// microseconds since the start, the line number and its new value. It
// polls, since the simulator's attributes offer no change notification;
// the lines of the first sample are printed as a baseline.
//
// With -passage it is also the turnstile's passage sensor: each time the
// relay line goes to the given level (unlocked), it waits -passage-after
// (someone walking through), then pulls the sensor line up for
// -passage-hold and down again through sim_gpioN/pull, as a sensor
// wired active-high drives its input.
//
// Usage: gpiowatch -chip DIR -for DURATION [-passage RELAY=LEVEL:SENSOR] LINE...
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type line struct {
	n    int
	f    *os.File
	last byte
}

// walker is the passage sensor model: a person who walks through each time
// the relay unlocks.
type walker struct {
	relay  *line
	level  byte
	pull   string // the sensor line's sim_gpioN/pull
	after  time.Duration
	hold   time.Duration
	walkAt time.Time // when the next walk starts; zero: none pending
	upTill time.Time // when the sensor goes back to idle; zero: idle
}

func main() {
	chip := flag.String("chip", "", "the simulator's gpiochip directory, e.g. /sys/devices/platform/gpio-sim.0/gpiochip0")
	dur := flag.Duration("for", 5*time.Second, "how long to watch")
	every := flag.Duration("every", 200*time.Microsecond, "poll interval")
	passage := flag.String("passage", "", "RELAY=LEVEL:SENSOR: drive the passage sensor line SENSOR once each time line RELAY goes to LEVEL (0 or 1)")
	after := flag.Duration("passage-after", 200*time.Millisecond, "with -passage: from the relay's change to the sensor's active edge")
	hold := flag.Duration("passage-hold", 100*time.Millisecond, "with -passage: how long the sensor stays active")
	flag.Parse()
	if *chip == "" || (flag.NArg() == 0 && *passage == "") {
		fmt.Fprintln(os.Stderr, "usage: gpiowatch -chip DIR [-for D] [-passage RELAY=LEVEL:SENSOR] LINE...")
		os.Exit(2)
	}
	var lines []*line
	for _, a := range flag.Args() {
		n, err := strconv.Atoi(a)
		if err != nil {
			fail(2, "line %q: not a number", a)
		}
		lines = append(lines, open(*chip, n))
	}
	var w *walker
	if *passage != "" {
		w = newWalker(*chip, *passage, *after, *hold)
	}
	start := time.Now()
	buf := make([]byte, 4)
	for time.Since(start) < *dur {
		for _, l := range lines {
			if read(l, buf) {
				fmt.Printf("%d %d %c\n", time.Since(start).Microseconds(), l.n, buf[0])
			}
		}
		if w != nil {
			w.step(buf)
		}
		time.Sleep(*every)
	}
}

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "gpiowatch: "+format+"\n", args...)
	os.Exit(code)
}

func open(chip string, n int) *line {
	f, err := os.Open(filepath.Join(chip, fmt.Sprintf("sim_gpio%d", n), "value"))
	if err != nil {
		fail(1, "%v", err)
	}
	return &line{n: n, f: f, last: 'x'}
}

// read samples l into buf and reports whether its value changed.
func read(l *line, buf []byte) bool {
	k, err := l.f.ReadAt(buf, 0)
	if k == 0 {
		fail(1, "line %d: %v", l.n, err)
	}
	if buf[0] == l.last {
		return false
	}
	l.last = buf[0]
	return true
}

func newWalker(chip, spec string, after, hold time.Duration) *walker {
	relay, sensor, ok := strings.Cut(spec, ":")
	rn, lv, ok2 := strings.Cut(relay, "=")
	r, err1 := strconv.Atoi(rn)
	s, err2 := strconv.Atoi(sensor)
	if !ok || !ok2 || err1 != nil || err2 != nil || (lv != "0" && lv != "1") {
		fail(2, "-passage %q: want RELAY=LEVEL:SENSOR, e.g. 17=0:27", spec)
	}
	w := &walker{relay: open(chip, r), level: lv[0], after: after, hold: hold,
		pull: filepath.Join(chip, fmt.Sprintf("sim_gpio%d", s), "pull")}
	w.set("pull-down")
	return w
}

// step samples the relay and moves the person on: a walk starts after
// each change of the relay to the unlocked level.
func (w *walker) step(buf []byte) {
	now := time.Now()
	if read(w.relay, buf) && buf[0] == w.level && w.walkAt.IsZero() {
		w.walkAt = now.Add(w.after)
	}
	switch {
	case !w.upTill.IsZero() && !now.Before(w.upTill):
		w.set("pull-down")
		w.upTill = time.Time{}
	case !w.walkAt.IsZero() && w.upTill.IsZero() && !now.Before(w.walkAt):
		w.set("pull-up")
		w.walkAt, w.upTill = time.Time{}, now.Add(w.hold)
	}
}

func (w *walker) set(pull string) {
	if err := os.WriteFile(w.pull, []byte(pull), 0); err != nil {
		fail(1, "passage sensor: %v", err)
	}
}
