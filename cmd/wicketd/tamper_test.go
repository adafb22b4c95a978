package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"wicket/cmd/wicketd/config"
	"wicket/cmd/wicketd/display"
	"wicket/cmd/wicketd/loop"
	"wicket/sync/store"
)

// lineSignal keeps the log and sends each line containing want on ch.
type lineSignal struct {
	mu   sync.Mutex
	b    strings.Builder
	want []string
	ch   chan string
}

func (l *lineSignal) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	for _, w := range l.want {
		if strings.Contains(string(p), w) {
			l.ch <- w
		}
	}
	return len(p), nil
}

// TestTamperAlert: with turnstile.tamper set, opening the enclosure is an
// ALERT in the log, an alert record (so it goes to the fleet's alert
// topic) and wicket_tamper_active 1; closing it records tamper_cleared
// and sets the gauge to 0.
func TestTamperAlert(t *testing.T) {
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "wicket.db"), LockTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pin := &gpiotest.Pin{N: "GPIO22", L: gpio.Low}
	defer func(f func(string) gpio.PinIO) { lookupPin = f }(lookupPin)
	lookupPin = func(name string) gpio.PinIO {
		if name == "GPIO22" {
			return pin
		}
		return nil
	}
	const opened, closed = `"msg":"ALERT","reason":"tamper"`, `"msg":"tamper cleared`
	logs := &lineSignal{want: []string{opened, closed}, ch: make(chan string, 4)}
	cfg := &config.Config{}
	cfg.Turnstile.Backend = "gpio"
	cfg.Turnstile.Tamper.Name = "GPIO22"
	log := slog.New(slog.NewJSONHandler(logs, nil))
	d := &daemon{cfg: cfg, st: st, id: "G1", venue: "V1", log: log, disp: display.New(display.Config{}, log)}
	metric := func() string {
		var b strings.Builder
		d.disp.Metrics().WriteTo(&b)
		for _, line := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(line, "wicket_tamper_active ") {
				return line
			}
		}
		return "(none)"
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.watchTamper(ctx, d.cfg.Turnstile) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watchTamper = %v", err)
		}
	}()
	wait := func(what string) {
		t.Helper()
		select {
		case got := <-logs.ch:
			if got != what {
				t.Fatalf("log line %q; want %q", got, what)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no log line %q", what)
		}
	}

	pin.Out(gpio.High)
	wait(opened)
	if m := metric(); m != "wicket_tamper_active 1" {
		t.Errorf("metric with the enclosure open: %s; want wicket_tamper_active 1", m)
	}
	evs := allEvents(t, st)
	if len(evs) != 1 || evs[0].Type != store.TypeAlert || evs[0].Reason != "tamper" || !loop.IsAlert(evs[0]) {
		t.Fatalf("records after the enclosure opened = %+v; want one tamper alert", evs)
	}
	pin.Out(gpio.Low)
	wait(closed)
	if m := metric(); m != "wicket_tamper_active 0" {
		t.Errorf("metric with the enclosure closed: %s; want wicket_tamper_active 0", m)
	}
	evs = allEvents(t, st)
	if len(evs) != 2 || evs[1].Reason != "tamper_cleared" || loop.IsAlert(evs[1]) {
		t.Errorf("records after the enclosure closed = %+v; want tamper_cleared, not an alert", evs)
	}
}

// TestTamperPinMissing: a tamper pin the board lacks stops the daemon as
// a setup error naming the field.
func TestTamperPinMissing(t *testing.T) {
	defer func(f func(string) gpio.PinIO) { lookupPin = f }(lookupPin)
	lookupPin = func(string) gpio.PinIO { return nil }
	cfg := &config.Config{}
	cfg.Turnstile.Backend = "gpio"
	cfg.Turnstile.Tamper.Name = "GPIO22"
	d := &daemon{cfg: cfg, log: slog.New(slog.DiscardHandler)}
	err := d.watchTamper(context.Background(), cfg.Turnstile)
	if err == nil || !strings.Contains(err.Error(), `turnstile.tamper.name "GPIO22"`) {
		t.Errorf("watchTamper with the pin missing = %v; want a setup error naming turnstile.tamper.name", err)
	}
}
