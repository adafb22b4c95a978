// Command gpiowatch runs inside the board twin and prints every change of
// gpio-sim lines as seen through the simulator's sysfs attributes
// (sim_gpioN/value), one line per edge: the monotonic time in
// microseconds since the start, the line number and its new value. It
// polls, since the simulator's attributes offer no change notification;
// the lines of the first sample are printed as a baseline.
//
// Usage: gpiowatch -chip DIR -for DURATION LINE...
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

func main() {
	chip := flag.String("chip", "", "the simulator's gpiochip directory, e.g. /sys/devices/platform/gpio-sim.0/gpiochip0")
	dur := flag.Duration("for", 5*time.Second, "how long to watch")
	every := flag.Duration("every", 200*time.Microsecond, "poll interval")
	flag.Parse()
	if *chip == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: gpiowatch -chip DIR [-for D] LINE...")
		os.Exit(2)
	}
	type line struct {
		n    int
		f    *os.File
		last byte
	}
	var lines []*line
	for _, a := range flag.Args() {
		n, err := strconv.Atoi(a)
		if err != nil {
			fmt.Fprintf(os.Stderr, "gpiowatch: line %q: not a number\n", a)
			os.Exit(2)
		}
		f, err := os.Open(filepath.Join(*chip, fmt.Sprintf("sim_gpio%d", n), "value"))
		if err != nil {
			fmt.Fprintf(os.Stderr, "gpiowatch: %v\n", err)
			os.Exit(1)
		}
		lines = append(lines, &line{n: n, f: f, last: 'x'})
	}
	start := time.Now()
	buf := make([]byte, 4)
	for time.Since(start) < *dur {
		for _, l := range lines {
			k, err := l.f.ReadAt(buf, 0)
			if k == 0 {
				fmt.Fprintf(os.Stderr, "gpiowatch: line %d: %v\n", l.n, err)
				os.Exit(1)
			}
			if buf[0] != l.last {
				l.last = buf[0]
				fmt.Printf("%d %d %c\n", time.Since(start).Microseconds(), l.n, buf[0])
			}
		}
		time.Sleep(*every)
	}
}
