package main

import (
	"context"
	"fmt"
	"os"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/sync/wire"
	"wicket/verifier"
)

// cmdPublish publishes signed trust documents to the fleet: the key set
// and snapshots retained on their topics, deltas retained on a topic of
// their own each, so a gate that was away finds the snapshot and every
// delta after it. A new snapshot clears the retained deltas it supersedes.
func cmdPublish(e env, args []string) error {
	fs := newFlags(e, "publish", "-broker URL -fleet F -roots ROOT.pub [-keyset FILE] [-batch FILE]... [-snapshot DIR]")
	bf := addBrokerFlags(fs, "publish")
	var roots, batches multiFlag
	fs.Var(&roots, "roots", "root public key the documents must verify with (repeat)")
	keyset := fs.String("keyset", "", "signed key set to publish")
	fs.Var(&batches, "batch", "signed batch (snapshot or delta) to publish (repeat; in version order)")
	snapDir := fs.String("snapshot", "", "directory of a multi-part snapshot (wicketctl snapshot -out), published part by part after the other documents; an interrupted publish resumes where it stopped")
	prog := fs.String("progress", "auto", "progress bar for -snapshot: auto (on a terminal), on or off")
	if err := parse(fs, args); err != nil {
		return err
	}
	conn, topics, err := bf.conn()
	if err != nil {
		return err
	}
	if len(roots) == 0 || (*keyset == "" && len(batches) == 0 && *snapDir == "") {
		return usagef("-roots and at least one of -keyset, -batch and -snapshot are required")
	}
	if *prog != "auto" && *prog != "on" && *prog != "off" {
		return usagef("-progress: auto, on or off")
	}
	var rk verifier.RootKeys
	for _, p := range roots {
		k, err := verifier.ReadPublicKeyFile(p)
		if err != nil {
			return fmt.Errorf("-roots %s: %w", p, err)
		}
		rk = append(rk, k)
	}
	// Verify everything before publishing anything.
	type doc struct {
		topic string
		raw   []byte
		b     *verifier.Batch
	}
	var docs []doc
	if *keyset != "" {
		raw, err := os.ReadFile(*keyset)
		if err != nil {
			return err
		}
		ks, err := rk.ParseKeySet(raw)
		if err != nil {
			return fmt.Errorf("-keyset %s: %w", *keyset, err)
		}
		docs = append(docs, doc{topics.KeySet(), raw, nil})
		fmt.Fprintf(e.stdout, "key set version %d (%d keys) → %s\n", ks.Version, len(ks.Keys), topics.KeySet())
	}
	var snap *partSet
	if *snapDir != "" {
		if snap, err = readPartSet(e, rk, *snapDir, *prog); err != nil {
			return err
		}
		if snap.single != "" {
			batches = append(batches, snap.single)
			snap = nil
		}
	}
	for _, p := range batches {
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		b, err := rk.ParseBatch(raw)
		if err != nil {
			return fmt.Errorf("-batch %s: %w", p, err)
		}
		topic := topics.Delta(b.Version)
		if b.Snapshot() {
			topic = topics.Snapshot()
		}
		docs = append(docs, doc{topic, raw, b})
		fmt.Fprintf(e.stdout, "batch version %d (base %d, %d entries) → %s\n", b.Version, b.Base, len(b.Entries), topic)
	}
	cl, err := dial(conn)
	if err != nil {
		return err
	}
	defer cl.Disconnect(250)
	for _, d := range docs {
		if err := waitToken(cl.Publish(d.topic, 1, true, d.raw)); err != nil {
			return fmt.Errorf("publish %s: %w", d.topic, err)
		}
		if d.b != nil && d.b.Snapshot() {
			if err := clearDeltas(e, cl, topics, d.b.Version); err != nil {
				return err
			}
			if err := clearParts(e, cl, topics, 0, d.b.Version); err != nil {
				return err
			}
		}
	}
	if snap != nil {
		if err := snap.publish(e, cl, conn.Broker, topics, *prog); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "published %d documents to %s\n", len(docs)+snap.count(), conn.Broker)
	return nil
}

// clearDeltas removes the retained deltas a snapshot supersedes.
func clearDeltas(e env, cl mqtt.Client, topics wire.Topics, snapshot uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	old, err := retained(ctx, cl, topics.AllDeltas(), time.Second)
	if err != nil {
		return err
	}
	n := 0
	for topic := range old {
		v, err := topics.DeltaVersion(topic)
		if err != nil || v > snapshot {
			continue
		}
		if err := waitToken(cl.Publish(topic, 1, true, []byte{})); err != nil {
			return fmt.Errorf("clear %s: %w", topic, err)
		}
		n++
	}
	if n > 0 {
		fmt.Fprintf(e.stdout, "cleared %d retained deltas superseded by snapshot %d\n", n, snapshot)
	}
	return nil
}
