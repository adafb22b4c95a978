package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"wicket/cmd/wicketd/config"
	"wicket/cmd/wicketd/display"
	"wicket/sync/store"
	"wicket/sync/wire"
)

// defaultConfig is where the package installs the config.
const defaultConfig = "/etc/wicket/wicketd.yaml"

// statusLockWait is how long status waits for the store: a running
// wicketd holds it for good, so waiting longer gains nothing.
const statusLockWait = time.Second

// liveStatus is what the admin API's GET /status answers: the status the
// gate publishes to its fleet, and what only the gate itself knows.
type liveStatus struct {
	wire.Status
	// Page is the state the gate's screen shows (ready, banners).
	Page display.State `json:"page"`
	// Broker is connected, disconnected, off (sync not enabled) or fault
	// (sync enabled but its settings are wrong; SyncFault says why).
	Broker    string `json:"broker"`
	SyncFault string `json:"sync_fault,omitempty"`
	// StationPassback is the station's anti-passback: "shared (station
	// S) since …", or "local-only since …: why" (sync/station.State).
	StationPassback string `json:"station_passback,omitempty"`
	// Clock is the gate's wall clock when it answered.
	Clock time.Time `json:"clock"`
}

// liveStatus is the running gate's status for GET /status.
func (d *daemon) liveStatus() liveStatus {
	s := liveStatus{Status: d.gateStatus(), Clock: time.Now().UTC(), Broker: "off"}
	if d.disp != nil {
		s.Page = d.disp.State()
	}
	switch f := d.syncFault.Load(); {
	case f != nil:
		s.Broker, s.SyncFault = "fault", *f
	case d.sync != nil && d.sync.State().Connected:
		s.Broker = "connected"
	case d.sync != nil:
		s.Broker = "disconnected"
	}
	if d.station != nil {
		s.StationPassback = d.station.State().String()
	}
	return s
}

// cmdStatus prints the gate's status. Beside a running gate (which holds
// the store) it asks the gate through the local admin API; with the gate
// stopped it reads the store read-only.
func cmdStatus(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	cfg, ok := loadForTool("status", args, stderr, nil)
	if !ok {
		return exitUsage
	}
	st, err := store.OpenReadOnly(cfg.Path(cfg.Store.Path), statusLockWait)
	if errors.Is(err, store.ErrLocked) {
		return statusFromGate(ctx, cfg, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wicketd status: store.path: %v\n", err)
		return exitUsage
	}
	defer st.Close()
	s, err := st.Stats()
	if err != nil {
		fmt.Fprintf(stderr, "wicketd status: %v\n", err)
		return exitUsage
	}
	now := time.Now()
	fmt.Fprintf(stdout, "gate:             %s (venue %s); wicketd is not running (read from the store)\n", cfg.Gate.ID, cfg.Gate.Venue)
	fmt.Fprintf(stdout, "store:            %s, %d bytes\n", cfg.Path(cfg.Store.Path), s.FileSize)
	fmt.Fprintf(stdout, "key set:          version %d\n", s.KeySetVersion)
	fmt.Fprintf(stdout, "revocations:      version %d, issued %s; statements: %d in the snapshot file (%d bytes), %d in deltas since\n",
		s.StatusVersion, ago(now, s.StatusIssued), s.Status.FileRecords, s.Status.FileBytes, s.Status.OverlayRecords)
	printClock(stdout, now, s.Floor, !now.Add(cfg.Policy.ClockSkew).Before(s.Floor))
	fmt.Fprintf(stdout, "access log:       %d events, last seq %d\n", s.Events, s.LastSeq)
	fmt.Fprintf(stdout, "outbox:           %d records waiting for sync, %d dropped (outbox full)\n", s.Outbox, s.Dropped)
	return exitOK
}

// statusFromGate asks the running gate for its status over the admin API.
func statusFromGate(ctx context.Context, cfg *config.Config, stdout, stderr io.Writer) int {
	c, err := newAdminClient(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "wicketd status: a running wicketd holds %s, and its admin API can't be asked: %v\n"+
			"  Set http.admin.token_file (docs/operations.md, Admin token) and restart wicketd, then wicketd status asks the running gate.\n"+
			"  Meanwhile: journalctl -u wicketd, /healthz and /metrics on http.metrics.addr, and with fleet sync `wicketctl fleet`.\n", cfg.Path(cfg.Store.Path), err)
		return exitDenied
	}
	var s liveStatus
	code, err := c.get(ctx, "/status", &s)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("admin API answered %d", code)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wicketd status: %v\n", err)
		return exitDenied
	}
	printLiveStatus(stdout, s)
	return exitOK
}

func printLiveStatus(w io.Writer, s liveStatus) {
	now := s.Clock
	fmt.Fprintf(w, "gate:             %s (venue %s), wicketd %s, running\n", s.Gate, s.Venue, s.Version)
	ready := "ready"
	if !s.Page.Ready {
		ready = "NOT READY: " + s.Page.Reason
	}
	fmt.Fprintf(w, "decisions:        %s; %d since start, %d allowed\n", ready, s.Decisions, s.Allowed)
	fmt.Fprintf(w, "key set:          version %d, issued %s\n", s.KeySetVersion, ago(now, s.KeySetIssued))
	fmt.Fprintf(w, "revocations:      version %d, issued %s; %d statements\n", s.StatusVersion, ago(now, s.StatusIssued), s.StatusRecords)
	printClock(w, now, s.ClockFloor, s.ClockTrusted)
	broker := s.Broker
	if s.SyncFault != "" {
		broker += ": " + s.SyncFault + "; the gate decides offline (fix the file, wicketd check-config -broker, restart)"
	}
	fmt.Fprintf(w, "broker:           %s\n", broker)
	fmt.Fprintf(w, "last sync:        last ack %s; %d records sent, %d acked\n", ago(now, s.LastAck), s.Sent, s.Acked)
	if s.StationPassback != "" {
		fmt.Fprintf(w, "station passback: %s\n", s.StationPassback)
	}
	fmt.Fprintf(w, "outbox:           %d records waiting for sync, %d dropped (outbox full)\n", s.Outbox, s.Dropped)
	fmt.Fprintf(w, "alerts:           %s\n", strings.Join(statusAlerts(s), "; "))
}

// statusAlerts lists what needs someone's attention, "none" if nothing.
func statusAlerts(s liveStatus) []string {
	var a []string
	for _, x := range []struct {
		on   bool
		what string
	}{
		{s.Page.Emergency, "EMERGENCY RELEASE: the gate is free"},
		{s.Page.EmergencyLatched, "emergency release latched: acknowledge once the alarm has cleared (wicketd ack-emergency)"},
		{!s.ClockTrusted, "clock not trusted"},
		{s.Page.Stale, "trust data stale: the gate needs a newer key set or revocation batch"},
		{s.SyncFault != "", "sync fault"},
		{s.Broker == "disconnected", "broker unreachable"},
		{s.Dropped > 0, "records dropped: the outbox was full"},
		{s.TrustGap, "revocation updates missing: waiting for a snapshot"},
	} {
		if x.on {
			a = append(a, x.what)
		}
	}
	if len(a) == 0 {
		return []string{"none"}
	}
	return a
}

func printClock(w io.Writer, now, floor time.Time, trusted bool) {
	clock := "trusted"
	if !trusted {
		clock = "NOT TRUSTED: the wall clock is below the floor; fix the time (timesyncd, RTC)"
	}
	fmt.Fprintf(w, "clock:            now %s, floor %s: %s\n", now.UTC().Format(time.RFC3339), floor.UTC().Format(time.RFC3339), clock)
}

// ago is a time and how long before now it was, or "never".
func ago(now, t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return "never"
	}
	return fmt.Sprintf("%s (%v ago)", t.UTC().Format(time.RFC3339), now.Sub(t).Round(time.Second))
}
