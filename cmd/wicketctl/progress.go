package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws a progress bar for long operator commands: redrawn in
// place about five times a second on a terminal, one line per tenth
// otherwise (a log file or CI output stays readable).
type progress struct {
	w      io.Writer
	tty    bool
	label  string
	unit   string
	total  int64
	done   int64
	start  time.Time
	drawn  time.Time
	tenths int64
}

// newProgress starts a bar; mode is "auto" (a bar when w is a terminal,
// nothing otherwise), "on" (a bar, or lines when w is not a terminal) or
// "off".
func newProgress(w io.Writer, mode, label, unit string, total int64) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	if mode == "off" || mode == "auto" && !tty {
		w = io.Discard
	}
	return &progress{w: w, tty: tty, label: label, unit: unit, total: max(total, 1), start: time.Now()}
}

// add records n more units done.
func (p *progress) add(n int64) {
	p.done += n
	now := time.Now()
	if p.tty {
		if now.Sub(p.drawn) >= 200*time.Millisecond || p.done >= p.total {
			p.drawn = now
			fmt.Fprintf(p.w, "\r%s", p.line(now))
		}
		return
	}
	if t := p.done * 10 / p.total; t > p.tenths {
		p.tenths = t
		fmt.Fprintln(p.w, p.line(now))
	}
}

// finish ends the bar's line.
func (p *progress) finish() {
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\n", p.line(time.Now()))
	}
}

func (p *progress) line(now time.Time) string {
	const width = 30
	frac := min(float64(p.done)/float64(p.total), 1)
	fill := int(frac * width)
	el := now.Sub(p.start)
	eta := "--"
	if p.done > 0 && frac < 1 {
		eta = (time.Duration(float64(el) / frac * (1 - frac))).Round(time.Second).String()
	} else if frac >= 1 {
		eta = "done in " + el.Round(time.Millisecond).String()
	}
	rate := float64(p.done) / max(el.Seconds(), 1e-3)
	return fmt.Sprintf("%-10s [%s%s] %3.0f%% %s/%s %s  %s/s  %s", p.label,
		strings.Repeat("#", fill), strings.Repeat(".", width-fill), 100*frac,
		count(p.done), count(p.total), p.unit, count(int64(rate)), eta)
}

// count prints a number with a k/M suffix.
func count(n int64) string {
	switch {
	case n >= 10_000_000:
		return fmt.Sprintf("%.0fM", float64(n)/1e6)
	case n >= 1_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
