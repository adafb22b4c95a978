package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/sync/wire"
	"wicket/verifier"
)

// cmdFleet lists the gates of a fleet from their retained status.
func cmdFleet(e env, args []string) error {
	fs := newFlags(e, "fleet", "-broker URL -fleet F -roots ROOT.pub [-json] [-wait 2s]")
	bf := addBrokerFlags(fs, "fleet")
	var roots multiFlag
	fs.Var(&roots, "roots", "root public key the fleet's roster verifies with (repeat); without it no status can be verified")
	asJSON := fs.Bool("json", false, "print JSON")
	quiet := fs.Duration("wait", 2*time.Second, "stop after this long without a new status")
	if err := parse(fs, args); err != nil {
		return err
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
		}
		gates = append(gates, gateStatus{Status: s, Verified: problem == "", Unverified: problem})
	}
	sort.Slice(gates, func(i, j int) bool { return gates[i].Gate < gates[j].Gate })
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(gates)
	}
	now := time.Now()
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return now.Sub(t).Round(time.Second).String()
	}
	w := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "GATE\tVENUE\tSTATE\tKEY SET\tREVOCATIONS\tOUTBOX\tDROPPED\tLAST RECORD\tCLOCK\tSTATUS AGE\tVERSION")
	online, unverified := 0, 0
	for _, g := range gates {
		if !g.Verified {
			// Nothing of an unverified status is shown as fact.
			unverified++
			fmt.Fprintf(w, "%s\t-\tUNVERIFIED (%s)\t-\t-\t-\t-\t-\t-\t-\t-\n", g.Gate, g.Unverified)
			continue
		}
		s := g.Status
		state := "offline"
		if s.Online {
			state = "online"
			online++
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
		fmt.Fprintf(w, "%s\t%s\t%s\tv%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", s.Gate, s.Venue, state, s.KeySetVersion, rev,
			s.Outbox, s.Dropped, ago(s.LastRecord), clock, ago(s.At), s.Version)
	}
	w.Flush()
	fmt.Fprintf(e.stdout, "%d gates, %d online", len(gates), online)
	if unverified > 0 {
		fmt.Fprintf(e.stdout, ", %d UNVERIFIED: their status is not signed by the gate's enrolled key, so it says nothing", unverified)
	}
	fmt.Fprintln(e.stdout)
	return nil
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
	Verified   bool   `json:"verified"`
	Unverified string `json:"unverified,omitempty"`
}
