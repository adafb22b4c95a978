package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/sync/store"
)

// TestSerialBurstBehindTurnstile runs wicketd with a serial scanner on a
// pseudo-terminal and writes one green and eight yellow valid codes in one
// write: the green one waits for the turnstile while the scan queue fills
// behind it. Every code must be decided whole (ok, then colour_yellow
// eight times): none cut in two by the inter-byte timeout into a dropped
// partial frame and a bad_prefix decision.
func TestSerialBurstBehindTurnstile(t *testing.T) {
	skipUnlessSelfExec(t)
	dir := t.TempDir()
	cfgPath, f := gateFiles(t, dir)
	scanner := serialScanner(t, cfgPath)
	codes := make([]string, 9)
	for i := range codes {
		c := f.Claims(decoder.KindPrinted)
		c.ID = fmt.Appendf(nil, "burst-voucher-%02d", i)
		if i > 0 {
			c.Voucher.Colour = decoder.ColourYellow
		}
		codes[i] = f.Issue(t, f.Ed, c)
	}

	cmd := selfExec("run", "-config", cfgPath)
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	msgs := make(chan string, 64)
	go func() {
		defer close(msgs)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Msg string }
			if json.Unmarshal(sc.Bytes(), &line) == nil {
				msgs <- line.Msg
			}
		}
	}()
	await := func(what string, n int) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for n > 0 {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("wicketd ended before %s", what)
				}
				if m == what {
					n--
				}
			case <-deadline:
				t.Fatalf("no %q log line from wicketd within 20s", what)
			}
		}
	}
	await("device connected", 1)
	if _, err := scanner.WriteString(strings.Join(codes, "\r") + "\r"); err != nil {
		t.Fatal(err)
	}
	await("decision", len(codes))
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("wicketd after SIGTERM: %v", err)
	}

	st, err := store.OpenReadOnly(filepath.Join(dir, "wicket.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var reasons []string
	for _, ev := range allEvents(t, st) {
		if ev.Type == "decision" {
			reasons = append(reasons, ev.Reason)
		}
	}
	want := "ok" + strings.Repeat(" colour_yellow", 8)
	if got := strings.Join(reasons, " "); got != want {
		t.Errorf("decisions %q; want %q", got, want)
	}
}
