package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"

	"wicket/sync/collector"
	"wicket/sync/wire"
)

// defaultCollectDB is a local PostgreSQL with trust authentication.
const defaultCollectDB = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

func cmdCollect(e env, args []string) error {
	fs := newFlags(e, "collect", "-fleet NAME -id ID -identity FILE.key -roots ROOT.pub [-roster FILE] [-broker URL] [-db URL] [-group NAME] [-shard i/N] [-client-id ID] [TLS and login flags] | -migrate [-db URL]")
	bf := addBrokerFlags(fs, "collector")
	db := fs.String("db", defaultCollectDB, "PostgreSQL URL")
	group := fs.String("group", "collectors", `shared-subscription group; collectors of one group split the records ("" subscribes plainly and gets every message)`)
	shard := fs.String("shard", "", `take only slice i of N of the records shards (0/2 and 1/2 for two collectors): for brokers without shared subscriptions, such as NATS (use with -group ""); a replacement runs the same slice with the same -client-id`)
	migrateOnly := fs.Bool("migrate", false, "create or upgrade the records schema and exit; run as the database's owner, the collector's own role may not (see collector-role.sql)")
	id := fs.String("id", "", "this collector's id in the fleet's roster (role collector)")
	identity := fs.String("identity", "", "this collector's Ed25519 key (wicketctl keygen -alg EdDSA; the .pub goes in the roster); it signs the acks")
	var roots multiFlag
	fs.Var(&roots, "roots", "root public key the roster verifies with (repeat)")
	rosterFile := fs.String("roster", "", "signed roster to start with (default: the one retained on the broker)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *migrateOnly {
		return migrateDB(e, *db)
	}
	var slice wire.Slice
	if *shard != "" {
		var err error
		if slice, err = wire.ParseSlice(*shard); err != nil {
			return usagef("-shard: %v", err)
		}
	}
	if *identity == "" || len(roots) == 0 {
		return usagef("-identity and -roots are required: records are stored only when signed by an enrolled gate, and acks are signed")
	}
	key, err := wire.ReadIdentity(*identity)
	if err != nil {
		return fmt.Errorf("-identity: %w", err)
	}
	rk, err := loadRoots(roots)
	if err != nil {
		return err
	}
	var roster []byte
	if *rosterFile != "" {
		if roster, err = os.ReadFile(*rosterFile); err != nil {
			return fmt.Errorf("-roster: %w", err)
		}
	}
	conn, _, err := bf.conn()
	if err != nil {
		return err
	}
	var password string
	if conn.PasswordFile != "" {
		data, err := os.ReadFile(conn.PasswordFile)
		if err != nil {
			return fmt.Errorf("-password-file: %w", err)
		}
		password = strings.TrimRight(string(data), "\r\n")
	}
	poolCfg, err := pgxpool.ParseConfig(*db)
	if err != nil {
		return usagef("-db: %v", err)
	}
	// Every worker holds a connection while it writes.
	poolCfg.MaxConns = max(poolCfg.MaxConns, collector.DefaultWorkers+1)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return fmt.Errorf("-db: %w", err)
	}
	defer pool.Close()
	c, err := collector.New(collector.Config{
		Broker: conn.Broker, Brokers: conn.Brokers, Fleet: *bf.fleet, ClientID: conn.ClientID, Group: *group, Slice: slice,
		Username: conn.Username, Password: password, CAFile: conn.CAFile, CertFile: conn.CertFile, KeyFile: conn.KeyFile,
		ID: *id, Key: key, Roots: rk, Roster: roster,
	}, collector.NewWriter(pool, log), log)
	if err != nil {
		return usagef("%v", err)
	}
	if err := collector.Migrate(ctx, pool); err != nil {
		return err
	}
	log.Info("collecting; stop with SIGINT or SIGTERM", "fleet", *bf.fleet, "broker", brokerName(conn), "group", *group, "shard", slice.String(),
		"client_id", conn.ClientID, "db_host", poolCfg.ConnConfig.Host, "database", poolCfg.ConnConfig.Database)
	return c.Run(ctx)
}

// migrateDB brings the schema of the database at dbURL up to date.
func migrateDB(e env, dbURL string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return usagef("-db: %v", err)
	}
	defer pool.Close()
	if err := collector.Migrate(ctx, pool); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "schema of database %s is up to date\n", pool.Config().ConnConfig.Database)
	return nil
}
