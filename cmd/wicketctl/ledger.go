package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5/pgxpool"

	"wicket/authority/ledger"
	"wicket/decoder"
	"wicket/sync/wire"
	"wicket/verifier"
)

// ledgerEnv names the ledger database when -db is not given.
const ledgerEnv = "WICKET_AUTHORITY_DB"

// ledgerFlags locate the authority's ledger.
type ledgerFlags struct{ db *string }

func addLedgerFlags(fs *flag.FlagSet) ledgerFlags {
	return ledgerFlags{db: fs.String("db", "", "PostgreSQL URL of the authority's ledger (default $"+ledgerEnv+"), e.g. "+defaultCollectDB)}
}

func (lf ledgerFlags) url() string {
	if *lf.db != "" {
		return *lf.db
	}
	return os.Getenv(ledgerEnv)
}

// open connects to the ledger, brings its schema up to date and returns
// the fleet's ledger and a function that closes the connection.
func (lf ledgerFlags) open(ctx context.Context, fleet string) (*ledger.Ledger, func(), error) {
	if err := wire.ValidName(fleet); err != nil {
		return nil, nil, usagef("-fleet: %v", err)
	}
	pool, err := pgxpool.New(ctx, lf.url())
	if err != nil {
		return nil, nil, usagef("-db: %v", err)
	}
	if err := ledger.Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("ledger: %w", err)
	}
	return ledger.New(pool, fleet), pool.Close, nil
}

// commit sends a revoke's or override's statements their way: into the
// ledger (-db), or signed into a file (-out, with -state).
func (b batchFlags) commit(e env, entries []verifier.Entry) error {
	switch {
	case *b.out != "" && *b.ledger.db != "":
		return usagef("give -db (record in the ledger) or -out (sign a file), not both")
	case *b.out != "":
		return b.sign(e, entries)
	case b.ledger.url() == "":
		return usagef("give -db URL (or set %s) to record in the authority's ledger, or -out FILE -state FILE -root KEY to sign a batch file", ledgerEnv)
	}
	for _, f := range []string{"root", "version", "base", "snapshot", "yes", "state"} {
		if b.given(f) {
			return usagef("-%s signs a file (with -out); with -db, wicketctl publish -db chooses the version and base and signs", f)
		}
	}
	if len(entries) == 0 {
		return usagef("no entries")
	}
	ctx := context.Background()
	l, done, err := b.ledger.open(ctx, *b.fleet)
	if err != nil {
		return err
	}
	defer done()
	ids, err := l.Record(ctx, entries)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "recorded %d statement(s) for fleet %s (ledger ids %d to %d); wicketctl publish -db publishes them with the next batch\n",
		len(ids), *b.fleet, ids[0], ids[len(ids)-1])
	return nil
}

// publishLedger publishes from the ledger: first any version signed but
// never acknowledged by the broker (the same bytes again), then a key set
// if given, then the next batch: a delta of the pending statements on the
// last batch, or with snapshot every statement in force. It checks against
// what the broker holds before it signs, so a refusal writes nothing.
//
// With adopt (a snapshot only), the statements in force at the broker that
// the ledger lacks (published around it) are recorded and carried instead
// of dropped.
func publishLedger(lf ledgerFlags, pub *publisher, rootPath, keysetPath string, snapshot, adopt bool) error {
	if rootPath == "" && (keysetPath == "" || snapshot) {
		return usagef("-root is required with -db: publish signs the next batch with it")
	}
	ctx := context.Background()
	l, done, err := lf.open(ctx, pub.topics.Fleet)
	if err != nil {
		return err
	}
	defer done()
	defer func() {
		for _, d := range pub.tmp {
			os.RemoveAll(d)
		}
	}()
	cl, err := dial(pub.conn)
	if err != nil {
		return err
	}
	defer cl.Disconnect(250)
	ft, err := readFleetTrust(cl, pub.topics, pub.rk, snapshot)
	if err != nil {
		return err
	}
	r := &ledgerRun{ctx: ctx, l: l, pub: pub, cl: cl, ft: ft}
	for _, kind := range []string{ledger.KindKeySet, ledger.KindBatch} {
		replaced := (kind == ledger.KindBatch && snapshot) || (kind == ledger.KindKeySet && keysetPath != "")
		if stop, err := r.resume(kind, replaced); stop || err != nil {
			return err
		}
	}
	if keysetPath != "" {
		if err := r.keySet(keysetPath); err != nil {
			return err
		}
	}
	if rootPath == "" {
		return nil // a key set alone; batches need -root
	}
	signer, err := readSigner(rootPath)
	if err != nil {
		return err
	}
	nb, err := r.plan(snapshot, adopt)
	if err != nil || nb == nil {
		return err
	}
	return r.publish(signer, nb)
}

// ledgerRun is one publish from the ledger over one broker connection;
// ft follows what the broker holds as documents go out.
type ledgerRun struct {
	ctx context.Context
	l   *ledger.Ledger
	pub *publisher
	cl  mqtt.Client
	ft  *fleetTrust
}

// resume deals with a version of kind signed earlier whose publish was
// not acknowledged: it sends the same bytes again if the fleet will take
// them, marks it if the broker already has them, leaves it to be replaced
// (replaced: a new key set or snapshot follows), or refuses. stop is true
// after a dry run's note.
func (r *ledgerRun) resume(kind string, replaced bool) (stop bool, err error) {
	e, ft := r.pub.e, r.ft
	v, docs, err := r.l.Unpublished(r.ctx, kind)
	if err != nil || v == nil {
		return false, err
	}
	fmt.Fprintf(e.stdout, "%s %d was signed at %s but its publish was not acknowledged\n", kind, v.Version, v.SignedAt.UTC().Format(time.RFC3339))
	if r.pub.dryRun {
		fmt.Fprintf(e.stdout, "dry run: publish deals with %s %d first; nothing signed or published\n", kind, v.Version)
		return true, nil
	}
	held := ft.KeySet
	if kind == ledger.KindBatch {
		held = ft.Top
	}
	var gap error
	if kind == ledger.KindBatch && held < v.Version {
		gap = ft.checkBatch(v.Version, v.Base)
	}
	switch {
	case held < v.Version && gap == nil:
		fmt.Fprintf(e.stdout, "publishing %s %d again\n", kind, v.Version)
		if err := r.send(kind, v.Version, docs); err != nil {
			return false, err
		}
	case ft.holds(r.pub.topics, kind == ledger.KindKeySet, v.Version, docs):
		fmt.Fprintf(e.stdout, "the broker already holds %s %d: the earlier publish got through\n", kind, v.Version)
	case replaced:
		fmt.Fprintf(e.stdout, "the broker's %s %d does not fit %s %d; it is left unpublished and the new one replaces it\n", kind, held, kind, v.Version)
		return false, nil
	case gap != nil:
		return false, fmt.Errorf("%w; the snapshot from the ledger (-new-snapshot) carries the statements of batch %d", gap, v.Version)
	default:
		what := "publish a snapshot from the ledger (-new-snapshot): it carries the statements of batch " + fmt.Sprint(v.Version)
		if kind == ledger.KindKeySet {
			what = "publish a key set with a version above " + fmt.Sprint(held) + " (-keyset)"
		}
		return false, fmt.Errorf("%w: the ledger's %s %d never reached the broker, which holds %s %d from elsewhere, so gates would ignore it; %s",
			errRefused, kind, v.Version, kind, held, what)
	}
	if kind == ledger.KindBatch {
		ft.Top = max(ft.Top, v.Version)
	} else {
		ft.KeySet = max(ft.KeySet, v.Version)
	}
	return false, r.l.MarkPublished(r.ctx, kind, v.Version)
}

// send publishes one version's documents.
func (r *ledgerRun) send(kind string, version uint64, docs [][]byte) error {
	if err := r.pub.load(kind, version, docs); err != nil {
		return err
	}
	err := r.pub.send(r.cl)
	r.pub.docs, r.pub.parts = nil, nil
	return err
}

// keySet records a key set's version in the ledger and publishes it,
// refusing one the fleet would ignore or the ledger has signed.
func (r *ledgerRun) keySet(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	ks, err := r.pub.rk.ParseKeySet(raw)
	if err != nil {
		return fmt.Errorf("-keyset %s: %w", path, err)
	}
	if err := r.ft.checkKeySet(ks.Version); err != nil {
		return err
	}
	last, err := r.l.Last(r.ctx, ledger.KindKeySet)
	if err != nil {
		return err
	}
	if ks.Version <= last.Version {
		return fmt.Errorf("%w: key set version %d is not above version %d in the ledger, and gates that have %d ignore it; sign the key set with -version %d or higher",
			errRefused, ks.Version, last.Version, last.Version, last.Version+1)
	}
	err = r.l.Sign(r.ctx, ledger.Signed{Version: ledger.Version{Kind: ledger.KindKeySet, Version: ks.Version, Entries: len(ks.Keys)}, Docs: [][]byte{raw}})
	if errors.Is(err, ledger.ErrVersionUsed) {
		return fmt.Errorf("%w: %v: the ledger has published that key set version before; sign the key set with a higher -version", errRefused, err)
	}
	if err != nil {
		return err
	}
	if err := r.send(ledger.KindKeySet, ks.Version, [][]byte{raw}); err != nil {
		return fmt.Errorf("%w; the ledger keeps key set %d: run the same command again to publish it", err, ks.Version)
	}
	r.ft.KeySet = ks.Version
	return r.l.MarkPublished(r.ctx, ledger.KindKeySet, ks.Version)
}

// nextBatch is the batch a publish is about to sign.
type nextBatch struct {
	b                verifier.Batch
	carried, dropped []int64          // ledger ids carried, and dropped as expired
	adopted          []verifier.Entry // from the broker, not yet in the ledger
}

// plan works out the next batch from the ledger and checks it against the
// broker, showing (and for a snapshot, confirming) what it drops. It
// returns nil, saying so, when a delta would be empty; it writes nothing.
func (r *ledgerRun) plan(snapshot, adopt bool) (*nextBatch, error) {
	ctx, ft, fleet := r.ctx, r.ft, r.pub.topics.Fleet
	last, err := r.l.Last(ctx, ledger.KindBatch)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	nb := &nextBatch{b: verifier.Batch{Version: last.Version + 1, IssuedAt: now}}
	var expired []verifier.Entry
	if snapshot {
		open, err := r.l.Open(ctx)
		if err != nil {
			return nil, err
		}
		for _, en := range open {
			if en.Expires <= now.Unix() {
				nb.dropped, expired = append(nb.dropped, en.ID), append(expired, en.Entry)
				continue
			}
			nb.carried, nb.b.Entries = append(nb.carried, en.ID), append(nb.b.Entries, en.Entry)
		}
		// A snapshot replaces whatever the broker holds, from the ledger:
		// the way back after a publish around the ledger.
		nb.b.Version = max(last.Version, ft.Top) + 1
	} else {
		if last.Version == 0 {
			return nil, fmt.Errorf("%w: the ledger has no batch for fleet %s yet, so there is nothing a delta could follow; the first batch is a snapshot: run again with -new-snapshot", errRefused, fleet)
		}
		pending, err := r.l.Pending(ctx)
		if err != nil {
			return nil, err
		}
		if len(pending) == 0 {
			fmt.Fprintf(r.pub.e.stdout, "nothing to publish: no statement recorded since batch %d\n", last.Version)
			return nil, nil
		}
		nb.b.Base = last.Version
		for _, en := range pending {
			nb.carried, nb.b.Entries = append(nb.carried, en.ID), append(nb.b.Entries, en.Entry)
		}
		switch {
		case ft.Top > last.Version:
			return nil, fmt.Errorf("%w: the broker holds batch %d, above the ledger's last batch %d for fleet %s: something published around the ledger (a file, another ledger); find out what before publishing, and publish a snapshot from the ledger (-new-snapshot) to make it the fleet's truth again",
				errRefused, ft.Top, last.Version, fleet)
		case ft.Top < last.Version:
			return nil, fmt.Errorf("%w: the broker's latest batch is %d but the ledger's is %d, so gates that follow the broker would hold delta %d forever (was the broker's retained data lost?); publish a snapshot: run again with -new-snapshot",
				errRefused, ft.Top, last.Version, nb.b.Version)
		}
	}
	if err := ft.checkBatch(nb.b.Version, nb.b.Base); err != nil {
		return nil, err
	}
	if adopt {
		nb.adopted = ft.drops(nb.b.Entries, now)
		nb.b.Entries = append(nb.b.Entries, nb.adopted...)
	}
	if snapshot {
		drops := append(ft.drops(nb.b.Entries, now), expired...)
		if err := confirmDrops(r.pub.e, fmt.Sprintf("snapshot %d", nb.b.Version), drops, r.pub.yes || r.pub.dryRun); err != nil {
			return nil, err
		}
	}
	return nb, nil
}

// publish signs the planned batch, records it in the ledger, publishes it
// and marks it published (a dry run stops before signing).
func (r *ledgerRun) publish(signer *decoder.Signer, nb *nextBatch) error {
	e, b := r.pub.e, nb.b
	if r.pub.dryRun {
		fmt.Fprintf(e.stdout, "dry run: would sign batch version %d (%s, %d entries, %d adopted from the broker); nothing signed or published\n",
			b.Version, batchKind(b.Base), len(b.Entries), len(nb.adopted))
		return nil
	}
	if len(nb.adopted) > 0 {
		ids, err := r.l.Record(r.ctx, nb.adopted)
		if err != nil {
			return err
		}
		nb.carried = append(nb.carried, ids...)
		fmt.Fprintf(e.stdout, "adopted %d statement(s) the broker holds that the ledger lacked\n", len(nb.adopted))
	}
	docs, err := signBatchDocs(signer, b)
	if err != nil {
		return err
	}
	err = r.l.Sign(r.ctx, ledger.Signed{
		Version: ledger.Version{Kind: ledger.KindBatch, Version: b.Version, Base: b.Base, Entries: len(b.Entries)},
		Docs:    docs, Carried: nb.carried, Dropped: nb.dropped,
	})
	if errors.Is(err, ledger.ErrVersionUsed) {
		return fmt.Errorf("%w: %v: another publish signed it meanwhile; run again", errRefused, err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "batch version %d (%s, %d entries) signed and recorded in the ledger\n", b.Version, batchKind(b.Base), len(b.Entries))
	if err := r.send(ledger.KindBatch, b.Version, docs); err != nil {
		return fmt.Errorf("%w; the ledger keeps batch %d: run the same command again to publish it", err, b.Version)
	}
	return r.l.MarkPublished(r.ctx, ledger.KindBatch, b.Version)
}

// signBatchDocs signs a batch as one document, or as the parts of a
// multi-part snapshot when it has more entries than one part holds.
func signBatchDocs(signer *decoder.Signer, b verifier.Batch) ([][]byte, error) {
	if !b.Snapshot() || len(b.Entries) <= defaultPartEntries {
		doc, err := verifier.SignBatch(signer, b)
		return [][]byte{doc}, err
	}
	parts := (len(b.Entries) + defaultPartEntries - 1) / defaultPartEntries
	if parts > verifier.MaxSnapshotParts {
		return nil, fmt.Errorf("snapshot %d: %d entries make %d parts, over %d", b.Version, len(b.Entries), parts, verifier.MaxSnapshotParts)
	}
	docs := make([][]byte, 0, parts)
	for p := range parts {
		part := b
		part.Entries = b.Entries[p*defaultPartEntries : min((p+1)*defaultPartEntries, len(b.Entries))]
		part.Part, part.Parts = uint32(p), uint32(parts)
		doc, err := verifier.SignBatch(signer, part)
		if err != nil {
			return nil, fmt.Errorf("snapshot %d part %d: %w", b.Version, p, err)
		}
		docs = append(docs, doc)
	}
	return docs, nil
}

// load queues a version's documents for send: a key set, a batch, or the
// parts of a multi-part snapshot (written to a directory of their own,
// the form publish -snapshot takes).
func (p *publisher) load(kind string, version uint64, docs [][]byte) error {
	switch {
	case kind == ledger.KindKeySet:
		return p.addKeySet(docs[0], "ledger key set")
	case len(docs) == 1:
		return p.addBatch(docs[0], fmt.Sprintf("ledger batch %d", version))
	}
	dir, err := os.MkdirTemp("", fmt.Sprintf("wicket-snapshot-%d-", version))
	if err != nil {
		return err
	}
	p.tmp = append(p.tmp, dir)
	for i, d := range docs {
		if err := writeFileAtomic(filepath.Join(dir, snapshotFile(version, i, len(docs))), d, 0o600); err != nil {
			return err
		}
	}
	ps, err := readPartSet(p.e, p.rk, dir, p.prog)
	if err != nil {
		return err
	}
	p.parts = ps
	return nil
}
