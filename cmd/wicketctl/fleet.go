package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"wicket/sync/wire"
)

// cmdFleet lists the gates of a fleet from their retained status.
func cmdFleet(e env, args []string) error {
	fs := newFlags(e, "fleet", "-broker URL -fleet F [-json] [-wait 2s]")
	bf := addBrokerFlags(fs, "fleet")
	asJSON := fs.Bool("json", false, "print JSON")
	quiet := fs.Duration("wait", 2*time.Second, "stop after this long without a new status")
	if err := parse(fs, args); err != nil {
		return err
	}
	conn, topics, err := bf.conn()
	if err != nil {
		return err
	}
	cl, err := dial(conn)
	if err != nil {
		return err
	}
	defer cl.Disconnect(250)
	msgs, err := retained(context.Background(), cl, topics.AllStatus(), *quiet)
	if err != nil {
		return err
	}
	var gates []wire.Status
	for topic, b := range msgs {
		var s wire.Status
		if len(b) == 0 || json.Unmarshal(b, &s) != nil {
			fmt.Fprintf(e.stderr, "wicketctl fleet: unreadable status on %s\n", topic)
			continue
		}
		gates = append(gates, s)
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
	online := 0
	for _, s := range gates {
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
	fmt.Fprintf(e.stdout, "%d gates, %d online\n", len(gates), online)
	return nil
}
