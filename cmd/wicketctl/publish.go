package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/sync/mqttconn"
	"wicket/sync/wire"
	"wicket/verifier"
)

// cmdPublish publishes signed trust documents to the fleet: the key set
// and snapshots retained on their topics, deltas retained on a topic of
// their own each, so a gate that was away finds the snapshot and every
// delta after it. A new snapshot clears the retained deltas it supersedes.
//
// With -db it publishes what the authority's ledger holds (see
// publishLedger); otherwise the signed files given. Either way it first
// reads what the broker holds and refuses, publishing nothing, anything
// the fleet would ignore and a snapshot that drops statements still in
// force without a yes.
func cmdPublish(e env, args []string) error {
	fs := newFlags(e, "publish", "-broker URL -fleet F -roots ROOT.pub [-keyset FILE] [-batch FILE]... [-snapshot DIR] [-yes]\n"+
		"       wicketctl publish -db URL -root ROOT.key -broker URL -fleet F -roots ROOT.pub [-keyset FILE] [-new-snapshot [-adopt] [-yes]] [-dry-run]")
	bf := addBrokerFlags(fs, "publish")
	var roots, batches multiFlag
	fs.Var(&roots, "roots", "root public key the documents must verify with (repeat)")
	keyset := fs.String("keyset", "", "signed key set to publish")
	fs.Var(&batches, "batch", "signed batch (snapshot or delta) to publish (repeat; in version order)")
	snapDir := fs.String("snapshot", "", "directory of a multi-part snapshot (wicketctl snapshot -out), published part by part after the other documents; an interrupted publish resumes where it stopped")
	prog := fs.String("progress", "auto", "progress bar for -snapshot: auto (on a terminal), on or off")
	yes := fs.Bool("yes", false, "publish a snapshot even though it drops statements still in force (they are listed first)")
	lf := addLedgerFlags(fs)
	root := fs.String("root", "", "with -db: root private key that signs the batch")
	newSnap := fs.Bool("new-snapshot", false, "with -db: publish a snapshot of every statement in force instead of a delta")
	dryRun := fs.Bool("dry-run", false, "with -db: check against the broker and show the next batch and what it drops; sign, record and publish nothing")
	adopt := fs.Bool("adopt", false, "with -db -new-snapshot: record and carry the statements in force at the broker that the ledger lacks, instead of dropping them")
	if err := parse(fs, args); err != nil {
		return err
	}
	conn, topics, err := bf.conn()
	if err != nil {
		return err
	}
	ledger := lf.url() != ""
	switch {
	case len(roots) == 0:
		return usagef("-roots is required")
	case ledger && (len(batches) > 0 || *snapDir != ""):
		return usagef("-db publishes the batches the ledger makes: give it without -batch and -snapshot (or unset %s to publish files)", ledgerEnv)
	case !ledger && (*root != "" || *newSnap || *adopt):
		return usagef("-root, -new-snapshot and -adopt publish from the ledger: give -db URL too")
	case *dryRun && (!ledger || *keyset != ""):
		return usagef("-dry-run shows the ledger's next batch: give it with -db and without -keyset")
	case *adopt && !*newSnap:
		return usagef("-adopt goes with -new-snapshot: only a snapshot replaces what the broker holds")
	case !ledger && *keyset == "" && len(batches) == 0 && *snapDir == "":
		return usagef("give -db URL to publish from the ledger, or at least one of -keyset, -batch and -snapshot")
	case *prog != "auto" && *prog != "on" && *prog != "off":
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
	pub := &publisher{e: e, conn: conn, topics: topics, rk: rk, yes: *yes, prog: *prog, dryRun: *dryRun}
	if ledger {
		return publishLedger(lf, pub, *root, *keyset, *newSnap, *adopt)
	}
	// Verify everything before publishing anything.
	if *keyset != "" {
		raw, err := os.ReadFile(*keyset)
		if err != nil {
			return err
		}
		if err := pub.addKeySet(raw, "-keyset "+*keyset); err != nil {
			return err
		}
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
		if err := pub.addBatch(raw, "-batch "+p); err != nil {
			return err
		}
	}
	pub.parts = snap
	return pub.run()
}

// publisher publishes verified documents once the broker's holdings say
// the fleet will take them.
type publisher struct {
	e      env
	conn   mqttconn.Conn
	topics wire.Topics
	rk     verifier.RootKeys
	yes    bool
	dryRun bool // with -db: plan and check only
	prog   string
	docs   []pubDoc
	parts  *partSet // a multi-part snapshot, published after docs
	tmp    []string // directories to remove when done
}

type pubDoc struct {
	topic string
	raw   []byte
	ks    *verifier.KeySet
	b     *verifier.Batch
}

func (p *publisher) addKeySet(raw []byte, what string) error {
	ks, err := p.rk.ParseKeySet(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	p.docs = append(p.docs, pubDoc{p.topics.KeySet(), raw, ks, nil})
	fmt.Fprintf(p.e.stdout, "key set version %d (%d keys) → %s\n", ks.Version, len(ks.Keys), p.topics.KeySet())
	return nil
}

func (p *publisher) addBatch(raw []byte, what string) error {
	b, err := p.rk.ParseBatch(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	topic := p.topics.Delta(b.Version)
	if b.Snapshot() {
		topic = p.topics.Snapshot()
	}
	p.docs = append(p.docs, pubDoc{topic, raw, nil, b})
	fmt.Fprintf(p.e.stdout, "batch version %d (base %d, %d entries) → %s\n", b.Version, b.Base, len(b.Entries), topic)
	return nil
}

// run connects, checks every document against what the broker holds
// (refusing all of them if one would be ignored), then publishes them in
// order.
func (p *publisher) run() error {
	cl, err := dial(p.conn)
	if err != nil {
		return err
	}
	defer cl.Disconnect(250)
	if err := p.check(cl); err != nil {
		return err
	}
	return p.send(cl)
}

// send publishes the documents in order, retained, then the parts of a
// multi-part snapshot, clearing what a snapshot supersedes.
func (p *publisher) send(cl mqtt.Client) error {
	for _, d := range p.docs {
		if err := waitToken(cl.Publish(d.topic, 1, true, d.raw)); err != nil {
			return fmt.Errorf("publish %s: %w", d.topic, err)
		}
		if d.b != nil && d.b.Snapshot() {
			if err := clearDeltas(p.e, cl, p.topics, d.b.Version); err != nil {
				return err
			}
			if err := clearParts(p.e, cl, p.topics, 0, d.b.Version); err != nil {
				return err
			}
			if err := clearManifest(p.e, cl, p.rk, p.topics, d.b.Version); err != nil {
				return err
			}
		}
	}
	if p.parts != nil {
		if err := p.parts.publish(p.e, cl, brokerName(p.conn), p.topics, p.prog); err != nil {
			return err
		}
	}
	fmt.Fprintf(p.e.stdout, "published %d documents to %s\n", len(p.docs)+p.parts.count(), brokerName(p.conn))
	return nil
}

// check reads the broker's retained trust documents and refuses what the
// fleet would ignore, and a snapshot that drops statements in force
// unless the operator says yes.
func (p *publisher) check(cl mqtt.Client) error {
	snapshot := p.parts != nil
	for _, d := range p.docs {
		snapshot = snapshot || (d.b != nil && d.b.Snapshot())
	}
	ft, err := readFleetTrust(cl, p.topics, p.rk, snapshot)
	if err != nil {
		return err
	}
	if len(ft.Ignored) > 0 {
		fmt.Fprintf(p.e.stderr, "wicketctl publish: ignoring retained documents the roots do not verify: %s\n", strings.Join(ft.Ignored, ", "))
	}
	if ft.Unlisted != "" {
		fmt.Fprintf(p.e.stderr, "wicketctl publish: %s\n", ft.Unlisted)
	}
	now := time.Now()
	batches := make([]*verifier.Batch, 0, len(p.docs)+1)
	for _, d := range p.docs {
		switch {
		case d.ks != nil:
			if err := ft.checkKeySet(d.ks.Version); err != nil {
				return err
			}
		case d.b != nil:
			batches = append(batches, d.b)
		}
	}
	if p.parts != nil {
		whole, err := p.parts.join()
		if err != nil {
			return err
		}
		batches = append(batches, whole)
	}
	for _, b := range batches {
		if err := ft.checkBatch(b.Version, b.Base); err != nil {
			return err
		}
		if b.Snapshot() {
			if err := confirmDrops(p.e, fmt.Sprintf("snapshot %d", b.Version), ft.drops(b.Entries, now), p.yes); err != nil {
				return err
			}
		}
		ft.apply(b)
	}
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
