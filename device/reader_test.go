package device

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"wicket/device/internal/logtest"
)

// collect runs src to its end and returns the payloads it delivered.
func collect(t *testing.T, src Source) ([]string, error) {
	t.Helper()
	out := make(chan Scan)
	done := make(chan error, 1)
	go func() {
		done <- src.Run(context.Background(), out)
		close(out)
	}()
	var got []string
	for s := range out {
		got = append(got, string(s.Payload))
	}
	return got, <-done
}

func TestReaderSource(t *testing.T) {
	in := "HC1:ONE\nHC1:TWO\r\n\n\r\n]Q1HC1:AIM\nTOO-LONG-LINE\nHC1:LAST"
	log, buf := jsonLogger("scanner")
	src, err := NewReaderSource("stdin", strings.NewReader(in), ReaderConfig{MaxFrame: 10, StripAIM: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	got, err := collect(t, src)
	want := []string{"HC1:ONE", "HC1:TWO", "HC1:AIM", "HC1:LAST"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ReaderSource(%q) = %q, %v; want %q, nil", in, got, err, want)
	}
	// The long line is logged once, with the component the caller set
	// and the source's name, each once.
	lines := logtest.Lines(t, buf.String())
	if len(lines) != 1 || lines[0]["msg"] != "dropped line" || lines[0]["component"] != "scanner" || lines[0]["source"] != "stdin" {
		t.Errorf("log = %v; want one dropped line from component scanner, source stdin", lines)
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestReaderSourceError(t *testing.T) {
	src, err := NewReaderSource("broken", failReader{}, ReaderConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := collect(t, src); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Run() = %v; want io.ErrUnexpectedEOF", err)
	}
}

func TestReaderSourceCancel(t *testing.T) {
	r, w := io.Pipe()
	defer w.Close()
	src, err := NewReaderSource("pipe", r, ReaderConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Scan)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	if _, err := w.Write([]byte("HC1:X\n")); err != nil {
		t.Fatal(err)
	}
	if s := <-out; string(s.Payload) != "HC1:X" || s.Source != "pipe" {
		t.Errorf("scan = %q from %q; want HC1:X from pipe", s.Payload, s.Source)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run() after cancel = %v; want nil", err)
	}
}

func TestFileSource(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scans.txt")
	if err := os.WriteFile(path, []byte("HC1:A\r\nHC1:B\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := NewFileSource(path, ReaderConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := collect(t, src)
	if want := []string{"HC1:A", "HC1:B"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("FileSource = %q, %v; want %q, nil", got, err, want)
	}
	src, err = NewFileSource(filepath.Join(t.TempDir(), "none"), ReaderConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := collect(t, src); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("FileSource(missing) = %v; want ErrNotExist", err)
	}
}

var (
	_ Source = (*SerialSource)(nil)
	_ Source = (*ReaderSource)(nil)
	_ Source = (*FileSource)(nil)
)

// TestReaderSourceClock: each scan is stamped by the configured clock.
func TestReaderSourceClock(t *testing.T) {
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	src, err := NewReaderSource("stdin", strings.NewReader("HC1:ONE\nHC1:TWO\n"), ReaderConfig{Clock: clockwork.NewFakeClockAt(at)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan Scan)
	done := make(chan error, 1)
	go func() {
		done <- src.Run(context.Background(), out)
		close(out)
	}()
	n := 0
	for s := range out {
		n++
		if !s.At.Equal(at) {
			t.Errorf("scan %q stamped %v; want the clock's %v", s.Payload, s.At, at)
		}
	}
	if err := <-done; err != nil || n != 2 {
		t.Errorf("Run = %v after %d scans; want nil after 2", err, n)
	}
}
