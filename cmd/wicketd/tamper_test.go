package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"wicket/cmd/wicketd/config"
	"wicket/cmd/wicketd/display"
	"wicket/cmd/wicketd/loop"
	"wicket/device/gate/gatetest"
	"wicket/internal/testkit"
	"wicket/sync/store"
	"wicket/sync/store/storetest"
)

// TestTamperAlert: with turnstile.tamper set, opening the enclosure is an
// ALERT in the log, an alert record (so it goes to the fleet's alert
// topic) and wicket_tamper_active 1; closing it records tamper_cleared
// and sets the gauge to 0.
func TestTamperAlert(t *testing.T) {
	st := storetest.Open(t, store.Options{LockTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)})
	pin := gatetest.NewPolledIn("GPIO22", nil)
	defer func(f func(string) gpio.PinIO) { lookupPin = f }(lookupPin)
	lookupPin = func(name string) gpio.PinIO {
		if name == "GPIO22" {
			return pin
		}
		return nil
	}
	const opened, closed = `"msg":"ALERT","reason":"tamper"`, `"msg":"tamper cleared`
	logs := &testkit.Buffer{}
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
	wait := func(what, notYet string) {
		t.Helper()
		testkit.Eventually(t, "log line "+what, 10*time.Second, func() bool { return strings.Contains(logs.String(), what) })
		if notYet != "" && strings.Contains(logs.String(), notYet) {
			t.Fatalf("log has %q before it should:\n%s", notYet, logs.String())
		}
	}

	pin.Set(gpio.High)
	wait(opened, closed)
	if m := metric(); m != "wicket_tamper_active 1" {
		t.Errorf("metric with the enclosure open: %s; want wicket_tamper_active 1", m)
	}
	evs := allEvents(t, st)
	if len(evs) != 1 || evs[0].Type != store.TypeAlert || evs[0].Reason != "tamper" || !loop.IsAlert(evs[0]) {
		t.Fatalf("records after the enclosure opened = %+v; want one tamper alert", evs)
	}
	pin.Set(gpio.Low)
	wait(closed, "")
	if n := strings.Count(logs.String(), opened); n != 1 {
		t.Errorf("%d tamper ALERT lines for one opening; want 1", n)
	}
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
