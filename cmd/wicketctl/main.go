// Command wicketctl is the issuing authority's and operator's tool: keys,
// signed key sets, vouchers, revocation and colour-override batches, and
// inspection of any code.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Set by the build (see Makefile).
var version = "dev"

const (
	exitOK    = 0
	exitFail  = 1 // the operation failed (inspect: the code does not verify)
	exitUsage = 2
)

type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

type command struct {
	name, summary string
	run           func(e env, args []string) error
}

func commands() []command {
	return []command{
		{"keygen", "make a signing key pair (Ed25519 or ES256)", cmdKeygen},
		{"keyset", "build and sign a key set from issuer public keys", cmdKeyset},
		{"issue", "issue a voucher: QR text, PNG, printable card", cmdIssue},
		{"pseudonym", "derive a subject pseudonym from an ID number", cmdPseudonym},
		{"revoke", "sign a batch revoking vouchers", cmdRevoke},
		{"dcc", "EU DCC: import gateway revocation lists, make the fleet's DCC pseudonym key", cmdDCC},
		{"override", "sign a batch of colour overrides or void-before statements", cmdOverride},
		{"snapshot", "sign a snapshot of any size from a CSV list (in parts when large)", cmdSnapshot},
		{"inspect", "decode a code or trust file and print every field", cmdInspect},
		{"publish", "publish key sets and batches to the fleet broker (retained)", cmdPublish},
		{"publish-files", "publish a snapshot as files on an HTTP(S) server, announced by a signed manifest", cmdPublishFiles},
		{"fleet", "list the fleet's gates from their retained status", cmdFleet},
		{"roster", "sign, publish or show the roster of enrolled gates and collectors", cmdRoster},
		{"clock-reset", "sign or publish a clock-floor reset for gates whose floor ran ahead", cmdClockReset},
		{"emergency-ack", "sign and publish an emergency acknowledge: gates lock again once the alarm cleared", cmdEmergencyAck},
		{"collect", "store gates' access records from MQTT in PostgreSQL", cmdCollect},
		{"records", "remove the access records past an age from PostgreSQL (says what first)", cmdRecords},
		{"version", "print the version", func(e env, _ []string) error {
			fmt.Fprintf(e.stdout, "wicketctl %s\n", version)
			return nil
		}},
	}
}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// errFailed is returned after the command printed why it failed.
var errFailed = errors.New("failed")

func main() {
	os.Exit(dispatch(env{os.Stdin, os.Stdout, os.Stderr}, os.Args[1:]))
}

func dispatch(e env, args []string) int {
	if len(args) > 0 {
		for _, c := range commands() {
			if c.name != args[0] {
				continue
			}
			err := c.run(e, args[1:])
			var ue usageError
			switch {
			case err == nil:
				return exitOK
			case errors.Is(err, flag.ErrHelp):
				return exitUsage
			case errors.As(err, &ue):
				fmt.Fprintf(e.stderr, "wicketctl %s: %v\n", c.name, err)
				return exitUsage
			case errors.Is(err, errFailed):
				return exitFail
			default:
				fmt.Fprintf(e.stderr, "wicketctl %s: %v\n", c.name, err)
				return exitFail
			}
		}
	}
	var b strings.Builder
	b.WriteString("usage: wicketctl COMMAND [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprint(e.stderr, b.String())
	return exitUsage
}

func newFlags(e env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: wicketctl %s %s\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags and turns flag errors into usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	return nil
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }
