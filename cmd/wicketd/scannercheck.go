package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/tarm/serial"

	"wicket/cmd/wicketd/config"
	"wicket/decoder"
	"wicket/device"
	"wicket/verifier"
)

// rawFrame is what the scanner sent for one code, as test-scanner reads
// it: the bytes and the terminator that ended them ("" when the line went
// quiet without one).
type rawFrame struct {
	data []byte
	term string
}

// splitFrames cuts buf at every CR, LF or CR LF. With flush (the line went
// quiet), what is left is a frame without a terminator; otherwise it is
// returned as rest to wait for more bytes.
func splitFrames(buf []byte, flush bool) (frames []rawFrame, rest []byte) {
	for {
		i := bytes.IndexAny(buf, "\r\n")
		if i < 0 || (buf[i] == '\r' && i == len(buf)-1 && !flush) {
			break
		}
		f := rawFrame{data: bytes.Clone(buf[:i]), term: "lf"}
		n := i + 1
		if buf[i] == '\r' {
			f.term = "cr"
			if i+1 < len(buf) && buf[i+1] == '\n' {
				f.term, n = "crlf", i+2
			}
		}
		frames = append(frames, f)
		buf = buf[n:]
	}
	if flush && len(buf) > 0 {
		frames = append(frames, rawFrame{data: bytes.Clone(buf)})
		buf = nil
	}
	return frames, buf
}

// aimID matches an AIM symbology identifier: ] then a code letter and a
// modifier (]Q1 for QR Code).
var aimID = regexp.MustCompile(`^\][A-Za-z][0-9A-Za-z]`)

// base45 is the alphabet of the code after its prefix.
const base45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

// judgeFrame says whether a frame is a code the gate can read as the
// scanner is set up, and if not, which setting to change. verdict starts
// "OK" when the frame would reach the verifier intact.
func judgeFrame(f rawFrame, s config.Scanner) (verdict, fix string) {
	for _, b := range f.data {
		if b < 0x20 || b > 0x7e {
			return "unreadable bytes (garbage)", fmt.Sprintf("the scanner's baud rate is not %d (scanner.baud): set the scanner and scanner.baud to the same rate", s.Baud)
		}
	}
	term := s.Terminator.String()
	switch {
	case f.term == "":
		return "no terminator: the code was not ended", fmt.Sprintf("set the scanner's suffix to %s (scanner.terminator: %s)", strings.ToUpper(term), term)
	case f.term != term && !(term == "cr" && f.term == "crlf"):
		return fmt.Sprintf("ends with %s, but scanner.terminator is %s", strings.ToUpper(f.term), term),
			fmt.Sprintf("set scanner.terminator: %s, or the scanner's suffix to %s", f.term, strings.ToUpper(term))
	}
	text := string(f.data)
	if aim := aimID.FindString(text); aim != "" {
		if !s.StripAIM {
			return fmt.Sprintf("AIM symbology identifier %s in front of the code", aim), "turn the scanner's AIM identifier off, or set scanner.strip_aim: true"
		}
		text = text[len(aim):]
	}
	switch {
	case text == "":
		return "empty frame", "the scanner sent only a terminator: check its prefix/suffix settings"
	case strings.HasPrefix(text, decoder.Prefix) && strings.Trim(text[len(decoder.Prefix):], base45) == "":
		return "OK: a Wicket code, intact", ""
	case strings.HasPrefix(swapCase(text), decoder.Prefix) && strings.Trim(swapCase(text)[len(decoder.Prefix):], base45) == "":
		return "letters arrive with their case flipped", "turn case conversion off on the scanner (it makes every code bad_prefix)"
	case strings.HasPrefix(text, decoder.Prefix):
		return "a Wicket code with characters outside its alphabet", "the code is damaged, or the scanner changes characters (keyboard layout, case conversion)"
	case strings.Contains(text, decoder.Prefix):
		return fmt.Sprintf("%q in front of the code", text[:strings.Index(text, decoder.Prefix)]), "turn the scanner's prefix off"
	}
	return "not a Wicket code", "scan a voucher; if this was one, check the scanner's prefix, suffix and case settings"
}

// swapCase turns upper-case ASCII letters to lower case and back.
func swapCase(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return r
	}, s)
}

// scannerQuiet is how long the line must be idle for test-scanner to take
// bytes without a terminator as a frame of their own.
const scannerQuiet = 300 * time.Millisecond

// diagnoseSerial reads the serial scanner raw and prints a verdict and the
// fix for each frame, until ctx ends or max frames (0: no limit). It holds
// the port's lock, and refuses while the gate holds it.
func diagnoseSerial(ctx context.Context, cfg *config.Config, v *verifier.Verifier, max int, stdout, stderr io.Writer) int {
	s := cfg.Scanner
	lock, err := device.LockPort(s.Device)
	if errors.Is(err, device.ErrPortBusy) {
		fmt.Fprintf(stderr, "wicketd test-scanner: wicketd is running and holds %s; stop it first: systemctl stop wicketd\n", s.Device)
		return exitDenied
	}
	if err != nil {
		fmt.Fprintf(stderr, "wicketd test-scanner: scanner.device: %v\n", err)
		return exitUsage
	}
	defer lock.Close()
	port, err := serial.OpenPort(&serial.Config{Name: s.Device, Baud: s.Baud, ReadTimeout: 100 * time.Millisecond})
	if err != nil {
		fmt.Fprintf(stderr, "wicketd test-scanner: scanner.device: %v\n", err)
		return exitUsage
	}
	defer port.Close()
	fmt.Fprintf(stdout, "reading %s at %d baud (terminator %s, strip_aim %v); scan codes, Ctrl-C to stop\n", s.Device, s.Baud, s.Terminator, s.StripAIM)
	var buf []byte
	last := time.Now()
	n := 0
	chunk := make([]byte, 4096)
	for ctx.Err() == nil && (max == 0 || n < max) {
		k, err := port.Read(chunk)
		if err != nil && !errors.Is(err, io.EOF) {
			fmt.Fprintf(stderr, "wicketd test-scanner: read %s: %v\n", s.Device, err)
			return exitDenied
		}
		if k > 0 {
			buf, last = append(buf, chunk[:k]...), time.Now()
		}
		var frames []rawFrame
		frames, buf = splitFrames(buf, len(buf) > 0 && time.Since(last) >= scannerQuiet)
		for _, f := range frames {
			if max != 0 && n >= max {
				break
			}
			n++
			printVerdict(stdout, n, f, cfg.Scanner, v)
		}
	}
	return exitOK
}

func printVerdict(w io.Writer, n int, f rawFrame, s config.Scanner, v *verifier.Verifier) {
	term := strings.ToUpper(f.term)
	if term == "" {
		term = "none"
	}
	fmt.Fprintf(w, "%3d  %d bytes, terminator %s  %s\n", n, len(f.data), term, device.HexDump(f.data))
	verdict, fix := judgeFrame(f, s)
	fmt.Fprintf(w, "     verdict: %s\n", verdict)
	if fix != "" {
		fmt.Fprintf(w, "     fix:     %s\n", fix)
		return
	}
	if v != nil {
		text := f.data
		if s.StripAIM {
			text = []byte(strings.TrimPrefix(string(text), aimID.FindString(string(text))))
		}
		d := v.Verify(text)
		fmt.Fprintf(w, "     decision (without this gate's revocations): allow %v, %s\n", d.Allow, d.Reason)
	}
}
