package device

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/creack/pty"

	"wicket/decoder"
	"wicket/device/internal/logtest"
	"wicket/internal/testkit"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// testLogger writes the source's log lines to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fakePort is a pseudo-terminal pair standing in for a USB scanner: the
// source opens the slave side through a symlink, as it would a
// /dev/serial/by-id link, and the test writes to the master side.
type fakePort struct {
	t      *testing.T
	link   string
	master *os.File
	tty    *os.File
}

func newFakePort(t *testing.T) *fakePort {
	p := &fakePort{t: t, link: filepath.Join(t.TempDir(), "usb-Wicket_Test_Scanner-if00")}
	p.plug()
	t.Cleanup(p.unplug)
	return p
}

// plug makes a new pty pair and points the link at its slave, replacing
// any previous link in one rename.
func (p *fakePort) plug() {
	p.t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		p.t.Skipf("no pseudo-terminals here: %v", err)
	}
	p.master, p.tty = master, tty
	tmp := p.link + ".new"
	if err := os.Symlink(tty.Name(), tmp); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Rename(tmp, p.link); err != nil {
		p.t.Fatal(err)
	}
}

// unplug closes both sides, so the source's reads fail.
func (p *fakePort) unplug() {
	if p.master != nil {
		p.master.Close()
		p.tty.Close()
		p.master, p.tty = nil, nil
	}
}

func (p *fakePort) write(s string) {
	p.t.Helper()
	if _, err := p.master.Write([]byte(s)); err != nil {
		p.t.Fatalf("write to pty: %v", err)
	}
}

type state struct {
	connected bool
	err       error
}

// harness runs a SerialSource on a fakePort.
type harness struct {
	t      *testing.T
	port   *fakePort
	src    *SerialSource
	scans  chan Scan
	states chan state
	done   chan error
	log    *testkit.Buffer // the source's log, JSON lines scoped component=scanner
}

func startSerial(t *testing.T, cfg SerialConfig) *harness {
	t.Helper()
	return startSerialQueue(t, cfg, 16)
}

// startSerialQueue is startSerial with a scan channel of queue slots.
func startSerialQueue(t *testing.T, cfg SerialConfig, queue int) *harness {
	t.Helper()
	h := &harness{
		t:      t,
		port:   newFakePort(t),
		scans:  make(chan Scan, queue),
		states: make(chan state, 64),
		done:   make(chan error, 1),
	}
	cfg.Device = h.port.link
	if cfg.RetryMin == 0 {
		cfg.RetryMin, cfg.RetryMax = 10*time.Millisecond, 50*time.Millisecond
	}
	log, buf := jsonLogger("scanner")
	h.log = buf
	src, err := NewSerialSource(cfg, SourceOptions{
		Logger:  log,
		OnState: func(c bool, err error) { h.states <- state{c, err} },
	})
	if err != nil {
		t.Fatal(err)
	}
	h.src = src
	ctx, cancel := context.WithCancel(context.Background())
	go func() { h.done <- src.Run(ctx, h.scans) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("Run() = %v; want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
		if t.Failed() {
			t.Logf("source log:\n%s", h.log)
		}
	})
	h.wantState(true)
	return h
}

const patience = 5 * time.Second

func (h *harness) wantState(connected bool) state {
	h.t.Helper()
	select {
	case s := <-h.states:
		if s.connected != connected {
			h.t.Fatalf("OnState(%v, %v); want connected=%v", s.connected, s.err, connected)
		}
		return s
	case <-time.After(patience):
		h.t.Fatalf("no OnState(%v) within %v", connected, patience)
	}
	return state{}
}

func (h *harness) wantScans(want ...string) {
	h.t.Helper()
	for _, w := range want {
		select {
		case s := <-h.scans:
			if string(s.Payload) != w {
				h.t.Errorf("scan %q; want %q", s.Payload, w)
			}
			if s.Source != h.port.link || s.At.IsZero() {
				h.t.Errorf("scan Source %q At %v; want %q and a time", s.Source, s.At, h.port.link)
			}
		case <-time.After(patience):
			h.t.Fatalf("no scan %q within %v", w, patience)
		}
	}
}

func TestSerialTerminators(t *testing.T) {
	for _, tt := range []struct {
		term Terminator
		in   string
		want []string
	}{
		{TerminatorCR, "HC1:ONE\rHC1:TWO\r", []string{"HC1:ONE", "HC1:TWO"}},
		{TerminatorCR, "HC1:ONE\r\nHC1:TWO\r\n", []string{"HC1:ONE", "HC1:TWO"}},
		{TerminatorLF, "HC1:ONE\nHC1:TWO\n", []string{"HC1:ONE", "HC1:TWO"}},
		{TerminatorCRLF, "HC1:ONE\r\nHC1:T\rWO\r\n", []string{"HC1:ONE", "HC1:T\rWO"}},
	} {
		t.Run(tt.term.String(), func(t *testing.T) {
			h := startSerial(t, SerialConfig{Terminator: tt.term})
			h.port.write(tt.in)
			h.wantScans(tt.want...)
		})
	}
}

func TestSerialPartialAndGarbage(t *testing.T) {
	h := startSerial(t, SerialConfig{Terminator: TerminatorCR, StripAIM: true, MaxFrame: 16})
	h.port.write("]Q1HC1:")
	h.port.write("SPLIT")
	h.port.write("\r\x00\xff\x1b[2J\r")
	h.port.write("0123456789ABCDEFG-too-long\rOK\r")
	h.wantScans("HC1:SPLIT", "\x00\xff\x1b[2J", "OK")
	if st := h.src.Stats(); st.Frames != 3 || st.TooLong != 1 || !st.Connected {
		t.Errorf("Stats() = %+v; want 3 frames, 1 too long, connected", st)
	}
}

func TestSerialInterByteTimeout(t *testing.T) {
	h := startSerial(t, SerialConfig{InterByteTimeout: 150 * time.Millisecond, FlushPartial: true})
	h.port.write("NO-TERMINATOR")
	h.wantScans("NO-TERMINATOR")
	if st := h.src.Stats(); st.Flushed != 1 {
		t.Errorf("Stats().Flushed = %d; want 1", st.Flushed)
	}
}

func TestSerialUnplugReplug(t *testing.T) {
	h := startSerial(t, SerialConfig{})
	h.port.write("BEFORE\r")
	h.wantScans("BEFORE")

	h.port.unplug()
	s := h.wantState(false)
	if !errors.Is(s.err, ErrDisconnected) {
		t.Errorf("OnState(false, %v); want an error wrapping ErrDisconnected", s.err)
	}
	if st := h.src.Stats(); st.Disconnects != 1 || st.Connected {
		t.Errorf("Stats() = %+v; want 1 disconnect, not connected", st)
	}

	h.port.plug()
	h.wantState(true)
	h.port.write("AFTER\r")
	h.wantScans("AFTER")

	// One line per change of state, each naming the device once and the
	// component once.
	var changes []string
	for _, l := range logtest.Lines(t, h.log.String()) {
		if l["component"] != "scanner" || l["device"] != h.port.link {
			t.Errorf("log line %v: want component scanner, device %s", l, h.port.link)
		}
		if l["level"] != "DEBUG" {
			changes = append(changes, l["msg"].(string))
		}
	}
	want := []string{"device connected", "device lost; reconnecting", "device connected"}
	if !slices.Equal(changes, want) {
		t.Errorf("log above debug = %q; want %q", changes, want)
	}
}

// TestSerialMissingDeviceRetries runs a source on a path with no device
// for three seconds of a synctest bubble's clock: it reports the device
// unavailable once, then retries with growing waits within the jitter.
func TestSerialMissingDeviceRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		var states []state
		log, buf := jsonLogger("scanner")
		src, err := NewSerialSource(SerialConfig{
			Device:   filepath.Join(t.TempDir(), "absent"),
			RetryMin: 100 * time.Millisecond,
			RetryMax: 400 * time.Millisecond,
		}, SourceOptions{
			Logger:  log,
			OnState: func(c bool, err error) { states = append(states, state{c, err}) },
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Run(ctx, make(chan Scan)); err != nil {
			t.Fatalf("Run() = %v; want nil", err)
		}
		if len(states) != 1 || states[0].connected || !errors.Is(states[0].err, os.ErrNotExist) {
			t.Errorf("OnState calls = %v; want one (false, not exist)", states)
		}
		var waits []time.Duration
		for i, l := range logtest.Lines(t, buf.String()) {
			if want := map[bool]string{true: "WARN", false: "DEBUG"}[i == 0]; l["level"] != want {
				t.Errorf("log line %d at %v; want %s", i, l["level"], want)
			}
			waits = append(waits, time.Duration(l["retry_in"].(float64)))
		}
		if len(waits) < 5 {
			t.Fatalf("%d attempts in 3s: %v; want 5 or more", len(waits), waits)
		}
		limits := []time.Duration{100, 200, 400}
		for i, d := range waits {
			hi := limits[min(i, len(limits)-1)] * time.Millisecond
			if d < hi/2 || d > hi {
				t.Errorf("wait #%d = %v; want within [%v, %v]", i, d, hi/2, hi)
			}
		}
	})
}

func TestSerialConfig(t *testing.T) {
	bad := []SerialConfig{
		{},
		{Device: "/dev/ttyACM0", Baud: 1234},
		{Device: "/dev/ttyACM0", Terminator: 7},
		{Device: "/dev/ttyACM0", MaxFrame: -1},
		{Device: "/dev/ttyACM0", ReadTimeout: time.Minute},
		{Device: "/dev/ttyACM0", RetryMin: time.Minute, RetryMax: time.Second},
	}
	for _, c := range bad {
		if _, err := NewSerialSource(c, SourceOptions{}); !errors.Is(err, ErrConfig) {
			t.Errorf("NewSerialSource(%+v) error = %v; want ErrConfig", c, err)
		}
	}
	if _, err := NewSerialSource(SerialConfig{Device: "/dev/ttyACM0", Baud: 115200}, SourceOptions{}); err != nil {
		t.Errorf("NewSerialSource(valid) = %v", err)
	}
}

// eofReader reads as a hung-up line does: end of file, at once, forever.
type eofReader struct{ n int }

func (r *eofReader) Read([]byte) (int, error) {
	r.n++
	return 0, io.EOF
}

func TestSerialHangUp(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "ttyACM0")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := NewSerialSource(SerialConfig{Device: dev}, SourceOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	r := &eofReader{}
	err = src.read(context.Background(), r, make(chan Scan))
	if !errors.Is(err, ErrDisconnected) || r.n != maxFastEOF {
		t.Errorf("read of a hung-up line = %v after %d reads; want ErrDisconnected after %d", err, r.n, maxFastEOF)
	}
}

func TestSerialDevicePathGone(t *testing.T) {
	src, err := NewSerialSource(SerialConfig{Device: filepath.Join(t.TempDir(), "gone")}, SourceOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	err = src.read(context.Background(), &eofReader{}, make(chan Scan))
	if !errors.Is(err, ErrDisconnected) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read with the device path gone = %v; want ErrDisconnected and ErrNotExist", err)
	}
}

// TestSerialBurstWhileBusy: one green and eight yellow valid codes come in
// one write while the gate's decision loop holds the first (an allowed
// scan waiting for the turnstile) and its scan queue of 4 fills up. The
// source then waits to hand on a scan with the next code half read, and
// the rest of that code waits in the kernel's buffer far longer than the
// inter-byte timeout. No code may split: all nine arrive whole and
// verify, none is dropped as a partial frame.
func TestSerialBurstWhileBusy(t *testing.T) {
	f := verifiertest.New(t)
	issue := func(i int, colour decoder.Colour) string {
		c := f.Claims(decoder.KindPrinted)
		c.ID = fmt.Appendf(nil, "voucher-burst-%02d", i)
		c.Voucher.Colour = colour
		return f.Issue(t, f.Ed, c)
	}
	codes := []string{issue(0, decoder.ColourGreen)}
	for i := 1; i <= 8; i++ {
		codes = append(codes, issue(i, decoder.ColourYellow))
	}
	const scanQueue = 4 // as in wicketd
	h := startSerialQueue(t, SerialConfig{InterByteTimeout: 200 * time.Millisecond}, scanQueue)
	h.port.write(strings.Join(codes, "\r") + "\r")

	for i, code := range codes {
		var s Scan
		select {
		case s = <-h.scans:
		case <-time.After(patience):
			t.Fatalf("scan %d of %d not delivered within %v; stats %+v", i+1, len(codes), patience, h.src.Stats())
		}
		if string(s.Payload) != code {
			t.Fatalf("scan %d = %.40q... (%d bytes); want code %d whole (%d bytes)", i+1, s.Payload, len(s.Payload), i+1, len(code))
		}
		want := verifier.ReasonColourYellow
		if i == 0 {
			want = verifier.ReasonOK
			// The turnstile: the loop takes no scan for five inter-byte
			// timeouts while the queue fills behind it.
			<-time.After(time.Second)
		}
		if d := f.Verifier.Verify(s.Payload); d.Reason != want {
			t.Errorf("scan %d: Verify = %s (%s); want %s", i+1, d.Reason, d.Detail, want)
		}
	}
	if st := h.src.Stats(); st.Frames != uint64(len(codes)) || st.Partial != 0 {
		t.Errorf("Stats() = %+v; want %d frames and no partial frame", st, len(codes))
	}
}

// TestSerialStallWhileBusy: a scanner that stops midway through a code
// while the loop is busy still has that partial frame dropped, once the
// source has listened for the inter-byte timeout; the next code is read
// on its own.
func TestSerialStallWhileBusy(t *testing.T) {
	h := startSerialQueue(t, SerialConfig{InterByteTimeout: 200 * time.Millisecond}, 1)
	h.port.write("FIRST\rSECOND\rHALF-A-CO")
	<-time.After(time.Second) // the loop is busy: FIRST waits in the queue, SECOND in the source
	h.wantScans("FIRST", "SECOND")
	testkit.Eventually(t, "the partial frame dropped", patience, func() bool { return h.src.Stats().Partial == 1 })
	h.port.write("NEXT\r")
	h.wantScans("NEXT")
}

// TestSerialPortLock: while a serial source holds the port, LockPort
// fails with ErrPortBusy, so a second reader (test-scanner) can't split
// its frames; once the source ends, the port is free again.
func TestSerialPortLock(t *testing.T) {
	master, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer master.Close()
	defer tty.Close()
	connected := make(chan bool, 8)
	src, err := NewSerialSource(SerialConfig{Device: tty.Name(), Terminator: TerminatorCR},
		SourceOptions{OnState: func(c bool, _ error) { connected <- c }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Scan, 1)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	for c := false; !c; {
		select {
		case c = <-connected:
		case <-time.After(10 * time.Second):
			t.Fatal("the source never opened the pseudo-terminal")
		}
	}
	if l, err := LockPort(tty.Name()); !errors.Is(err, ErrPortBusy) {
		if l != nil {
			l.Close()
		}
		t.Errorf("LockPort while the source reads = %v; want ErrPortBusy", err)
	}
	cancel()
	<-done
	l, err := LockPort(tty.Name())
	if err != nil {
		t.Fatalf("LockPort after the source ended = %v; want the lock", err)
	}
	l.Close()
}
