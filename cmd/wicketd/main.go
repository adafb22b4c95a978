// Command wicketd is the Wicket gate daemon and its field tools.
//
//	wicketd run -config FILE           run the gate
//	wicketd init [flags]               write a first config for this gate
//	wicketd verify -config FILE [CODE] verify one code and print the decision
//	wicketd check-config [-broker] FILE validate a config, its files, devices and pins
//	wicketd status [FILE]              the gate's status, also beside a running gate
//	wicketd test-relay|test-feedback|test-inputs|test-scanner [FILE]  field tests
//	wicketd ack-emergency -config FILE lock the gate again after an emergency release
//	wicketd clock-reset [-config FILE] ORDER  apply a signed clock-floor reset
//	wicketd version                    print the version
//
// For run, this package is the composition root: it wires config →
// store → trust and verifier → devices → fleet sync → the decision loop
// (cmd/wicketd/loop) and owns every goroutine's lifetime (one errgroup,
// joined before the store closes). It owns the display, metrics, the
// store and outbox alerts, upkeep and reload. It does not decide on a
// scan, drive the relay for one, or wake the outbox for the loop's
// records: the loop does, and reports to it through loop.Observer.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Set by the build (see Makefile).
var (
	version = "dev"
	// buildTime is the commit time in Unix seconds: the first floor of the
	// trusted clock. A gate whose clock reads earlier can't be right.
	buildTime = "0"
)

// Exit codes of every sub-command.
const (
	exitOK     = 0
	exitDenied = 1 // verify: the code was denied
	exitUsage  = 2 // bad flags, bad config, missing files
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"run", "run the gate", cmdRun},
		{"init", "write a first config for this gate (asks on a terminal)", cmdInit},
		{"identity", "show this gate's public key for enrolment (text and QR code)", cmdIdentity},
		{"status", "trust versions, clock, broker, last sync, alerts (also beside a running gate)", cmdStatus},
		{"ack-emergency", "lock the gate again after an emergency release (the alarm must have cleared)", cmdAckEmergency},
		{"clock-reset", "apply the authority's signed clock-floor reset from a file (USB stick)", cmdClockReset},
		{"test-relay", "pulse the relay and report the passage sensor", cmdTestRelay},
		{"test-feedback", "light each LED and sound the buzzer in turn; you confirm each", cmdTestFeedback},
		{"test-inputs", "print the passage sensor's, emergency input's and tamper switch's changes live (-for 30s)", cmdTestInputs},
		{"test-scanner", "judge each frame the scanner sends and say which setting to fix", cmdTestScanner},
		{"verify", "verify one code (argument or stdin) and print the decision", cmdVerify},
		{"check-config", "validate a config file and print the effective config", cmdCheckConfig},
		{"version", "print the version", cmdVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		for _, c := range commands() {
			if c.name == args[0] {
				return c.run(ctx, args[1:], stdin, stdout, stderr)
			}
		}
	}
	fmt.Fprintln(stderr, "usage: wicketd COMMAND [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(stderr, "  %-13s %s\n", c.name, c.summary)
	}
	return exitUsage
}

func cmdVersion(_ context.Context, _ []string, _ io.Reader, stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "wicketd %s (built from a commit of %s)\n", version, buildFloor().UTC().Format(time.RFC3339))
	return exitOK
}

// buildFloor is the build time as a time.
func buildFloor() time.Time {
	var s int64
	fmt.Sscan(buildTime, &s)
	return time.Unix(s, 0)
}

// newFlags returns a FlagSet that prints its usage to stderr.
func newFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: wicketd %s %s\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}
