package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"reflect"
	"syscall"
	"time"

	"wicket/cmd/wicketd/config"
	"wicket/cmd/wicketd/loop"
	"wicket/sync/store"
	"wicket/verifier"
)

// This file is the gate's upkeep while it runs: store and outbox alerts,
// the clock floor and pruning, the systemd watchdog, config reloads, and
// the events devices and the store report.

// upkeepEvery is how often the store's health and the outbox are checked
// for alerts.
const upkeepEvery = 2 * time.Second

// upkeep raises and clears the alerts that no single event shows: a store
// that cannot commit (tried again every upkeepEvery with a system event,
// whose success is the record of the recovery) and an outbox that is full.
func (d *daemon) upkeep(ctx context.Context) error {
	return everyTick(ctx, upkeepEvery, d.checkStore)
}

// checkStore is one round of upkeep.
func (d *daemon) checkStore() {
	if h := d.st.CommitHealth(); h.Err != nil && !d.storeFailing.Load() {
		d.commitFailed(store.Event{}, h.Err)
	}
	if d.storeFailing.Load() {
		h := d.st.CommitHealth()
		if h.Err != nil {
			d.system("store_writable", fmt.Sprintf("commits succeed again after %d failures since %s", h.Failures, h.Since.UTC().Format(time.RFC3339)))
		}
		if h := d.st.CommitHealth(); h.Err == nil && d.storeFailing.CompareAndSwap(true, false) {
			d.log.Warn("store commits again")
		}
	}
	c, err := d.st.Counters()
	if err != nil {
		return
	}
	if full := d.st.OutboxFull(c); full != d.outboxFull.Load() {
		d.outboxFull.Store(full)
		if full {
			d.log.Error("ALERT", "reason", "outbox_full", "outbox", c.Outbox, "dropped", c.Dropped)
			d.system("outbox_full", fmt.Sprintf("%d records wait; new records are kept in the log but not sent", c.Outbox))
		}
	}
}

// everyTick calls fn every period until ctx ends, then returns nil.
func everyTick(ctx context.Context, period time.Duration, fn func()) error {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			fn()
		}
	}
}

// housekeepingEvery is how often the clock floor is saved and expired
// entries pruned.
const housekeepingEvery = time.Minute

// compactEvery is how often, at most, the revocation/override statements
// are rewritten into one file without the expired ones: a rewrite of a
// 10-million-entry file writes 180 MB, too much for an SD card every
// minute. Lookups never need it (an expired statement is harmless until
// then); the set also merges by itself when its deltas pile up.
const compactEvery = 6 * time.Hour

// housekeeping saves the clock floor and prunes expired data. The wall
// clock becomes the floor only while it is trusted and not implausibly far
// past the newest signed data (a clock set to 2040 by mistake must not
// lock the gate out of every voucher for good).
func (d *daemon) housekeeping(ctx context.Context, tclock *verifier.TrustedClock) error {
	t := time.NewTicker(housekeepingEvery)
	defer t.Stop()
	lastCompact := time.Now()
	for {
		now, trusted := tclock.Now(d.v.Policy().ClockSkew)
		newest := d.st.Info().IssuedAt
		if ks := d.v.KeySet(); ks != nil && ks.IssuedAt.After(newest) {
			newest = ks.IssuedAt
		}
		// Prune only up to a time known to have passed: a clock set a year
		// ahead must not forget revocations that are still in force.
		pruneAt := tclock.Floor()
		if trusted && !newest.IsZero() && now.Before(newest.Add(d.v.Policy().MaxKeySetAge)) {
			tclock.Raise(now)
			if err := d.st.RaiseFloor(now); err != nil {
				d.log.Error("save clock floor", "err", err)
			}
			pruneAt = now
		}
		if st := d.st.StatusStats(); time.Since(lastCompact) >= compactEvery &&
			(st.OverlayRecords > 0 || !st.MinExpires.IsZero() && !st.MinExpires.After(pruneAt)) {
			lastCompact = time.Now()
			if err := d.st.CompactStatus(pruneAt); err != nil {
				d.log.Error("compact revocations", "err", err)
			}
		}
		if w := loop.LongestPassback(d.v.Policy()); w > 0 {
			if _, err := d.st.PrunePassback(pruneAt, w); err != nil {
				d.log.Error("prune anti-passback", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// watchdog pings systemd at half the watchdog interval while the loop is
// healthy; a hung loop stops the pings and systemd restarts wicketd.
func (d *daemon) watchdog(ctx context.Context) error {
	every := watchdogInterval() / 2
	if every <= 0 {
		return nil
	}
	return everyTick(ctx, every, func() {
		if d.loop.Healthy(every) {
			sdNotify("WATCHDOG=1")
		} else {
			d.log.Error("decision loop unresponsive; withholding watchdog ping")
		}
	})
}

// reloads re-reads the config on SIGHUP: policy, trust files, log level
// and feedback patterns apply at once; other changes are logged as needing
// a restart. A bad config, or trust files that fail, are refused and the
// old config stays, all of it (reload).
func (d *daemon) reloads(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			d.reload()
		}
	}
}

// reload applies a new config whole or not at all: the new config is
// loaded and its policy checked, its trust files installed, and only then
// are the policy, log level, feedback patterns and config swapped in. If
// any step fails, everything of the running config stays in force (trust
// data from files before a failing one stays installed: it verified, as
// anything from the broker would).
func (d *daemon) reload() {
	sdNotify("RELOADING=1")
	defer sdNotify("READY=1")
	next, err := d.prepareReload()
	if err != nil {
		d.log.Error("reload refused; keeping the running config", "err", err)
		return
	}
	if err := d.v.SetPolicy(&next.Policy); err != nil {
		d.log.Error("reload refused; keeping the running config", "err", err)
		return
	}
	d.level.Set(parseLevel(next.Log.Level))
	if gc, err := gateConfig(next); err == nil && d.fb != nil {
		if err := d.fb.SetPatterns(gc.Feedback); err != nil {
			d.log.Error("reload: feedback patterns", "err", err)
		}
	}
	for _, c := range restartOnly(d.cfg, next) {
		d.log.Warn("reload: change needs a restart (systemctl restart wicketd)", "section", c)
	}
	d.cfg = next
	d.cfgHash.Store(ptr(fileHash(d.cfgPath)))
	if d.sync != nil {
		d.sync.StatusChanged()
	}
	d.log.Info("reloaded", "key_set", keySetVersion(d.v), "status", d.st.Info().Version)
}

// prepareReload loads the config file, checks its policy and installs its
// trust files: everything of a reload that can fail, before anything is
// swapped.
func (d *daemon) prepareReload() (*config.Config, error) {
	next, err := config.Load(d.cfgPath)
	if err != nil {
		return nil, err
	}
	if err := next.Policy.Validate(); err != nil {
		return nil, err
	}
	if err := d.installTrust(next); err != nil {
		return nil, fmt.Errorf("trust files: %w", err)
	}
	return next, nil
}

// restartOnly lists the sections that changed but apply only at start.
func restartOnly(a, b *config.Config) []string {
	var out []string
	for _, x := range []struct {
		name string
		a, b any
	}{
		{"gate", a.Gate, b.Gate}, {"store", a.Store, b.Store}, {"scanner", a.Scanner, b.Scanner},
		{"turnstile", a.Turnstile, b.Turnstile}, {"trust.root_keys", a.Trust.RootKeys, b.Trust.RootKeys},
		{"trust.record_key", a.Trust.RecordKey, b.Trust.RecordKey}, {"trust.dcc_pseudonym_key", a.Trust.DCCPseudonymKey, b.Trust.DCCPseudonymKey}, {"log.format", a.Log.Format, b.Log.Format},
		{"display", a.Display, b.Display}, {"http", a.HTTP, b.HTTP},
		{"feedback pins", [3]config.Pin{a.Feedback.GreenLED, a.Feedback.RedLED, a.Feedback.Buzzer}, [3]config.Pin{b.Feedback.GreenLED, b.Feedback.RedLED, b.Feedback.Buzzer}},
	} {
		if !reflect.DeepEqual(x.a, x.b) {
			out = append(out, x.name)
		}
	}
	return out
}

// watchEvents handles what devices and the store report on the wiring's
// channels: an emergency release is recorded; damage to the store file
// ends the run (the relay locks; systemd restarts wicketd, whose next
// Open checks the file in full and moves it aside); damage to the
// revocation file drops it and asks the fleet for a snapshot again.
func (d *daemon) watchEvents(ctx context.Context, w *wiring) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-w.emergencies:
			d.log.Warn("emergency release", "state", s.String())
			d.system("emergency", s.String())
		case err := <-w.storeDamage:
			return fmt.Errorf("store file damaged, restarting to recover: %w", err)
		case err := <-w.statusDamage:
			d.log.Error("revocation file damaged: dropped, waiting for a snapshot", "err", err)
			d.system("revocations_recovered", "damaged revocation file moved aside; waiting for a snapshot")
			if d.sync != nil {
				d.sync.Resync()
			}
		}
	}
}
