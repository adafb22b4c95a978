package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"wicket/cmd/wicketd/config"
	"wicket/decoder"
	"wicket/device"
)

// TestScannerVerdicts runs test-scanner on a real pseudo-terminal and
// sends it what misconfigured scanners send: each frame gets its verdict
// and the setting to change.
func TestScannerVerdicts(t *testing.T) {
	dir := t.TempDir()
	cfgPath, f := gateFiles(t, dir)
	master := serialScanner(t, cfgPath)
	code := f.Issue(t, f.Ed, f.Claims(decoder.KindPrinted))
	frames := []struct{ send, want string }{
		{code + "\r", "verdict: OK: a Wicket code, intact"},
		{"]Q1" + code + "\r", "fix:     turn the scanner's AIM identifier off, or set scanner.strip_aim: true"},
		{swapCase(code) + "\r", "fix:     turn case conversion off on the scanner"},
		{code + "\n", "fix:     set scanner.terminator: lf, or the scanner's suffix to CR"},
		{"\xf0\x8c\xfe\x01\x9a\r", "fix:     the scanner's baud rate is not 9600 (scanner.baud)"},
		{code, "fix:     set the scanner's suffix to CR (scanner.terminator: cr)"},
	}
	outR, outW := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- dispatch(context.Background(), []string{"test-scanner", "-n", "6", cfgPath}, strings.NewReader(""), outW, outW)
		outW.Close()
	}()
	lines := bufio.NewScanner(outR)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "reading ") {
		t.Fatalf("test-scanner first line = %q; want it reading", lines.Text())
	}
	var out strings.Builder
	go func() {
		for _, fr := range frames {
			master.Write([]byte(fr.send))
			time.Sleep(scannerQuiet / 3) // a person scanning, one code at a time
		}
	}()
	for lines.Scan() {
		out.WriteString(lines.Text() + "\n")
	}
	if rc := <-done; rc != exitOK {
		t.Fatalf("test-scanner = %d\n%s", rc, out.String())
	}
	got := out.String()
	for i, fr := range frames {
		n := strings.Index(got, fr.want)
		if n < 0 {
			t.Errorf("frame %d: test-scanner says:\n%s\nwant %q", i+1, out.String(), fr.want)
			continue
		}
		got = got[n+len(fr.want):]
	}
}

// TestScannerRefusedWhileGateHoldsPort: test-scanner does not share the
// port with a running gate; it says what to do.
func TestScannerRefusedWhileGateHoldsPort(t *testing.T) {
	dir := t.TempDir()
	cfgPath, _ := gateFiles(t, dir)
	master, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer master.Close()
	defer tty.Close()
	raw, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, []byte(strings.Replace(string(raw), "scanner: {type: stdin, hold_off: 0s}", "scanner: {type: serial, device: "+tty.Name()+"}", 1)), 0o644)
	lock, err := device.LockPort(tty.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	var out strings.Builder
	rc := dispatch(context.Background(), []string{"test-scanner", "-n", "1", cfgPath}, strings.NewReader(""), &out, &out)
	want := "wicketd is running and holds " + tty.Name() + "; stop it first: systemctl stop wicketd"
	if rc != exitDenied || !strings.Contains(out.String(), want) {
		t.Errorf("test-scanner while the port is held = %d, %s; want %q", rc, out.String(), want)
	}
}

// FuzzSplitFrames: splitting never loses or adds a byte other than the
// terminators, and judging any frame gives a verdict without panicking.
func FuzzSplitFrames(f *testing.F) {
	for _, s := range []string{"WK1:ABC\r", "]Q1WK1:ABC\r\n", "abc", "\r\r\n\n", "\xff\x00"} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, buf []byte, flush bool) {
		frames, rest := splitFrames(buf, flush)
		termLen := map[string]int{"": 0, "cr": 1, "lf": 1, "crlf": 2}
		n := len(rest)
		for _, fr := range frames {
			n += len(fr.data) + termLen[fr.term]
			if v, _ := judgeFrame(fr, config.Scanner{Terminator: device.TerminatorCR, Baud: 9600}); v == "" {
				t.Errorf("judgeFrame(%q) = no verdict", fr.data)
			}
		}
		if n != len(buf) {
			t.Errorf("splitFrames(%q) accounts for %d bytes; want %d", buf, n, len(buf))
		}
		if flush && len(rest) != 0 {
			t.Errorf("splitFrames(%q, flush) left %q", buf, rest)
		}
	})
}
