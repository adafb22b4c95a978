package device

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

// show renders frames for comparison: "ABC" for a frame, "Q1|ABC" with a
// symbology, "ABC~" when flushed by timeout, "!frame too long" for a report.
func show(frames []Frame) []string {
	out := []string{}
	for _, f := range frames {
		switch {
		case f.Err != nil:
			out = append(out, "!"+f.Err.Error())
		default:
			s := string(f.Data)
			if f.Symbology != "" {
				s = f.Symbology + "|" + s
			}
			if f.Flushed {
				s += "~"
			}
			out = append(out, s)
		}
	}
	return out
}

type feed struct {
	in   string        // bytes to feed; "" with tick set means Tick
	at   time.Duration // offset from t0
	tick bool
	want []string
}

func TestFramer(t *testing.T) {
	const tooLong = "!frame too long"
	const partial = "!partial frame dropped"
	tests := []struct {
		name  string
		cfg   FramerConfig
		feeds []feed
	}{
		{"cr", FramerConfig{Terminator: TerminatorCR}, []feed{
			{in: "ABC\r", want: []string{"ABC"}},
			{in: "A\rB\rC", want: []string{"A", "B"}},
			{in: "\r", want: []string{"C"}},
		}},
		{"cr skips lf after cr", FramerConfig{Terminator: TerminatorCR}, []feed{
			{in: "ABC\r\nDEF\r\n", want: []string{"ABC", "DEF"}},
			{in: "GHI\r", want: []string{"GHI"}},
			{in: "\nJKL\r", want: []string{"JKL"}},
			{in: "\nMNO\r", want: []string{"MNO"}},
		}},
		{"cr keeps lf elsewhere", FramerConfig{Terminator: TerminatorCR}, []feed{
			{in: "\nA\nB\r", want: []string{"\nA\nB"}},
		}},
		{"cr empty frames", FramerConfig{Terminator: TerminatorCR}, []feed{
			{in: "\r\r\r", want: []string{}},
		}},
		{"lf", FramerConfig{Terminator: TerminatorLF}, []feed{
			{in: "ABC\n", want: []string{"ABC"}},
			{in: "ABC\r\n", want: []string{"ABC\r"}},
			{in: "A\rB\n\n", want: []string{"A\rB"}},
		}},
		{"crlf", FramerConfig{Terminator: TerminatorCRLF}, []feed{
			{in: "ABC\r\n", want: []string{"ABC"}},
			{in: "AB\rC\r\n", want: []string{"AB\rC"}},
			{in: "A\nB\r\n", want: []string{"A\nB"}},
			{in: "A\r\r\n", want: []string{"A\r"}},
			{in: "\r\n\r\n", want: []string{}},
		}},
		{"crlf split", FramerConfig{Terminator: TerminatorCRLF}, []feed{
			{in: "AB", want: []string{}},
			{in: "C\r", want: []string{}},
			{in: "\n", want: []string{"ABC"}},
			{in: "D\r", want: []string{}},
			{in: "E\r\n", want: []string{"D\rE"}},
		}},
		{"partial across reads", FramerConfig{Terminator: TerminatorCR}, []feed{
			{in: "HC1:", want: []string{}},
			{in: "6BF", want: []string{}},
			{in: "OXN\rNEXT", want: []string{"HC1:6BFOXN"}},
			{in: "\r", want: []string{"NEXT"}},
		}},
		{"timeout flush", FramerConfig{InterByteTimeout: 200 * time.Millisecond, FlushPartial: true}, []feed{
			{in: "ABC", at: 0, want: []string{}},
			{at: 100 * time.Millisecond, tick: true, want: []string{}},
			{at: 200 * time.Millisecond, tick: true, want: []string{"ABC~"}},
			{at: 900 * time.Millisecond, tick: true, want: []string{}},
		}},
		{"timeout drop", FramerConfig{InterByteTimeout: 200 * time.Millisecond}, []feed{
			{in: "ABC", at: 0, want: []string{}},
			{in: "DEF\r", at: 300 * time.Millisecond, want: []string{partial, "DEF"}},
			{at: time.Second, tick: true, want: []string{}},
		}},
		{"timeout counts from last byte", FramerConfig{InterByteTimeout: 200 * time.Millisecond}, []feed{
			{in: "AB", at: 0, want: []string{}},
			{in: "C", at: 150 * time.Millisecond, want: []string{}},
			{at: 300 * time.Millisecond, tick: true, want: []string{}},
			{in: "\r", at: 340 * time.Millisecond, want: []string{"ABC"}},
		}},
		{"timeout with pending cr flushes", FramerConfig{Terminator: TerminatorCRLF, InterByteTimeout: 200 * time.Millisecond, FlushPartial: true}, []feed{
			{in: "ABC\r", at: 0, want: []string{}},
			{at: 250 * time.Millisecond, tick: true, want: []string{"ABC~"}},
		}},
		{"timeout forgets lf skip", FramerConfig{InterByteTimeout: 200 * time.Millisecond}, []feed{
			{in: "A\r", at: 0, want: []string{"A"}},
			{in: "\nB\r", at: time.Second, want: []string{"\nB"}},
		}},
		{"no timeout when disabled", FramerConfig{}, []feed{
			{in: "ABC", at: 0, want: []string{}},
			{at: time.Hour, tick: true, want: []string{}},
			{in: "\r", at: 2 * time.Hour, want: []string{"ABC"}},
		}},
		{"too long", FramerConfig{MaxFrame: 4}, []feed{
			{in: "ABCD\r", want: []string{"ABCD"}},
			{in: "ABCDE\r", want: []string{tooLong}},
			{in: "ABCDEFGH\rXY\r", want: []string{tooLong, "XY"}},
		}},
		{"too long resyncs across reads", FramerConfig{MaxFrame: 4}, []feed{
			{in: "ABCDE", want: []string{tooLong}},
			{in: "FGHIJKLMNOP", want: []string{}},
			{in: "Q\rOK\r", want: []string{"OK"}},
		}},
		{"too long crlf", FramerConfig{Terminator: TerminatorCRLF, MaxFrame: 4}, []feed{
			{in: "ABCD\r\n", want: []string{"ABCD"}},
			{in: "ABC\r\r\n", want: []string{"ABC\r"}},
			{in: "ABCD\rE\r\nOK\r\n", want: []string{tooLong, "OK"}},
		}},
		{"too long resyncs on timeout", FramerConfig{MaxFrame: 4, InterByteTimeout: 200 * time.Millisecond}, []feed{
			{in: "ABCDEFG", at: 0, want: []string{tooLong}},
			{at: time.Second, tick: true, want: []string{}},
			{in: "XY\r", at: time.Second, want: []string{"XY"}},
		}},
		{"garbage kept", FramerConfig{}, []feed{
			{in: "\x00\xff\x1b[A\x7f\r", want: []string{"\x00\xff\x1b[A\x7f"}},
			{in: "\x00\r", want: []string{"\x00"}},
		}},
		{"aim stripped", FramerConfig{StripAIM: true}, []feed{
			{in: "]Q1HC1:ABC\r", want: []string{"Q1|HC1:ABC"}},
			{in: "]d2XYZ\r", want: []string{"d2|XYZ"}},
			{in: "]QAXYZ\r", want: []string{"QA|XYZ"}},
			{in: "]Q1\r", want: []string{}},
			{in: "]Q\r", want: []string{"]Q"}},
			{in: "]1QABC\r", want: []string{"]1QABC"}},
			{in: "]QaABC\r", want: []string{"]QaABC"}},
			{in: "A]Q1B\r", want: []string{"A]Q1B"}},
		}},
		{"aim split across reads", FramerConfig{StripAIM: true}, []feed{
			{in: "]", want: []string{}},
			{in: "Q", want: []string{}},
			{in: "1ABC\r", want: []string{"Q1|ABC"}},
		}},
		{"aim kept when off", FramerConfig{}, []feed{
			{in: "]Q1ABC\r", want: []string{"]Q1ABC"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewFramer(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, fd := range tt.feeds {
				var got []string
				if fd.tick {
					got = show(f.Tick(t0.Add(fd.at)))
					if !slices.Equal(got, fd.want) {
						t.Errorf("Tick(%v) = %q; want %q", fd.at, got, fd.want)
					}
					continue
				}
				got = show(f.Feed([]byte(fd.in), t0.Add(fd.at)))
				if !slices.Equal(got, fd.want) {
					t.Errorf("Feed(%q) = %q; want %q", fd.in, got, fd.want)
				}
			}
		})
	}
}

func TestFramerTimes(t *testing.T) {
	f, err := NewFramer(FramerConfig{InterByteTimeout: time.Second, FlushPartial: true})
	if err != nil {
		t.Fatal(err)
	}
	f.Feed([]byte("AB"), t0)
	got := f.Feed([]byte("C\rD"), t0.Add(10*time.Millisecond))
	if len(got) != 1 || !got[0].At.Equal(t0.Add(10*time.Millisecond)) {
		t.Fatalf("Feed = %+v; want one frame at +10ms", got)
	}
	got = f.Tick(t0.Add(2 * time.Second))
	if len(got) != 1 || !got[0].At.Equal(t0.Add(10*time.Millisecond)) || !got[0].Flushed {
		t.Fatalf("Tick = %+v; want the flushed frame at its last byte, +10ms", got)
	}
}

// TestFramerResume: time the caller did not read (Resume) does not count
// as silence, for a partial frame or for the LF after a CR; silence after
// it does.
func TestFramerResume(t *testing.T) {
	const timeout = 200 * time.Millisecond
	const partial = "!partial frame dropped"
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	for _, tt := range []struct {
		name  string
		steps func(f *Framer) []string
		want  []string
	}{
		{"rest of a code read after a busy second", func(f *Framer) []string {
			f.Feed([]byte("HC1:AB"), ms(0))
			f.Resume(ms(1000))
			return show(f.Feed([]byte("CD\r"), ms(1001)))
		}, []string{"HC1:ABCD"}},
		{"a stall still times out after resuming", func(f *Framer) []string {
			f.Feed([]byte("HC1:AB"), ms(0))
			f.Resume(ms(1000))
			got := show(f.Tick(ms(1199)))
			return append(got, show(f.Tick(ms(1200)))...)
		}, []string{partial}},
		{"LF of a CRLF read after a busy second", func(f *Framer) []string {
			got := show(f.Feed([]byte("A\r"), ms(0)))
			f.Resume(ms(1000))
			return append(got, show(f.Feed([]byte("\nB\r"), ms(1000)))...)
		}, []string{"A", "B"}},
		{"an earlier time changes nothing", func(f *Framer) []string {
			f.Feed([]byte("X"), ms(1000))
			f.Resume(ms(0))
			return show(f.Tick(ms(1000 + 199)))
		}, []string{}},
	} {
		f, err := NewFramer(FramerConfig{Terminator: TerminatorCR, InterByteTimeout: timeout})
		if err != nil {
			t.Fatal(err)
		}
		if got := tt.steps(f); !slices.Equal(got, tt.want) {
			t.Errorf("%s: frames %q; want %q", tt.name, got, tt.want)
		}
	}
}

func TestFramerPreviewBounded(t *testing.T) {
	f, err := NewFramer(FramerConfig{MaxFrame: 100})
	if err != nil {
		t.Fatal(err)
	}
	got := f.Feed(bytes.Repeat([]byte{'x'}, 101), t0)
	if len(got) != 1 || !errors.Is(got[0].Err, ErrFrameTooLong) || len(got[0].Data) != previewLen {
		t.Fatalf("Feed(101 bytes) = %+v; want one ErrFrameTooLong with a %d-byte preview", got, previewLen)
	}
}

func TestFramerFlush(t *testing.T) {
	f, err := NewFramer(FramerConfig{Terminator: TerminatorLF})
	if err != nil {
		t.Fatal(err)
	}
	f.Feed([]byte("A\nlast"), t0)
	if got, want := show(f.Flush()), []string{"last~"}; !slices.Equal(got, want) {
		t.Errorf("Flush() = %q; want %q", got, want)
	}
	if got := f.Flush(); got != nil {
		t.Errorf("second Flush() = %v; want nil", got)
	}
}

func TestFramerConfig(t *testing.T) {
	bad := []FramerConfig{
		{Terminator: 9},
		{MaxFrame: -1},
		{MaxFrame: MaxFrameLimit + 1},
		{InterByteTimeout: -time.Second},
	}
	for _, c := range bad {
		if _, err := NewFramer(c); !errors.Is(err, ErrConfig) {
			t.Errorf("NewFramer(%+v) error = %v; want ErrConfig", c, err)
		}
	}
}

func TestParseTerminator(t *testing.T) {
	tests := []struct {
		in   string
		want Terminator
		ok   bool
	}{
		{"cr", TerminatorCR, true},
		{"LF", TerminatorLF, true},
		{"CrLf", TerminatorCRLF, true},
		{"", 0, false},
		{"\\r", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseTerminator(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseTerminator(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	var term Terminator
	if err := term.UnmarshalText([]byte("crlf")); err != nil || term != TerminatorCRLF {
		t.Errorf("UnmarshalText(crlf) = %v, %v; want crlf", term, err)
	}
	if b, err := TerminatorLF.MarshalText(); err != nil || string(b) != "lf" {
		t.Errorf("MarshalText(lf) = %q, %v; want lf", b, err)
	}
}

// terminates reports whether frame contains the terminator of term.
func terminates(term Terminator, frame []byte) bool {
	switch term {
	case TerminatorLF:
		return bytes.IndexByte(frame, '\n') >= 0
	case TerminatorCRLF:
		return bytes.Contains(frame, []byte("\r\n"))
	}
	return bytes.IndexByte(frame, '\r') >= 0
}

func FuzzFramer(f *testing.F) {
	f.Add([]byte("ABC\rDEF\r"), uint8(0), uint16(0), uint8(0), false, false, uint8(1))
	f.Add([]byte("ABC\r\nDEF\r\n"), uint8(2), uint16(4), uint8(0), false, false, uint8(2))
	f.Add([]byte("]Q1HC1:ABC\n]Q\n"), uint8(1), uint16(8), uint8(5), true, true, uint8(3))
	f.Add([]byte("\r\r\n\n\x00\xff]\r"), uint8(2), uint16(1), uint8(1), true, true, uint8(0))
	f.Add(bytes.Repeat([]byte("x\r"), 300), uint8(0), uint16(3), uint8(2), false, true, uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8, maxFrame uint16, timeoutMs uint8, flush, aim bool, split uint8) {
		cfg := FramerConfig{
			Terminator:       Terminator(mode%3 + 1),
			MaxFrame:         int(maxFrame)%MaxFrameLimit + 1,
			InterByteTimeout: time.Duration(timeoutMs) * time.Millisecond,
			FlushPartial:     flush,
			StripAIM:         aim,
		}
		fr, err := NewFramer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		check := func(frames []Frame) {
			for _, fm := range frames {
				if len(fm.Data) > cfg.MaxFrame {
					t.Fatalf("frame of %d bytes over MaxFrame %d", len(fm.Data), cfg.MaxFrame)
				}
				if fm.Err == nil && (len(fm.Data) == 0 || terminates(cfg.Terminator, fm.Data)) {
					t.Fatalf("frame %q is empty or holds terminator %v", fm.Data, cfg.Terminator)
				}
			}
			if len(fr.buf) > cfg.MaxFrame {
				t.Fatalf("buffer of %d bytes over MaxFrame %d", len(fr.buf), cfg.MaxFrame)
			}
		}
		// Feed in chunks, one millisecond apart, so timeouts happen.
		n := int(split) + 1
		var chunked []Frame
		at := t0
		for rest := data; len(rest) > 0; {
			c := rest[:min(n, len(rest))]
			rest = rest[len(c):]
			got := fr.Feed(c, at)
			check(got)
			chunked = append(chunked, got...)
			at = at.Add(time.Millisecond)
			check(fr.Tick(at))
		}
		check(fr.Flush())
		if cfg.InterByteTimeout != 0 {
			return
		}
		// Without timeouts, how the bytes are split must not matter.
		whole, err := NewFramer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		all := whole.Feed(data, t0)
		if got, want := fmt.Sprint(show(chunked)), fmt.Sprint(show(all)); got != want {
			t.Fatalf("chunks of %d gave %s; all at once gave %s", n, got, want)
		}
	})
}

func BenchmarkFramer(b *testing.B) {
	frame := append([]byte("]Q1HC1:"), bytes.Repeat([]byte("6BFOXN*TS0BI$ZD"), 20)...)
	frame = append(frame, '\r')
	f, err := NewFramer(FramerConfig{StripAIM: true, InterByteTimeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if got := f.Feed(frame, t0); len(got) != 1 {
			b.Fatalf("Feed = %d frames; want 1", len(got))
		}
	}
}
