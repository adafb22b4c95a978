package device

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/internal/testkit"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// wrongBaud returns n bytes like a UART reading a scanner at the wrong
// line speed: random values, framing-error NULs, high-bit bytes, and CR
// or LF only where term allows them.
func wrongBaud(rng *rand.Rand, n int, term bool) []byte {
	b := make([]byte, n)
	for i := range b {
		switch rng.IntN(8) {
		case 0:
			b[i] = 0x00
		case 1:
			b[i] = 0x80 | byte(rng.IntN(128))
		default:
			b[i] = byte(rng.IntN(256))
		}
		if !term && (b[i] == '\r' || b[i] == '\n') {
			b[i] = 0xfe
		}
	}
	return b
}

// TestSerialGarbageAtWrongBaud feeds a pseudo-terminal source what a
// scanner sends when the line speed is wrong: random bytes with and
// without terminators and a long line with none. Every frame that comes
// out is bounded and is denied by the verifier with a format reason; the
// rest is dropped and counted. A valid code afterwards is delivered intact
// and allowed.
func TestSerialGarbageAtWrongBaud(t *testing.T) {
	const maxFrame = 1024
	h := startSerial(t, SerialConfig{Terminator: TerminatorCR, MaxFrame: maxFrame, InterByteTimeout: 100 * time.Millisecond})
	f := verifiertest.New(t)
	rng := rand.New(rand.NewPCG(1, 2))

	// No terminator: the partial frame is dropped after the inter-byte
	// timeout.
	h.port.write(string(wrongBaud(rng, 200, false)))
	waitStats(t, h.src, func(s SerialStats) bool { return s.Partial >= 1 })
	// A long line with no terminator, in bursts: dropped as too long once,
	// and the framer resyncs on the silence after it.
	for range 8 {
		h.port.write(string(wrongBaud(rng, 512, false)))
	}
	waitStats(t, h.src, func(s SerialStats) bool { return s.TooLong >= 1 })
	// Garbage with terminators: whatever frames come out are decided and
	// denied with a reason that names the format.
	var sent int
	for range 20 {
		b := wrongBaud(rng, 1+rng.IntN(120), true)
		b = append(b, '\r')
		sent += bytes.Count(b, []byte{'\r'})
		h.port.write(string(b))
	}
	time.Sleep(300 * time.Millisecond) // past the inter-byte timeout: no partial frame left
	code := f.Issue(t, f.Ed, f.Claims(decoder.KindPrinted))
	h.port.write(code + "\r")

	formatReasons := map[verifier.Reason]bool{
		verifier.ReasonEmpty: true, verifier.ReasonBadPrefix: true, verifier.ReasonTooLong: true,
		verifier.ReasonBadBase45: true, verifier.ReasonTooLarge: true, verifier.ReasonBadZlib: true,
	}
	garbage := 0
	deadline := time.After(patience)
	for {
		var s Scan
		select {
		case s = <-h.scans:
		case <-deadline:
			t.Fatalf("the valid code never came through after %d garbage frames; stats %+v", garbage, h.src.Stats())
		}
		if len(s.Payload) == 0 || len(s.Payload) > maxFrame || bytes.ContainsRune(s.Payload, '\r') {
			t.Errorf("frame of %d bytes %q: want 1 to %d bytes without a terminator", len(s.Payload), s.Payload, maxFrame)
		}
		d := f.Verifier.Verify(s.Payload)
		if string(s.Payload) == code {
			if !d.Allow {
				t.Errorf("the valid code after the garbage: %s (%s); want allowed", d.Reason, d.Detail)
			}
			break
		}
		garbage++
		if d.Allow || !formatReasons[d.Reason] {
			t.Errorf("garbage frame %q: allow %v reason %s; want a format denial", s.Payload, d.Allow, d.Reason)
		}
	}
	st := h.src.Stats()
	if garbage == 0 || garbage > sent {
		t.Errorf("%d garbage frames delivered for %d terminators sent", garbage, sent)
	}
	if !st.Connected || st.Disconnects != 0 {
		t.Errorf("Stats() = %+v; want connected, no disconnects", st)
	}
	if st.Frames != uint64(garbage)+1 {
		t.Errorf("Stats().Frames = %d; want the %d garbage frames and the code", st.Frames, garbage)
	}
}

// waitStats waits until the source's counters satisfy ok.
func waitStats(t *testing.T, src *SerialSource, ok func(SerialStats) bool) {
	t.Helper()
	testkit.Eventually(t, "the source's counters", patience, func() bool { return ok(src.Stats()) })
}
