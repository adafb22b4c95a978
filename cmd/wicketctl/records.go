package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"wicket/sync/collector"
)

func cmdRecords(e env, args []string) error {
	if len(args) == 0 || args[0] != "purge" {
		return usagef("want a subcommand: purge")
	}
	return recordsPurge(e, args[1:])
}

// recordsPurge removes the access records of the days past an age. It
// says what it would remove and removes nothing unless given -yes.
func recordsPurge(e env, args []string) error {
	fs := newFlags(e, "records purge", "-older-than DAYSd [-db URL] [-yes]")
	db := fs.String("db", defaultCollectDB, "PostgreSQL URL, as the database's owner (the collector's role may not drop partitions)")
	olderThan := fs.String("older-than", "", "remove the records of the UTC days before today minus this many days, e.g. 90d")
	yes := fs.Bool("yes", false, "remove them; without it, only say what would be removed")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	days, err := parseDays(*olderThan)
	if err != nil {
		return usagef("-older-than: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pool, err := pgxpool.New(ctx, *db)
	if err != nil {
		return usagef("-db: %v", err)
	}
	defer pool.Close()
	plan, err := collector.PlanPurge(ctx, pool, time.Now().UTC().AddDate(0, 0, -days))
	if err != nil {
		return err
	}
	verb := "would remove"
	if *yes {
		verb = "removing"
	}
	fmt.Fprintf(e.stdout, "%s the access records timed before %s (UTC): %d records\n",
		verb, plan.Before.Format(time.DateOnly), plan.Rows())
	for _, p := range plan.Partitions {
		fmt.Fprintf(e.stdout, "  day %s: %d records (partition %s)\n", p.Day.Format(time.DateOnly), p.Rows, p.Name)
	}
	fmt.Fprintf(e.stdout, "  default partition (times outside the partitioned days): %d records\n", plan.DefaultRows)
	if !*yes {
		fmt.Fprintln(e.stdout, "nothing removed; run again with -yes to remove them (this cannot be undone)")
		return nil
	}
	removed, err := plan.Apply(ctx, pool)
	fmt.Fprintf(e.stdout, "removed %d records\n", removed)
	return err
}

// parseDays parses an age in days, "90d".
func parseDays(s string) (int, error) {
	num, ok := strings.CutSuffix(s, "d")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n < 1 || n > 100*366 {
		return 0, fmt.Errorf("%q: want a number of days from 1, like 90d", s)
	}
	return n, nil
}
