package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"syscall"
)

// logHandler is the daemon's slog.Handler around the text or JSON
// handler. It writes each key once per line (Elasticsearch refuses a JSON
// object with a key twice): nested components join as "gate/turnstile",
// and for any other key given twice the later value wins. Under systemd's
// journal it starts each line with the sd-daemon priority prefix ("<4>"),
// so journalctl -p filters by severity; an ALERT line is priority 1.
//
// Attributes are kept here and handed to the inner handler with each
// record, which costs a little per line: the gate logs a few lines a
// second at most. Groups are passed through unchanged.
type logHandler struct {
	inner    slog.Handler
	out      *prefixWriter
	attrs    []slog.Attr
	priority bool
}

// prefixWriter writes one log line with the priority prefix of the record
// being handled; mu orders records across all handlers sharing it.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	if p.prefix == "" {
		return p.w.Write(b)
	}
	n, err := p.w.Write(append([]byte(p.prefix), b...))
	return max(n-len(p.prefix), 0), err
}

// newLogHandler returns the handler for w: JSON unless text is set, with
// priority prefixes when priority is set.
func newLogHandler(w io.Writer, text, priority bool, opts *slog.HandlerOptions) *logHandler {
	out := &prefixWriter{w: w}
	var inner slog.Handler = slog.NewJSONHandler(out, opts)
	if text {
		inner = slog.NewTextHandler(out, opts)
	}
	return &logHandler{inner: inner, out: out, priority: priority}
}

func (h *logHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = mergeAttrs(slices.Clip(h.attrs), as)
	return &c
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.inner = h.inner.WithGroup(name)
	return &c
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	var own []slog.Attr
	r.Attrs(func(a slog.Attr) bool {
		own = append(own, a)
		return true
	})
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(mergeAttrs(slices.Clip(h.attrs), own)...)
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	h.out.prefix = ""
	if h.priority {
		h.out.prefix = fmt.Sprintf("<%d>", journalPriority(r))
	}
	return h.inner.Handle(ctx, out)
}

// mergeAttrs appends add to base, one attribute per key: "component"
// values join with "/", any other key keeps the later value.
func mergeAttrs(base, add []slog.Attr) []slog.Attr {
	for _, a := range add {
		i := slices.IndexFunc(base, func(b slog.Attr) bool { return b.Key == a.Key })
		switch {
		case i < 0:
			base = append(base, a)
		case a.Key == "component":
			base[i] = slog.String("component", base[i].Value.String()+"/"+a.Value.String())
		default:
			base[i] = a
		}
	}
	return base
}

// journalPriority is the syslog priority of a record: an ALERT (a red
// code, a store that cannot commit, a forced passage) is 1 (alert), then
// error 3, warning 4, info 6, debug 7.
func journalPriority(r slog.Record) int {
	switch {
	case r.Message == "ALERT":
		return 1
	case r.Level >= slog.LevelError:
		return 3
	case r.Level >= slog.LevelWarn:
		return 4
	case r.Level >= slog.LevelInfo:
		return 6
	}
	return 7
}

// underJournal reports whether w is the stream systemd connected to the
// journal: JOURNAL_STREAM names its device and inode.
func underJournal(w io.Writer) bool {
	f, ok := w.(*os.File)
	js := os.Getenv("JOURNAL_STREAM")
	if !ok || js == "" {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return js == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
