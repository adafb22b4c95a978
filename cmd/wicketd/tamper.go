package main

import (
	"context"
	"fmt"

	"periph.io/x/host/v3"

	"wicket/cmd/wicketd/config"
	"wicket/device/gate"
)

// watchTamper watches the enclosure's tamper switch (tc.Tamper on the
// gpio backend) until ctx ends; tamperChanged hears each change. tc is the
// config it started with: a reload replaces d.cfg, and a new tamper pin
// needs a restart.
// Without a tamper switch it returns nil at once. A pin the board lacks,
// or one that cannot be set up, is a setup error: the daemon stops rather
// than run with an enclosure it believes watched.
func (d *daemon) watchTamper(ctx context.Context, tc config.Turnstile) error {
	p := tc.Tamper
	if p.Name == "" || tc.Backend != "gpio" {
		return nil
	}
	host.Init() // errors show as the pin not found, explained below
	pin := lookupPin(p.Name)
	if pin == nil {
		return fmt.Errorf("%w: turnstile.tamper.name %q: %s", errSetup, p.Name, noPinReason())
	}
	t, err := gate.NewTamper(pin, p.ActiveLow, d.tamperChanged, gate.Options{Logger: d.log.With("component", "gate")})
	if err != nil {
		return fmt.Errorf("%w: turnstile.tamper.name: %w", errSetup, err)
	}
	if d.disp != nil {
		d.disp.Metrics().SetTamper(false)
	}
	return t.Run(ctx)
}

// tamperChanged raises the tamper alert when the enclosure opens: an
// ALERT in the log, an alert record in the access log (sent to the fleet
// at once) and wicket_tamper_active 1. Closing it records tamper_cleared
// and sets the gauge to 0. Decisions go on either way.
func (d *daemon) tamperChanged(open bool) {
	if d.disp != nil {
		d.disp.Metrics().SetTamper(open)
	}
	if !open {
		d.system("tamper_cleared", "enclosure closed")
		d.log.Warn("tamper cleared: enclosure closed")
		return
	}
	d.system("tamper", "enclosure open")
	d.log.Error("ALERT", "reason", "tamper", "detail", "enclosure open")
}
