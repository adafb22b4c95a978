package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"wicket/cmd/wicketd/config"
	"wicket/cmd/wicketd/display"
	"wicket/sync/store"
	"wicket/sync/trust"
	"wicket/verifier"
)

// newTrust returns the gate's trust Applier: it knows where the gate
// stands, which the authority's orders must name, records each clock
// reset in the access log (system event clock_reset), and ends a latched
// emergency release for a signed acknowledge through the gate's one
// acknowledge path.
func (d *daemon) newTrust() *trust.Applier {
	a := trust.New(d.roots, d.st, d.v, d.log)
	a.Place = verifier.Place{Gate: d.cfg.Gate.ID, Venue: d.cfg.Gate.Venue}
	a.OnEmergencyAck = d.acknowledgeEmergency
	a.OnClockReset = func(o *verifier.Order, old, floor time.Time) {
		d.system("clock_reset", fmt.Sprintf("signed order %d: clock floor %s, was %s",
			o.Serial, floor.UTC().Format(time.RFC3339), old.UTC().Format(time.RFC3339)))
	}
	return a
}

// clockReset applies a signed clock reset handed to the admin API.
func (d *daemon) clockReset(order []byte, by string) display.ClockResetAnswer {
	o, res, err := d.trust.ClockReset(order, by)
	return resetAnswer(d.v, o, res, err)
}

// resetAnswer says what a clock reset did and where the clock stands now.
func resetAnswer(v *verifier.Verifier, o *verifier.Order, res trust.Result, err error) display.ClockResetAnswer {
	clock := v.Clock()
	_, trusted := clock.Now(v.Policy().ClockSkew)
	a := display.ClockResetAnswer{
		OK: err == nil && (res == trust.Applied || res == trust.Stale), Result: res.String(),
		Floor: clock.Floor().UTC(), Clock: clock.Wall().UTC(), Trusted: trusted,
	}
	if o != nil {
		a.Serial = o.Serial
	}
	if err != nil {
		a.Error = err.Error()
	}
	return a
}

// cmdClockReset applies a signed clock-floor reset from a file (the
// authority's wicketctl clock-reset sign; a technician carries it on a
// USB stick): into the store with the gate stopped, through the local
// admin API beside a running gate.
func cmdClockReset(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("clock-reset", "[-config FILE] ORDER-FILE", stderr)
	cfgPath := fs.String("config", defaultConfig, "config file")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "wicketd clock-reset: %v\n", err)
		return exitUsage
	}
	path := fs.Arg(0)
	raw, err := readTrustDoc(path)
	if err != nil {
		fmt.Fprintf(stderr, "wicketd clock-reset: %v\n", err)
		return exitUsage
	}
	ans, err := resetStopped(cfg, raw, "file "+path)
	if errors.Is(err, store.ErrLocked) {
		ans, err = resetRunning(ctx, cfg, raw)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wicketd clock-reset: %v\n", err)
		return exitUsage
	}
	return printReset(ans, stdout, stderr)
}

// resetStopped applies a clock reset to the store of a stopped gate; an
// error wrapping store.ErrLocked says the gate is running.
func resetStopped(cfg *config.Config, raw []byte, source string) (display.ClockResetAnswer, error) {
	var ans display.ClockResetAnswer
	c := *cfg
	c.Store.LockTimeout = statusLockWait
	d := &daemon{cfg: &c, log: slog.New(slog.DiscardHandler), id: c.Gate.ID, venue: c.Gate.Venue}
	var err error
	if d.st, err = openStore(&c, d.log, nil, nil); err != nil {
		return ans, err
	}
	defer d.st.Close()
	if d.roots, err = loadRoots(&c); err != nil {
		return ans, err
	}
	floor := buildFloor()
	if f := d.st.Floor(); f.After(floor) {
		floor = f
	}
	if d.v, err = verifier.New(verifier.NewTrustedClock(verifier.SystemClock{}, floor), d.st, &c.Policy); err != nil {
		return ans, err
	}
	d.trust = d.newTrust()
	if err := d.trust.LoadStored(); err != nil {
		return ans, err
	}
	o, res, err := d.trust.ClockReset(raw, source)
	return resetAnswer(d.v, o, res, err), nil
}

// resetRunning hands a clock reset to the running gate's admin API.
func resetRunning(ctx context.Context, cfg *config.Config, raw []byte) (display.ClockResetAnswer, error) {
	var ans display.ClockResetAnswer
	c, err := newAdminClient(cfg)
	if err != nil {
		return ans, fmt.Errorf("wicketd is running and holds the store; %w; or stop wicketd and run this again", err)
	}
	body, err := json.Marshal(display.ClockResetRequest{Order: raw})
	if err != nil {
		return ans, err
	}
	code, err := c.post(ctx, "/clock-reset", string(body), &ans)
	switch {
	case err != nil:
		return ans, err
	case code == http.StatusUnauthorized:
		return ans, errors.New("the gate refused the token: wicketd reads http.admin.token_file at start; restart it after changing the file")
	case code != http.StatusOK && code != http.StatusConflict:
		return ans, fmt.Errorf("admin API answered %d: %s", code, ans.Error)
	}
	return ans, nil
}

// printReset says what a clock reset did; it exits exitDenied when the
// gate refused the order.
func printReset(a display.ClockResetAnswer, stdout, stderr io.Writer) int {
	floor := a.Floor.Format(time.RFC3339)
	switch {
	case !a.OK:
		fmt.Fprintf(stderr, "wicketd clock-reset: refused, nothing changed: %s\n", a.Error)
		return exitDenied
	case a.Result == trust.Stale.String():
		fmt.Fprintf(stdout, "this clock reset (serial %d) was applied before; nothing changed; the clock floor is %s\n", a.Serial, floor)
	default:
		fmt.Fprintf(stdout, "clock floor reset to %s by signed order %d\n", floor, a.Serial)
	}
	if a.Trusted {
		fmt.Fprintf(stdout, "the gate's clock reads %s: trusted; the gate decides codes again\n", a.Clock.Format(time.RFC3339))
	} else {
		fmt.Fprintf(stdout, "the gate's clock reads %s, still below the floor: codes are denied clock_untrusted until it reads %s (set it: timedatectl, NTP)\n",
			a.Clock.Format(time.RFC3339), floor)
	}
	return exitOK
}
