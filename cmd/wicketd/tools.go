package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"wicket/cmd/wicketd/config"
	"wicket/device"
	"wicket/verifier"
)

// loadForTool reads the config for a field tool, printing errors. The
// config is -config FILE or the one argument FILE (default
// /etc/wicket/wicketd.yaml); flags, if set, adds the tool's own flags.
func loadForTool(name string, args []string, stderr io.Writer, flags func(*flag.FlagSet)) (*config.Config, bool) {
	fs := newFlags(name, "[flags] [-config FILE | FILE]", stderr)
	cfgPath := fs.String("config", defaultConfig, "config file")
	if flags != nil {
		flags(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, false
	}
	path := *cfgPath
	switch {
	case fs.NArg() > 1:
		fmt.Fprintf(stderr, "wicketd %s: one config file, please: %s\n", name, strings.Join(fs.Args(), " "))
		fs.Usage()
		return nil, false
	case fs.NArg() == 1 && path != defaultConfig:
		fmt.Fprintf(stderr, "wicketd %s: the config is given twice (-config %s and %s); give one\n", name, path, fs.Arg(0))
		return nil, false
	case fs.NArg() == 1:
		path = fs.Arg(0)
	}
	cfg, err := config.Load(path)
	if err != nil {
		printConfigError(stderr, name, path, err)
		return nil, false
	}
	return cfg, true
}

// cmdTestRelay opens the turnstile as a granted scan would and reports
// what the passage sensor saw.
func cmdTestRelay(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	d, ok := outputsForTool("test-relay", args, stdin, stdout, stderr)
	if !ok {
		return exitUsage
	}
	defer d.closeOutputs()
	cfg := d.cfg
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

// outputsForTool loads the config of a field tool and opens the gate's
// outputs (turnstile, LEDs, buzzer) as wicketd would; the caller closes
// them with closeOutputs.
func outputsForTool(name string, args []string, stdin io.Reader, stdout, stderr io.Writer) (*daemon, bool) {
	cfg, ok := loadForTool(name, args, stderr, nil)
	if !ok {
		return nil, false
	}
	d := &daemon{cfg: cfg, log: slog.New(slog.NewTextHandler(stderr, nil)), stdout: stdout, stdin: stdin}
	if err := d.openOutputs(nil); err != nil {
		fmt.Fprintf(stderr, "wicketd %s: %v\n", name, err)
		return nil, false
	}
	return d, true
}

func lowHigh(low bool) string {
	if low {
		return "low"
	}
	return "high"
}

// cmdTestScanner reads the scanner and prints each frame it sends, with
// unprintable bytes in hex. For a serial scanner it reads the port raw and
// gives each frame a verdict and the fix (AIM identifier, case
// conversion, terminator, baud rate), refusing while the gate holds the
// port; other sources print their frames as the gate gets them.
func cmdTestScanner(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var max int
	cfg, ok := loadForTool("test-scanner", args, stderr, func(fs *flag.FlagSet) {
		fs.IntVar(&max, "n", 0, "stop after this many frames (0: at Ctrl-C)")
	})
	if !ok {
		return exitUsage
	}
	cfg.Log.Level = "info"
	if cfg.Scanner.Type == "serial" {
		v, err := verifierFromFiles(cfg, verifier.SystemClock{})
		if err != nil {
			fmt.Fprintf(stderr, "wicketd test-scanner: no decisions, only verdicts on the frames: %v\n", err)
		}
		return diagnoseSerial(ctx, cfg, v, max, stdout, stderr)
	}
	d := &daemon{cfg: cfg, log: slog.New(slog.NewTextHandler(stderr, nil)), stdin: stdin, stdout: stdout}
	src, err := d.source()
	if err != nil {
		fmt.Fprintf(stderr, "wicketd test-scanner: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "reading %s scanner %s (terminator %s); scan codes, Ctrl-C to stop\n", cfg.Scanner.Type, cfg.Scanner.Device, cfg.Scanner.Terminator)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
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
		if max != 0 && n >= max {
			cancel()
		}
	}
	if err := <-errc; err != nil {
		fmt.Fprintf(stderr, "wicketd test-scanner: %v\n", err)
		return exitDenied
	}
	return exitOK
}
