package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"

	"wicket/cmd/wicketd/loop"
	"wicket/sync/mqttsync"
	"wicket/sync/wire"
)

// openSync builds fleet sync when the config turns it on. A sync setting
// that is wrong turns sync off for this run (reportSyncFault); it never
// stops the gate.
func (d *daemon) openSync() {
	if !d.cfg.Sync.Enabled {
		return
	}
	s, err := d.newSync()
	if err != nil {
		d.reportSyncFault(err)
		return
	}
	d.sync = s
	d.trust.OnChange = d.sync.StatusChanged
}

// runSync runs fleet sync until ctx ends; a sync that cannot run is
// reported, not fatal.
func (d *daemon) runSync(ctx context.Context) {
	if err := d.sync.Run(ctx); err != nil {
		d.reportSyncFault(err)
	}
}

// outbox is fleet sync as the loop and the daemon's own records see it,
// nil (not a nil *mqttsync.Sync) when the gate does not sync.
func (d *daemon) outbox() loop.Outbox {
	if d.sync == nil {
		return nil
	}
	return d.sync
}

// newSync builds the fleet sync from the config. Its files (CA,
// certificate, password) are read here, so that a bad one is found before
// the gate starts scanning.
func (d *daemon) newSync() (*mqttsync.Sync, error) {
	y := d.cfg.Sync
	conn := y.Conn
	for _, p := range []*string{&conn.PasswordFile, &conn.CAFile, &conn.CertFile, &conn.KeyFile} {
		*p = d.cfg.Path(*p)
	}
	if _, err := conn.Options(); err != nil {
		return nil, err
	}
	var key ed25519.PrivateKey
	if y.IdentityKey != "" {
		var err error
		key, err = wire.ReadIdentity(d.cfg.Path(y.IdentityKey))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// The gate still decides; only its records wait.
			d.log.Error("sync.identity_key is missing: this gate is not enrolled and no collector takes its records; make it with wicketd identity",
				"path", d.cfg.Path(y.IdentityKey))
		case err != nil:
			return nil, fmt.Errorf("sync.identity_key: %w", err)
		}
	}
	return mqttsync.New(mqttsync.Config{
		Conn: conn, Fleet: y.Fleet, Gate: d.cfg.Gate.ID, BatchSize: y.BatchSize, MaxInflight: y.MaxInflight,
		AckTimeout: y.AckTimeout, StatusEvery: y.StatusEvery, ReconnectMin: y.ReconnectMin, ReconnectMax: y.ReconnectMax,
		Key: key, Roots: d.roots,
	}, d.st, d.trust, d.gateStatus, d.log)
}

// reportSyncFault turns fleet sync off for this run, saying why: a sync
// setting never takes the gate's decisions down (systemd would restart it
// every few seconds forever); the gate decides offline, its records wait
// in the outbox, and the fault is in the log at error priority, the access
// log (system event sync_fault) and wicketd status.
func (d *daemon) reportSyncFault(err error) {
	msg := err.Error()
	d.syncFault.Store(&msg)
	d.log.Error("fleet sync is off: its settings are wrong; the gate decides offline and keeps its records until the config is fixed (wicketd check-config, then restart)", "err", err)
	d.system("sync_fault", msg)
}

var _ loop.Outbox = (*mqttsync.Sync)(nil)
