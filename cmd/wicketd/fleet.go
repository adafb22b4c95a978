package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"wicket/cmd/wicketd/loop"
	"wicket/sync/mqttconn"
	"wicket/sync/mqttsync"
	"wicket/sync/snapfile"
	"wicket/sync/station"
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
	d.snap.OnChange = d.sync.StatusChanged
}

// runStation shares anti-passback with the gate's station until ctx ends.
func (d *daemon) runStation(ctx context.Context) {
	if err := d.station.Run(ctx); err != nil {
		d.log.Error("station anti-passback stopped; the gate decides on its own memory", "err", err)
	}
}

// stationSeam is the station as the loop sees it, nil (not a nil
// *station.Station) when the gate does not sync.
func (d *daemon) stationSeam() loop.Station {
	if d.station == nil {
		return nil
	}
	return d.station
}

// newStation builds the station's anti-passback share beside fleet sync,
// on the same broker settings and identity key: the roster the sync
// installs names the gate's station, the policy the window, and the
// trusted clock dates and judges the grants, as it dates decisions.
func (d *daemon) newStation(conn mqttconn.Conn, key ed25519.PrivateKey, s *mqttsync.Sync) (*station.Station, error) {
	y := d.cfg.Sync
	return station.New(station.Config{
		Conn: conn, Fleet: y.Fleet, Gate: d.cfg.Gate.ID, Key: key, Roster: s.Roster,
		Window: func() time.Duration { return loop.LongestPassback(d.v.Policy()) },
		Now: func() time.Time {
			t, _ := d.v.Clock().Now(d.v.Policy().ClockSkew)
			return t
		},
		ReconnectMin: y.ReconnectMin, ReconnectMax: y.ReconnectMax, Logger: d.log,
	})
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

// newSync builds the fleet sync from the config, and beside it the
// station's anti-passback share (d.station) on the same settings. Its
// files (CA, certificate, password) are read here, so that a bad one is
// found before the gate starts scanning.
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
	snap, err := snapfile.New(snapfile.Config{
		Roots: d.roots, Dir: filepath.Join(filepath.Dir(d.cfg.Path(d.cfg.Store.Path)), "snapfile"), Jitter: y.SnapshotJitter,
		Fallback: &snapfile.Broker{Conn: conn, Fleet: y.Fleet},
	}, d.st, d.trust, d.log)
	if err != nil {
		return nil, err
	}
	s, err := mqttsync.New(mqttsync.Config{
		Conn: conn, Fleet: y.Fleet, Gate: d.cfg.Gate.ID, BatchSize: y.BatchSize, MaxInflight: y.MaxInflight,
		AckTimeout: y.AckTimeout, StatusEvery: y.StatusEvery, StatusSpread: statusSpread(y.StatusSpread), ReconnectMin: y.ReconnectMin, ReconnectMax: y.ReconnectMax,
		TrustSilence: y.TrustSilence, TrustQoS0: y.TrustQoS == 0, Key: key, Roots: d.roots, Manifest: func(raw []byte) { snap.Offer(raw) },
	}, d.st, d.trust, d.gateStatus, d.log)
	if err != nil {
		return nil, err
	}
	if d.station, err = d.newStation(conn, key, s); err != nil {
		return nil, err
	}
	d.snap = snap
	return s, nil
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

var (
	_ loop.Outbox  = (*mqttsync.Sync)(nil)
	_ loop.Station = (*station.Station)(nil)
)

// statusSpread is sync.status_spread as mqttsync takes it: there a zero
// means its default, and a negative value at once, which wicketd.yaml
// writes as 0s.
func statusSpread(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
