package device

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"wicket/internal/clock"
)

// ReaderConfig configures a ReaderSource or FileSource.
type ReaderConfig struct {
	// MaxFrame bounds one line in bytes; longer lines are dropped and
	// logged. Zero means DefaultMaxFrame.
	MaxFrame int
	// StripAIM removes an AIM symbology identifier from each line.
	StripAIM bool
	// Clock stamps each scan's At; nil means the real clock.
	Clock clock.Clock
}

// ReaderSource reads scans as lines from any io.Reader (standard input, a
// file, a pipe), for demos, tests and replaying recorded scans. Lines end
// with LF or CRLF; a last line without one counts too.
type ReaderSource struct {
	name string
	r    io.Reader
	cfg  FramerConfig
	clk  clock.Clock
	log  *slog.Logger
}

// NewReaderSource returns a source reading r; name becomes Scan.Source.
// Its log lines carry name as source; scope logger for the role
// (component=scanner). A nil logger discards.
func NewReaderSource(name string, r io.Reader, cfg ReaderConfig, logger *slog.Logger) (*ReaderSource, error) {
	fc := FramerConfig{Terminator: TerminatorLF, MaxFrame: cfg.MaxFrame, StripAIM: cfg.StripAIM}
	if err := fc.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &ReaderSource{name: name, r: r, cfg: fc, clk: clock.OrReal(cfg.Clock), log: logger.With("source", name)}, nil
}

type chunk struct {
	b   []byte
	err error
}

// Run implements Source. It returns nil at the end of the input, after
// delivering its last line, and nil as soon as ctx is done; a read error is
// returned. A Read that blocks (a terminal) is left to finish in the
// background after Run returned, and its data is discarded.
func (s *ReaderSource) Run(ctx context.Context, out chan<- Scan) error {
	fr, err := NewFramer(s.cfg)
	if err != nil {
		return err
	}
	chunks := make(chan chunk)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			buf := make([]byte, readChunk)
			n, err := s.r.Read(buf)
			select {
			case chunks <- chunk{buf[:n], err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		var c chunk
		select {
		case <-ctx.Done():
			return nil
		case c = <-chunks:
		}
		frames := fr.Feed(c.b, s.clk.Now())
		if c.err != nil {
			frames = append(frames, fr.Flush()...)
		}
		for _, f := range frames {
			if f.Err != nil {
				s.log.Warn("dropped line", "err", f.Err, "start", HexDump(f.Data), "max_frame", s.cfg.MaxFrame)
				continue
			}
			data := bytes.TrimSuffix(f.Data, []byte{'\r'})
			if len(data) == 0 {
				continue
			}
			select {
			case out <- Scan{Payload: data, Source: s.name, At: f.At, Symbology: f.Symbology}:
			case <-ctx.Done():
				return nil
			}
		}
		switch {
		case c.err == nil:
		case errors.Is(c.err, io.EOF):
			return nil
		default:
			return fmt.Errorf("read %s: %w", s.name, c.err)
		}
	}
}

// FileSource reads scans as lines from a file, like ReaderSource.
type FileSource struct {
	path string
	cfg  ReaderConfig
	log  *slog.Logger
}

// NewFileSource returns a source reading the file at path when it runs.
func NewFileSource(path string, cfg ReaderConfig, logger *slog.Logger) (*FileSource, error) {
	if err := (FramerConfig{MaxFrame: cfg.MaxFrame}).Validate(); err != nil {
		return nil, err
	}
	return &FileSource{path: path, cfg: cfg, log: logger}, nil
}

// Run implements Source: it opens the file, then behaves like
// ReaderSource.Run, closing the file when it returns.
func (s *FileSource) Run(ctx context.Context, out chan<- Scan) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("open scan file: %w", err)
	}
	defer f.Close()
	rs, err := NewReaderSource(s.path, f, s.cfg, s.log)
	if err != nil {
		return err
	}
	return rs.Run(ctx, out)
}
