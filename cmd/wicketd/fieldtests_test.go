package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"periph.io/x/conn/v3/gpio"

	"wicket/device/gate/gatetest"
)

// TestFeedbackConfirmed: test-feedback plays each output alone and in
// turn, asks after each, and fails naming the output the technician did
// not see, with the fix.
func TestFeedbackConfirmed(t *testing.T) {
	dir := t.TempDir()
	cfgPath, _ := gateFiles(t, dir)
	var out strings.Builder
	rc := dispatch(context.Background(), []string{"test-feedback", cfgPath}, strings.NewReader("y\nn\nyes\n"), &out, &out)
	got := out.String()
	if rc != exitDenied {
		t.Errorf("test-feedback with one output not seen = %d; want %d\n%s", rc, exitDenied, got)
	}
	order := []string{"green LED", "did the green LED light", "OK", "red LED", "did the red LED light", "FAILED", "feedback.red_led.active_low", "buzzer", "did the buzzer sound", "OK"}
	rest := got
	for _, w := range order {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("test-feedback says:\n%s\nwant, in order, %q", got, order)
		}
		rest = rest[i+len(w):]
	}
	if rc := dispatch(context.Background(), []string{"test-feedback", cfgPath}, strings.NewReader("y\ny\ny\n"), &out, &out); rc != exitOK {
		t.Errorf("test-feedback with every output seen = %d; want OK", rc)
	}
	if rc := dispatch(context.Background(), []string{"test-feedback", cfgPath}, strings.NewReader(""), &out, &out); rc != exitUsage {
		t.Errorf("test-feedback without answers = %d; want %d", rc, exitUsage)
	}
}

// TestInputsLive: test-inputs prints each change of the passage sensor,
// the emergency input and the tamper switch as it happens, honouring
// active_low, and says which input never changed.
func TestInputsLive(t *testing.T) {
	dir := t.TempDir()
	cfgPath, _ := gateFiles(t, dir)
	pins := map[string]*gatetest.In{}
	for name, l := range map[string]gpio.Level{"GPIO23": gpio.Low, "GPIO24": gpio.High, "GPIO22": gpio.High} {
		pins[name] = gatetest.NewIn(name, nil)
		pins[name].Set(l)
	}
	defer func(f func(string) gpio.PinIO) { lookupPin = f }(lookupPin)
	lookupPin = func(name string) gpio.PinIO {
		if p, ok := pins[name]; ok {
			return p
		}
		return nil
	}
	replaceSection(t, cfgPath, "turnstile:", "turnstile: {backend: gpio, relay: {name: GPIO17}, passage: {name: GPIO23}, emergency: {name: GPIO24, active_low: true}, tamper: {name: GPIO22}}\n")
	outR, outW := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- dispatch(context.Background(), []string{"test-inputs", "-for", "1s", cfgPath}, strings.NewReader(""), outW, outW)
		outW.Close()
	}()
	var b strings.Builder
	for sc := bufio.NewScanner(outR); sc.Scan(); {
		b.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "watching") {
			// Someone walks through once, while it watches.
			go func() {
				pins["GPIO23"].EdgesChan <- gpio.High
				pins["GPIO23"].EdgesChan <- gpio.Low
			}()
			// The technician closes the open enclosure.
			go func() { pins["GPIO22"].EdgesChan <- gpio.Low }()
		}
	}
	got := b.String()
	if rc := <-done; rc != exitOK {
		t.Fatalf("test-inputs = %d\n%s", rc, got)
	}
	for _, w := range []string{
		"passage sensor  GPIO23 (active-high): inactive",
		"emergency input GPIO24 (active-low): inactive",
		"s  passage sensor  ACTIVE",
		"s  passage sensor  inactive",
		"passage sensor  2 changes",
		"tamper switch   GPIO22 (active-high): ACTIVE",
		"s  tamper switch   inactive",
		"tamper switch   1 changes",
		"emergency input no change seen: if you triggered it, check its wiring and turnstile.emergency's active_low",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("test-inputs says:\n%s\nwant %q", got, w)
		}
	}
	replaceSection(t, cfgPath, "turnstile:", "turnstile: {backend: gpio, relay: {name: GPIO17}, passage: {name: GPIO5}}\n")
	var out strings.Builder
	if rc := dispatch(context.Background(), []string{"test-inputs", "-for", "1s", cfgPath}, strings.NewReader(""), &out, &out); rc != exitUsage || !strings.Contains(out.String(), `turnstile.passage.name "GPIO5": no such GPIO`) {
		t.Errorf("test-inputs with a pin the board lacks = %d\n%s", rc, out.String())
	}
}

// replaceSection replaces the config line that starts with prefix (a
// one-line section, as gateFiles writes them) by line.
func replaceSection(t *testing.T, path, prefix, line string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(string(raw), "\n") {
		if strings.HasPrefix(l, prefix) {
			l = line
		}
		b.WriteString(l)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
