package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"wicket/cmd/wicketd/config"
	"wicket/device"
	"wicket/sync/store"
)

// loadForTool reads the config for a field tool, printing errors.
func loadForTool(name string, args []string, stderr io.Writer) (*config.Config, []string, bool) {
	fs := newFlags(name, "-config FILE", stderr)
	cfgPath := fs.String("config", "/etc/wicket/wicketd.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return nil, nil, false
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "wicketd %s: %v\n", name, err)
		return nil, nil, false
	}
	return cfg, fs.Args(), true
}

// statusLockWait is how long status waits for the store: a running
// wicketd holds it for good, so waiting longer gains nothing.
const statusLockWait = time.Second

// cmdStatus prints what the store holds. It opens the store read-only, so
// it waits while a running wicketd commits.
func cmdStatus(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	cfg, _, ok := loadForTool("status", args, stderr)
	if !ok {
		return exitUsage
	}
	st, err := store.OpenReadOnly(cfg.Path(cfg.Store.Path), statusLockWait)
	if errors.Is(err, store.ErrLocked) {
		fmt.Fprintf(stderr, "wicketd status: a running wicketd holds %s, so its counts can't be read now.\n"+
			"  Live state: journalctl -u wicketd (one line per decision), and with fleet sync `wicketctl fleet`.\n"+
			"  For a full status, stop the service first: systemctl stop wicketd\n", cfg.Path(cfg.Store.Path))
		return exitDenied
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
	age := func(t time.Time) string {
		if t.IsZero() || t.Unix() <= 0 {
			return "never"
		}
		return fmt.Sprintf("%s (%v ago)", t.UTC().Format(time.RFC3339), now.Sub(t).Round(time.Second))
	}
	clock := "trusted"
	if now.Add(cfg.Policy.ClockSkew).Before(s.Floor) {
		clock = "NOT TRUSTED: the wall clock is below the floor; fix the time (timesyncd, RTC)"
	}
	fmt.Fprintf(stdout, "gate:             %s (venue %s)\n", cfg.Gate.ID, cfg.Gate.Venue)
	fmt.Fprintf(stdout, "store:            %s, %d bytes\n", cfg.Path(cfg.Store.Path), s.FileSize)
	fmt.Fprintf(stdout, "key set:          version %d\n", s.KeySetVersion)
	fmt.Fprintf(stdout, "revocations:      version %d, issued %s; statements: %d in the snapshot file (%d bytes), %d in deltas since\n",
		s.StatusVersion, age(s.StatusIssued), s.Status.FileRecords, s.Status.FileBytes, s.Status.OverlayRecords)
	fmt.Fprintf(stdout, "clock:            now %s, floor %s: %s\n", now.UTC().Format(time.RFC3339), s.Floor.UTC().Format(time.RFC3339), clock)
	fmt.Fprintf(stdout, "access log:       %d events, last seq %d\n", s.Events, s.LastSeq)
	fmt.Fprintf(stdout, "outbox:           %d records waiting for sync, %d dropped (outbox full)\n", s.Outbox, s.Dropped)
	return exitOK
}

// cmdTestRelay opens the turnstile as a granted scan would and reports
// what the passage sensor saw.
func cmdTestRelay(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, _, ok := loadForTool("test-relay", args, stderr)
	if !ok {
		return exitUsage
	}
	d := &daemon{cfg: cfg, log: slog.New(slog.NewTextHandler(stderr, nil)), stdout: stdout, stdin: stdin}
	if err := d.openOutputs(nil); err != nil {
		fmt.Fprintf(stderr, "wicketd test-relay: %v\n", err)
		return exitUsage
	}
	defer d.closeOutputs()
	fmt.Fprintf(stdout, "relay %s (%s, active-%s): opening for up to %v...\n", cfg.Turnstile.Relay.Name, cfg.Turnstile.Mode, lowHigh(cfg.Turnstile.Relay.ActiveLow), cfg.Turnstile.OpenTimeout)
	start := time.Now()
	p, err := d.ts.Open(ctx)
	if err != nil {
		fmt.Fprintf(stdout, "FAILED after %v: %v\n", time.Since(start).Round(time.Millisecond), err)
		return exitDenied
	}
	fmt.Fprintf(stdout, "passage sensor: %v after %v; relay back in its safe state\n", p, time.Since(start).Round(time.Millisecond))
	return exitOK
}

func lowHigh(low bool) string {
	if low {
		return "low"
	}
	return "high"
}

// cmdTestScanner prints every frame the scanner sends, with unprintable
// bytes in hex, until interrupted.
func cmdTestScanner(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, _, ok := loadForTool("test-scanner", args, stderr)
	if !ok {
		return exitUsage
	}
	cfg.Log.Level = "info"
	d := &daemon{cfg: cfg, log: slog.New(slog.NewTextHandler(stderr, nil)), stdin: stdin, stdout: stdout}
	src, err := d.source()
	if err != nil {
		fmt.Fprintf(stderr, "wicketd test-scanner: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "reading %s scanner %s (terminator %s); scan codes, Ctrl-C to stop\n", cfg.Scanner.Type, cfg.Scanner.Device, cfg.Scanner.Terminator)
	scans := make(chan device.Scan)
	errc := make(chan error, 1)
	go func() { errc <- src.Run(ctx, scans); close(scans) }()
	n := 0
	for s := range scans {
		n++
		sym := ""
		if s.Symbology != "" {
			sym = " symbology ]" + s.Symbology
		}
		fmt.Fprintf(stdout, "%3d  %d bytes%s  %s\n", n, len(s.Payload), sym, device.HexDump(s.Payload))
	}
	if err := <-errc; err != nil {
		fmt.Fprintf(stderr, "wicketd test-scanner: %v\n", err)
		return exitDenied
	}
	return exitOK
}
