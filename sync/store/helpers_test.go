package store

import (
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wicket/internal/testkit"
)

// openTest opens a store in a temporary directory (unless opts.Path is
// set) and, at cleanup, closes it and checks the file: bbolt's consistency
// check plus the store's own invariants.
func openTest(tb testing.TB, opts Options) *Store {
	tb.Helper()
	if opts.Path == "" {
		opts.Path = filepath.Join(tb.TempDir(), "wicket.db")
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(tb)
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = 2 * time.Second
	}
	s, err := Open(opts)
	if err != nil {
		tb.Fatalf("Open(%q) = %v", opts.Path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
		mustCheckFile(tb, s.path)
	})
	return s
}

// mustCheckFile checks the (closed) store file with CheckFile.
func mustCheckFile(tb testing.TB, path string) {
	tb.Helper()
	if err := CheckFile(path, 2*time.Second); err != nil {
		tb.Error(err)
	}
}

// testLogger logs through t.Log.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// logBuffer collects JSON log lines for assertions.
type logBuffer struct{ testkit.Buffer }

// records returns the logged records as maps.
func (b *logBuffer) records(tb testing.TB) []map[string]any {
	tb.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			tb.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func newJSONLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }
