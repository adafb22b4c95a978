package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"wicket/cmd/wicketd/display"
	"wicket/cmd/wicketd/loop"
	"wicket/device/gate"
	"wicket/sync/wire"
	"wicket/verifier"
)

// This file is what the gate shows about itself: the display and metrics
// the loop's results feed (the daemon is the loop's Observer), the
// /healthz state and gauges, and the status the gate publishes.

var _ loop.Observer = (*daemon)(nil)

// Decided shows a decision before the turnstile moves: on the simulated
// gate's output, and on the kiosk page.
func (d *daemon) Decided(r loop.Result) {
	if d.simOut != nil {
		simDisplay(d.simOut, r)
	}
	if d.disp == nil || r.Skipped {
		return
	}
	p := d.v.Policy()
	d.disp.Publish(display.FromDecision(r.Decision, r.Seq, p.Test.MaxAge > 0, p.MinDoses > 0, r.Temperature))
}

// Finished counts a final result: the published counters, the decision
// metrics and scan-to-relay time, and a relay that failed.
func (d *daemon) Finished(r loop.Result) {
	if r.Seq != 0 {
		d.decisions.Add(1)
		if r.Decision.Allow {
			d.allowed.Add(1)
		}
	}
	if r.Decision.Allow && r.Passage == gate.PassageError {
		d.deviceError("relay")
	}
	if d.disp != nil && !r.Skipped {
		m := d.disp.Metrics()
		m.ObserveDecision(string(r.Decision.Reason), r.Decision.Allow)
		if !r.Opened.IsZero() {
			m.ObserveScanToRelay(r.Opened.Sub(r.ScanAt))
		}
	}
}

// displayStateEvery is how often the page's banners and the gauges are
// refreshed.
const displayStateEvery = 2 * time.Second

// displayState keeps the page's gate state (/healthz) and the gauges of
// /metrics up to date.
func (d *daemon) displayState(ctx context.Context) error {
	t := time.NewTicker(displayStateEvery)
	defer t.Stop()
	for {
		rd := d.v.Readiness()
		st := display.State{Ready: rd.NotReady == "", Reason: rd.NotReady, ClockUntrusted: !rd.ClockTrusted, Stale: rd.Stale != ""}
		m := d.disp.Metrics()
		m.SetClockTrusted(rd.ClockTrusted)
		now, _ := d.v.Clock().Now(d.v.Policy().ClockSkew)
		if ks := d.v.KeySet(); ks != nil {
			m.SetTrustAge("key_set", now.Sub(ks.IssuedAt))
		}
		if info := d.st.Info(); info.Version != 0 {
			m.SetTrustAge("status", now.Sub(info.IssuedAt))
		}
		if c, err := d.st.Counters(); err == nil {
			m.SetOutbox(c.Outbox)
			m.SetOutboxDropped(c.Dropped)
		}
		m.SetTrustVersion("key_set", keySetVersion(d.v))
		m.SetTrustVersion("status", d.st.Info().Version)
		floor := d.v.Clock().Floor()
		m.SetClock(floor, time.Since(floor))
		h := d.st.CommitHealth()
		m.SetStoreCommit(h.Err == nil, h.DiskFull(), h.Failures)
		if d.sync != nil {
			st.Offline = !d.sync.State().Connected
			m.SetBrokerConnected(!st.Offline)
		}
		if d.station != nil {
			y := d.station.State()
			m.SetStationPassback(y.Shared, y.Accepted, y.Refused)
		}
		es := d.ts.EmergencyState()
		st.Emergency, st.EmergencyLatched = es != gate.EmergencyNormal, es == gate.EmergencyLatched
		m.SetEmergency(int(es))
		if h.Err != nil {
			st.Ready, st.Reason = false, "store cannot commit"
			if h.DiskFull() {
				st.Reason = "store cannot commit: disk full"
			}
		}
		if st.Ready && !d.loop.Healthy(3*heartbeatTolerance) {
			st.Ready, st.Reason = false, "decision loop unresponsive"
		}
		d.disp.SetState(st)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// heartbeatTolerance is how long the loop may go without passing its
// select before it counts as unresponsive.
const heartbeatTolerance = 2 * time.Second

// deviceError counts a device failure in /metrics.
func (d *daemon) deviceError(name string) {
	if d.disp != nil {
		d.disp.Metrics().DeviceError(name)
	}
}

// gateStatus is the retained status the gate publishes.
func (d *daemon) gateStatus() wire.Status {
	now := time.Now()
	s := wire.Status{
		Gate: d.id, Venue: d.venue, Version: version, ConfigHash: *d.cfgHash.Load(),
		Decisions: d.decisions.Load(), Allowed: d.allowed.Load(), At: now.UTC(),
	}
	if ks := d.v.KeySet(); ks != nil {
		s.KeySetVersion, s.KeySetIssued = ks.Version, ks.IssuedAt.UTC()
	}
	info := d.st.Info()
	s.StatusVersion, s.StatusIssued = info.Version, info.IssuedAt.UTC()
	ts := d.trust.Stats()
	s.TrustGap, s.TrustRefused, s.LastRefusal = ts.Gap, ts.Refused, ts.LastRefusal
	if as := ts.Assembling; as != nil {
		s.SnapshotParts = fmt.Sprintf("%d: %d/%d", as.Version, as.Have, as.Of)
	}
	if d.snap != nil {
		s.SnapshotFetch = d.snap.State().String()
	}
	ss := d.st.StatusStats()
	s.StatusRecords = ss.FileRecords + uint64(ss.OverlayRecords)
	_, s.ClockTrusted = d.v.Clock().Now(d.v.Policy().ClockSkew)
	s.ClockFloor = d.v.Clock().Floor().UTC()
	if c, err := d.st.Counters(); err == nil {
		s.Outbox, s.Dropped, s.LastSeq = c.Outbox, c.Dropped, c.LastSeq
	}
	if t := d.lastEvent.Load(); t != 0 {
		s.LastRecord = time.Unix(0, t).UTC()
	}
	if d.ts != nil {
		s.Emergency = d.ts.EmergencyState().String()
	}
	if d.sync != nil {
		y := d.sync.State()
		s.LastAck, s.Sent, s.Acked, s.Resends = y.LastAck.UTC(), y.Published, y.Acked, y.Resends
		s.AcksRefused, s.Ignored, s.Oversized = y.AcksRefused, y.Ignored, y.Oversized
		s.Unsubscribed, s.SubscribeRefused = y.Unsubscribed, y.SubscribeRefused
		if y.LastAck.IsZero() {
			s.LastAck = time.Time{}
		}
	}
	return s
}

func keySetVersion(v *verifier.Verifier) uint64 {
	if ks := v.KeySet(); ks != nil {
		return ks.Version
	}
	return 0
}

// simDisplay prints what the gate's display would show, for the simulated
// gate: the verdict, the message, and the least the attendant needs. The
// masked name stays on the real screen: this goes to stdout, which under
// systemd is the journal, where names never go.
func simDisplay(w io.Writer, r loop.Result) {
	if r.Skipped {
		fmt.Fprintln(w, "display: (same code still in front of the reader: no new decision)")
		return
	}
	d := r.Decision
	verdict := "DENY "
	if d.Allow {
		verdict = "ALLOW"
	}
	line := fmt.Sprintf("display: %s %s / %s  [%s", verdict, d.Message.Zh, d.Message.En, d.Reason)
	if v := d.Voucher; v != nil {
		line += fmt.Sprintf("; %v %v %v", d.Colour, v.Kind, v.Class)
	}
	line += "]"
	if d.Alert {
		line += "  ALERT: report to the epidemic-prevention office"
	}
	switch {
	case d.Attendant && (d.Reason == verifier.ReasonFever || d.Reason == verifier.ReasonNoTemperature || d.Reason == verifier.ReasonThermometerFault):
		line += "  → attendant: take the temperature by hand"
	case d.Attendant:
		line += "  → attendant: compare the photo"
	}
	fmt.Fprintln(w, line)
}
