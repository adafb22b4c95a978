package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/sync/snapfile"
	"wicket/sync/wire"
	"wicket/verifier"
)

// cmdFleet summarises a fleet from its gates' retained status: counts
// first, then only the gates that need attention (all with -all), each
// with the problems that put it there.
func cmdFleet(e env, args []string) error {
	fs := newFlags(e, "fleet", "-broker URL -fleet F -roots ROOT.pub [-all] [-venue V] [-gate GLOB] [-problem P] [-json] [-wait 2s]")
	bf := addBrokerFlags(fs, "fleet")
	var roots multiFlag
	fs.Var(&roots, "roots", "root public key the fleet's roster verifies with (repeat); without it no status can be verified")
	asJSON := fs.Bool("json", false, "print JSON: the summary and the listed gates")
	all := fs.Bool("all", false, "list every gate, not only those that need attention")
	var f fleetFilter
	fs.StringVar(&f.venue, "venue", "", "only gates of this venue")
	fs.StringVar(&f.gate, "gate", "", "only gates whose id matches this pattern (* and ? as in a shell)")
	fs.StringVar(&f.problem, "problem", "", "only gates with this problem (see docs/operations.md, \"wicketctl fleet\")")
	var th fleetThresholds
	fs.DurationVar(&th.stale, "stale", 3*time.Minute, "a status older than this is stale (gates refresh it every minute)")
	fs.IntVar(&th.outbox, "outbox", 1000, "records waiting in a gate's outbox from which it needs attention")
	fs.DurationVar(&th.unacked, "unacked", 15*time.Minute, "records waiting with no collector acknowledgement for this long need attention")
	quiet := fs.Duration("wait", 2*time.Second, "stop after this long without a new status")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case th.stale <= 0:
		return usagef("-stale %v: want a positive duration (gates refresh their status every minute)", th.stale)
	case th.unacked <= 0:
		return usagef("-unacked %v: want a positive duration", th.unacked)
	case th.outbox < 1:
		return usagef("-outbox %d: want at least 1 record", th.outbox)
	case *quiet <= 0:
		return usagef("-wait %v: want a positive duration; with none no status is read", *quiet)
	}
	if f.problem != "" && !knownProblem(f.problem) {
		return usagef("-problem %q: one of %s", f.problem, strings.Join(fleetProblems, ", "))
	}
	if f.gate != "" {
		if _, err := path.Match(f.gate, ""); err != nil {
			return usagef("-gate %q: %v", f.gate, err)
		}
	}
	cl, topics, err := bf.dial()
	if err != nil {
		return err
	}
	defer cl.Disconnect(250)
	msgs, err := retained(context.Background(), cl, topics.AllStatus(), *quiet)
	if err != nil {
		return err
	}
	// Each status is checked against the roster: signed by the gate of
	// its topic with the key the roster holds for it. Anything else may
	// come from anyone who can publish on the broker.
	check := func(topic string, s wire.Status, sm *wire.Signed) string { return "no -roots given" }
	if len(roots) > 0 {
		rk, err := loadRoots(roots)
		if err != nil {
			return err
		}
		raw, err := heldRoster(cl, topics, *quiet)
		if err != nil {
			return err
		}
		roster, rerr := rk.ParseRoster(raw)
		if raw == nil {
			rerr = errors.New("none on the broker")
		}
		check = func(topic string, s wire.Status, sm *wire.Signed) string {
			gate, _ := topics.GateOf(topic)
			switch {
			case rerr != nil:
				return "roster: " + rerr.Error()
			case sm == nil:
				return "unsigned"
			case sm.Signer != gate || s.Gate != gate:
				return fmt.Sprintf("signed by %q for gate %q on the topic of %q", sm.Signer, s.Gate, gate)
			}
			if err := sm.Verify(wire.KindStatus, topics.Fleet, roster.Key(gate, verifier.RoleGate)); err != nil {
				return "signature does not verify with the gate's enrolled key"
			}
			return ""
		}
	}
	var gates []gateStatus
	for topic, b := range msgs {
		if len(b) == 0 {
			continue
		}
		s, sm, err := wire.OpenStatus(b)
		if err != nil {
			fmt.Fprintf(e.stderr, "wicketctl fleet: unreadable status on %s\n", topic)
			continue
		}
		problem := check(topic, s, sm)
		if problem != "" {
			if gate, err := topics.GateOf(topic); err == nil {
				s.Gate = gate // the topic, not the claim, names the row
			}
			s = wire.Status{Gate: s.Gate} // nothing of it is shown as fact
		}
		gates = append(gates, gateStatus{Status: s, Verified: problem == "", Unverified: problem})
	}
	sort.Slice(gates, func(i, j int) bool { return gates[i].Gate < gates[j].Gate })
	if len(msgs) == 0 {
		fmt.Fprintf(e.stderr, "wicketctl fleet: no gate status on %s within %v: check -fleet and -broker, or wait longer (-wait)\n", topics.AllStatus(), *quiet)
	}
	sum := assess(gates, th, time.Now())
	var listed []gateStatus
	for _, g := range gates {
		if f.match(g) && (*all || f.problem != "" || len(g.Problems) > 0) {
			listed = append(listed, g)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(fleetReport{Summary: sum, Gates: listed})
	}
	sum.print(e.stdout)
	if len(listed) == 0 {
		return nil
	}
	fmt.Fprintln(e.stdout)
	printGates(e.stdout, listed, time.Now())
	return nil
}

// fleetProblems are the reasons a gate needs attention, in the order
// the summary lists them. docs/operations.md says what each means and
// what to do.
var fleetProblems = []string{
	"unverified", "offline", "stale", "emergency", "clock_untrusted", "dropped",
	"outbox_backlog", "unacked", "key_set_behind", "status_behind", "trust_gap", "snapshot_files", "unsubscribed", "refusals",
}

func knownProblem(p string) bool { return slices.Contains(fleetProblems, p) }

// fleetThresholds are where a number becomes a problem.
type fleetThresholds struct {
	stale, unacked time.Duration
	outbox         int
}

// fleetFilter selects the gates listed; the summary counts every gate.
type fleetFilter struct{ venue, gate, problem string }

func (f fleetFilter) match(g gateStatus) bool {
	if f.venue != "" && g.Venue != f.venue {
		return false
	}
	if f.gate != "" {
		if ok, _ := path.Match(f.gate, g.Gate); !ok {
			return false
		}
	}
	return f.problem == "" || slices.Contains(g.Problems, f.problem)
}

// fleetSummary counts a fleet. The newest versions are those of verified
// statuses only: a forged status claiming a higher version cannot make
// the fleet look behind.
type fleetSummary struct {
	Gates         int            `json:"gates"`
	Healthy       int            `json:"healthy"`
	Attention     int            `json:"attention"`
	Online        int            `json:"online"`
	NewestKeySet  uint64         `json:"newest_key_set"`
	NewestStatus  uint64         `json:"newest_status"`
	Problems      map[string]int `json:"problems"`
	OutboxRecords int            `json:"outbox_records"`
}

type fleetReport struct {
	Summary fleetSummary `json:"summary"`
	Gates   []gateStatus `json:"gates"`
}

// assess sets each gate's problems and counts the fleet.
func assess(gates []gateStatus, th fleetThresholds, now time.Time) fleetSummary {
	sum := fleetSummary{Gates: len(gates), Problems: map[string]int{}}
	for _, g := range gates {
		if g.Verified {
			sum.NewestKeySet = max(sum.NewestKeySet, g.KeySetVersion)
			sum.NewestStatus = max(sum.NewestStatus, g.StatusVersion)
		}
	}
	for i := range gates {
		g := &gates[i]
		g.Problems = g.problems(sum, th, now)
		for _, p := range g.Problems {
			sum.Problems[p]++
		}
		if len(g.Problems) == 0 {
			sum.Healthy++
		}
		if g.Verified {
			sum.OutboxRecords += g.Outbox
			if g.Online {
				sum.Online++
			}
		}
	}
	sum.Attention = sum.Gates - sum.Healthy
	return sum
}

// problems lists what is wrong with one gate, in fleetProblems order.
func (g gateStatus) problems(sum fleetSummary, th fleetThresholds, now time.Time) []string {
	if !g.Verified {
		return []string{"unverified"}
	}
	s := g.Status
	var p []string
	add := func(cond bool, name string) {
		if cond {
			p = append(p, name)
		}
	}
	add(!s.Online, "offline")
	add(now.Sub(s.At) > th.stale, "stale")
	add(s.Emergency != "" && s.Emergency != "normal", "emergency")
	add(!s.ClockTrusted, "clock_untrusted")
	add(s.Dropped > 0, "dropped")
	add(s.Outbox >= th.outbox, "outbox_backlog")
	add(s.Outbox > 0 && (s.LastAck.IsZero() || now.Sub(s.LastAck) > th.unacked) && now.Sub(s.LastRecord) > th.unacked, "unacked")
	add(s.KeySetVersion < sum.NewestKeySet, "key_set_behind")
	add(s.StatusVersion < sum.NewestStatus, "status_behind")
	add(s.TrustGap, "trust_gap")
	add(snapshotFilesTrouble(s.SnapshotFetch), "snapshot_files")
	add(s.Unsubscribed != "", "unsubscribed")
	add(s.TrustRefused+s.AcksRefused+s.Oversized > 0 || strings.Contains(s.SnapshotFetch, " refused, last: "), "refusals")
	return p
}

// snapshotFilesTrouble reports whether a gate's snapshot_fetch
// (snapfile.State.String) says no URL delivered: it fell back to the
// broker, or failed.
func snapshotFilesTrouble(f string) bool {
	for _, ph := range []snapfile.Phase{snapfile.FromBroker, snapfile.Failed} {
		if strings.Contains(f, ": "+ph.String()+" ") {
			return true
		}
	}
	return false
}

// print writes the summary: one line of counts, one of problems.
func (s fleetSummary) print(w io.Writer) {
	fmt.Fprintf(w, "%d gates: %d healthy, %d need attention; %d online; newest key set v%d, revocations v%d; %d records in outboxes\n",
		s.Gates, s.Healthy, s.Attention, s.Online, s.NewestKeySet, s.NewestStatus, s.OutboxRecords)
	var parts []string
	for _, p := range fleetProblems {
		if n := s.Problems[p]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", p, n))
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "problems: %s\n", strings.Join(parts, ", "))
	}
	if n := s.Problems["unverified"]; n > 0 {
		fmt.Fprintf(w, "%d UNVERIFIED: their status is not signed by the gate's enrolled key, so it says nothing\n", n)
	}
}

// printGates writes one row per gate.
func printGates(out io.Writer, gates []gateStatus, now time.Time) {
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return now.Sub(t).Round(time.Second).String()
	}
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "GATE\tVENUE\tSTATE\tKEY SET\tREVOCATIONS\tOUTBOX\tDROPPED\tLAST RECORD\tCLOCK\tSTATUS AGE\tVERSION\tPROBLEMS")
	for _, g := range gates {
		if !g.Verified {
			fmt.Fprintf(w, "%s\t-\tUNVERIFIED (%s)\t-\t-\t-\t-\t-\t-\t-\t-\tunverified\n", g.Gate, g.Unverified)
			continue
		}
		s := g.Status
		state := "offline"
		if s.Online {
			state = "online"
		}
		if s.Emergency != "" && s.Emergency != "normal" {
			state += " EMERGENCY"
		}
		rev := fmt.Sprintf("v%d", s.StatusVersion)
		if s.TrustGap {
			rev += " (gap)"
		}
		if s.SnapshotParts != "" {
			rev += " (collecting " + s.SnapshotParts + ")"
		}
		clock := "ok"
		if !s.ClockTrusted {
			clock = "UNTRUSTED"
		}
		problems := strings.Join(g.Problems, ",")
		if problems == "" {
			problems = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\tv%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", s.Gate, s.Venue, state, s.KeySetVersion, rev,
			s.Outbox, s.Dropped, ago(s.LastRecord), clock, ago(s.At), s.Version, problems)
	}
	w.Flush()
}

// dial connects with the broker flags.
func (b brokerFlags) dial() (mqtt.Client, wire.Topics, error) {
	conn, topics, err := b.conn()
	if err != nil {
		return nil, topics, err
	}
	cl, err := dial(conn)
	return cl, topics, err
}

// heldRoster returns the roster retained on the broker, nil if none.
func heldRoster(cl mqtt.Client, topics wire.Topics, quiet time.Duration) ([]byte, error) {
	held, err := retained(context.Background(), cl, topics.Roster(), quiet)
	if err != nil {
		return nil, err
	}
	return held[topics.Roster()], nil
}

// gateStatus is a gate's status as fleet shows it: verified against the
// roster, or why not.
type gateStatus struct {
	wire.Status
	Verified   bool     `json:"verified"`
	Unverified string   `json:"unverified,omitempty"`
	Problems   []string `json:"problems"`
}
