package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"wicket/cmd/wicketd/config"
	"wicket/decoder"
	"wicket/verifier"
)

func cmdVerify(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("verify", "-config FILE [-json] [-at RFC3339] [CODE]", stderr)
	cfgPath := fs.String("config", defaultConfig, "config file")
	asJSON := fs.Bool("json", false, "print the decision as JSON")
	at := fs.String("at", "", "decide as of this time (RFC 3339) instead of now")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	var text []byte
	switch fs.NArg() {
	case 0:
		b, err := io.ReadAll(io.LimitReader(stdin, decoder.MaxTextLen+2))
		if err != nil {
			fmt.Fprintf(stderr, "wicketd verify: read stdin: %v\n", err)
			return exitUsage
		}
		text = bytes.TrimRight(b, "\r\n")
	case 1:
		text = []byte(fs.Arg(0))
	default:
		fs.Usage()
		return exitUsage
	}
	var clock verifier.Clock = verifier.SystemClock{}
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			fmt.Fprintf(stderr, "wicketd verify: -at: %v (use RFC 3339, e.g. 2026-06-01T08:00:00+08:00)\n", err)
			return exitUsage
		}
		clock = verifier.FixedClock(t)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		printConfigError(stderr, "verify", *cfgPath, err)
		return exitUsage
	}
	v, err := verifierFromFiles(cfg, clock)
	if err != nil {
		fmt.Fprintf(stderr, "wicketd verify: %v\n", err)
		return exitUsage
	}
	d := v.Verify(text)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		enc.Encode(d)
	} else {
		printDecision(stdout, d)
	}
	if !d.Allow {
		return exitDenied
	}
	return exitOK
}

// verifierFromFiles builds a verifier from the trust files a config names,
// with revocations and overrides in memory.
func verifierFromFiles(cfg *config.Config, clock verifier.Clock) (*verifier.Verifier, error) {
	roots, err := loadRoots(cfg)
	if err != nil {
		return nil, err
	}
	status := verifier.NewMemStatus()
	tclock := verifier.NewTrustedClock(clock, buildFloor())
	v, err := verifier.New(tclock, status, &cfg.Policy)
	if err != nil {
		return nil, err
	}
	if err := loadDCCPseudonymKey(cfg, v); err != nil {
		return nil, err
	}
	if cfg.Trust.KeySet != "" {
		ks, err := readKeySet(roots, cfg.Path(cfg.Trust.KeySet))
		if err != nil {
			return nil, err
		}
		if err := v.InstallKeySet(ks); err != nil {
			return nil, err
		}
	}
	batches, err := cfg.BatchFiles()
	if err != nil {
		return nil, err
	}
	var parts []*verifier.Batch // of one multi-part snapshot, in file order
	for _, p := range batches {
		b, err := readBatch(roots, p)
		if err != nil {
			return nil, err
		}
		if b.Parts != 0 {
			if parts = append(parts, b); len(parts) < int(b.Parts) {
				continue
			}
			if b, err = verifier.JoinParts(parts); err != nil {
				return nil, fmt.Errorf("trust.batches: %w", err)
			}
			parts = nil
		}
		if err := status.Apply(b, clock.Now()); err != nil {
			return nil, fmt.Errorf("trust.batches: %s: %w", p, err)
		}
		tclock.Raise(b.IssuedAt)
	}
	if len(parts) > 0 {
		return nil, fmt.Errorf("trust.batches: snapshot %d has %d parts, the files hold %d of them", parts[0].Version, parts[0].Parts, len(parts))
	}
	return v, nil
}

func printDecision(w io.Writer, d verifier.Decision) {
	verdict := "DENY "
	if d.Allow {
		verdict = "ALLOW"
	}
	fmt.Fprintf(w, "%s %s  %s / %s\n", verdict, d.Reason, d.Message.Zh, d.Message.En)
	if d.Detail != "" {
		fmt.Fprintf(w, "  detail:    %s\n", d.Detail)
	}
	if len(d.Warnings) > 0 {
		ws := make([]string, len(d.Warnings))
		for i, r := range d.Warnings {
			ws[i] = string(r)
		}
		fmt.Fprintf(w, "  warnings:  %s\n", strings.Join(ws, ", "))
	}
	if d.Alert {
		fmt.Fprintln(w, "  ALERT:     report to the epidemic-prevention office")
	}
	if d.Attendant {
		fmt.Fprintln(w, "  attendant: compare the photo on the voucher")
	}
	if v := d.Voucher; v != nil {
		col := d.Colour.String()
		if d.Overridden {
			col += fmt.Sprintf(" (override; voucher says %v)", v.Colour)
		}
		fmt.Fprintf(w, "  colour:    %s\n  voucher:   %v, %v, issuer %s, name %s\n  valid:     %s to %s\n  id:        %s\n",
			col, v.Kind, v.Class, v.Issuer, v.Name,
			v.IssuedAt.UTC().Format(time.RFC3339), v.Expires.UTC().Format(time.RFC3339), v.ID)
		if c := v.DCC; c != nil {
			fmt.Fprintf(w, "  dcc:       %s\n", describeDCC(c))
		}
	}
}

// describeDCC is one line on an EU DCC's content.
func describeDCC(c *verifier.DCC) string {
	switch c.Type {
	case "vaccination":
		return fmt.Sprintf("vaccination, dose %d of %d on %s (%s), country %s", c.Dose, c.Doses, c.Date, c.Product, c.Country)
	case "test":
		result := "not detected"
		if c.Positive {
			result = "DETECTED"
		}
		return fmt.Sprintf("%s test, %s, sampled %s, country %s", c.TestType, result, c.SampledAt.Format(time.RFC3339), c.Country)
	}
	return fmt.Sprintf("recovery, valid %s to %s, country %s", c.ValidFrom, c.ValidUntil, c.Country)
}
