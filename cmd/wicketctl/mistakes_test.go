package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5/pgxpool"

	"wicket/authority/ledger"
	"wicket/pgmigrate/pgtest"
	"wicket/sync/mqtttest"
	"wicket/sync/wire"
	"wicket/verifier"
)

// authority starts a Mosquitto, makes a throw-away ledger database (with
// a pool on it) and a root key pair dir/root.{key,pub}.
func authority(t *testing.T) (b *mqtttest.Broker, db string, pool *pgxpool.Pool, dir, stem string) {
	t.Helper()
	b = mqtttest.StartMosquitto(t)
	db = pgtest.Database(t, "wicket_authority_test")
	dir = t.TempDir()
	stem = filepath.Join(dir, "root")
	if rc, _, errs := run(t, "keygen", "-out", stem); rc != exitOK {
		t.Fatal(errs)
	}
	pool, err := pgxpool.New(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return b, db, pool, dir, stem
}

// TestOperatorMistakes runs the authority's usual mistakes against a real
// Mosquitto and PostgreSQL: each is refused with a message saying what to
// do, the broker's retained trust topics stay as they were and nothing is
// written (ledger rows, files, state). The ledger's own path is exercised
// in between, so the refusals meet a fleet with history.
func TestOperatorMistakes(t *testing.T) {
	b, db, pool, dir, stem := authority(t)
	topics := wire.Topics{Fleet: "f1"}
	count := func(table string) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		return n
	}
	ids := []string{
		"7f3a91c20b1d2e3f405162738495a6b7", "00112233445566778899aabbccddeeff",
		"f0e1d2c3b4a5968778695a4b3c2d1e0f", "0a0b0c0d0e0f10111213141516171819",
	}
	pubLedger := func(extra ...string) (int, string, string) {
		return run(t, append([]string{"publish", "-db", db, "-root", stem + ".key", "-roots", stem + ".pub",
			"-broker", b.URL(), "-fleet", "f1", "-client-id", "pub-test"}, extra...)...)
	}
	pubFile := func(file string, extra ...string) (int, string, string) {
		return run(t, append([]string{"publish", "-roots", stem + ".pub", "-broker", b.URL(), "-fleet", "f1",
			"-client-id", "pub-test", "-batch", file}, extra...)...)
	}
	ok := func(what string, rc int, out, errs string, want string) {
		t.Helper()
		if rc != exitOK || !strings.Contains(out, want) {
			t.Fatalf("%s: exit %d\n%s\n%s\nwant success saying %q", what, rc, out, errs, want)
		}
	}
	// refused runs a mistake and checks its message, the broker and the
	// ledger's row counts before and after.
	refused := func(what string, wantRC int, want string, do func() (int, string, string)) {
		t.Helper()
		before := retainedOn(t, b.URL(), topics.AllTrust())
		rows := []int{count("wicket_authority_versions"), count("wicket_authority_entries"), count("wicket_authority_documents")}
		rc, out, errs := do()
		if rc != wantRC || !strings.Contains(errs, want) {
			t.Errorf("%s: exit %d, stderr %q (stdout %q); want exit %d and %q", what, rc, errs, out, wantRC, want)
		}
		after := retainedOn(t, b.URL(), topics.AllTrust())
		if len(after) != len(before) {
			t.Errorf("%s: broker holds %v; held %v before", what, keys(after), keys(before))
		}
		for topic, raw := range before {
			if !bytes.Equal(after[topic], raw) {
				t.Errorf("%s: %s changed on the broker", what, topic)
			}
		}
		if now := []int{count("wicket_authority_versions"), count("wicket_authority_entries"), count("wicket_authority_documents")}; !slices.Equal(now, rows) {
			t.Errorf("%s: ledger rows (versions, entries, documents) %v; were %v", what, now, rows)
		}
	}

	// A key set through the ledger, then the same version again.
	if rc, _, errs := run(t, "keygen", "-out", filepath.Join(dir, "gx")); rc != exitOK {
		t.Fatal(errs)
	}
	ks := filepath.Join(dir, "ks.cose")
	if rc, _, errs := run(t, "keyset", "-root", stem+".key", "-version", "1", "-out", ks, "-key", "pub="+filepath.Join(dir, "gx.pub")+",issuer=GX,kinds=printed"); rc != exitOK {
		t.Fatal(errs)
	}
	rc, out, errs := run(t, "publish", "-db", db, "-roots", stem+".pub", "-broker", b.URL(), "-fleet", "f1", "-keyset", ks)
	ok("key set through the ledger", rc, out, errs, "published 1 documents")
	refused("key set version reused", exitFail, "key set version 1 is not above version 1 the broker holds", func() (int, string, string) {
		return run(t, "publish", "-db", db, "-roots", stem+".pub", "-broker", b.URL(), "-fleet", "f1", "-keyset", ks)
	})

	// Ledger: a statement waits for publish; the first batch must be a
	// snapshot, asked for.
	rc, out, errs = run(t, "revoke", "-db", db, "-fleet", "f1", "-voucher-id", ids[0])
	ok("revoke into the ledger", rc, out, errs, "recorded 1 statement(s) for fleet f1")
	refused("ledger delta with no batch yet", exitFail, "the first batch is a snapshot: run again with -new-snapshot", func() (int, string, string) { return pubLedger() })
	rc, out, errs = pubLedger("-new-snapshot")
	ok("first snapshot from the ledger", rc, out, errs, "batch version 1 (snapshot, 1 entries) signed and recorded")

	// Truncated voucher id (the first 8 bytes, as the old card printed).
	refused("truncated id into the ledger", exitUsage, "8 bytes, want 16 (32 hex digits, the whole id", func() (int, string, string) {
		return run(t, "revoke", "-db", db, "-fleet", "f1", "-voucher-id", ids[1][:16])
	})
	rc, out, errs = run(t, "revoke", "-db", db, "-fleet", "f1", "-voucher-id", ids[1])
	ok("second revocation", rc, out, errs, "recorded 1 statement(s)")
	rc, out, errs = pubLedger()
	ok("delta from the ledger", rc, out, errs, "batch version 2 (delta on 1, 1 entries)")
	if rc, out, _ := pubLedger(); rc != exitOK || !strings.Contains(out, "nothing to publish: no statement recorded since batch 2") {
		t.Errorf("publish with nothing pending: %d %q", rc, out)
	}

	// The air-gapped path: revoke without -base on a fresh state file.
	state := filepath.Join(dir, "state.json")
	fileArgs := func(out string, extra ...string) []string {
		return append([]string{"revoke", "-root", stem + ".key", "-state", state, "-out", filepath.Join(dir, out)}, extra...)
	}
	refused("revoke without -base", exitUsage, "-base is required", func() (int, string, string) {
		return run(t, fileArgs("nobase.cose", "-voucher-id", ids[2])...)
	})
	// A batch the broker already has a version of: gates drop it unread.
	rc, out, errs = run(t, fileArgs("d2.cose", "-base", "1", "-version", "2", "-voucher-id", ids[2])...)
	ok("file delta 2 on 1", rc, out, errs, "batch version 2 (delta on 1)")
	refused("publishing a version the broker has", exitFail, "batch version 2 is not above version 2 the broker holds", func() (int, string, string) {
		return pubFile(filepath.Join(dir, "d2.cose"))
	})
	// The same version signed again.
	refused("reused version", exitUsage, "version 2 was already used", func() (int, string, string) {
		return run(t, fileArgs("again.cose", "-version", "2", "-voucher-id", ids[2])...)
	})
	// A delta on an older base than the broker's latest.
	rc, out, errs = run(t, fileArgs("d3.cose", "-voucher-id", ids[2])...)
	ok("file delta 3 on 2", rc, out, errs, "batch version 3 (delta on 2)")
	// A snapshot of one statement would drop the two the fleet holds.
	rc, out, errs = run(t, fileArgs("s4.cose", "-snapshot", "-yes", "-voucher-id", ids[2])...)
	ok("file snapshot 4", rc, out, errs, "batch version 4 (snapshot)")
	refused("snapshot dropping statements without confirmation", exitFail, "snapshot 4 would drop 2 statement(s) (listed above); run again with -yes", func() (int, string, string) {
		return pubFile(filepath.Join(dir, "s4.cose"))
	})

	// The ledger notices a publish around it.
	rc, out, errs = pubFile(filepath.Join(dir, "d3.cose"))
	ok("file delta 3 published", rc, out, errs, "published 1 documents")
	rc, out, errs = run(t, "revoke", "-db", db, "-fleet", "f1", "-voucher-id", ids[3])
	ok("third ledger revocation", rc, out, errs, "recorded")
	refused("ledger behind the broker", exitFail, "the broker holds batch 3, above the ledger's last batch 2", func() (int, string, string) { return pubLedger() })

	// A ledger snapshot shows what it drops (an expired statement, the
	// file's revocation the ledger never knew) and needs a yes; it takes a
	// version above the broker's.
	rc, out, errs = run(t, "override", "-db", db, "-fleet", "f1", "-subject", ids[0], "-colour", "red", "-expires", "-1h")
	ok("expired override", rc, out, errs, "recorded")
	// A dry run lists the same and changes nothing.
	refused("dry run", exitOK, "", func() (int, string, string) {
		rc, out, errs := pubLedger("-new-snapshot", "-dry-run")
		if !strings.Contains(out, "dry run: would sign batch version 4 (snapshot, 3 entries, 0 adopted from the broker)") || !strings.Contains(out, "revoke "+ids[2]+" in force until") {
			t.Errorf("dry run: %q", out)
		}
		return rc, out, errs
	})
	refused("ledger snapshot dropping without -yes", exitFail, "snapshot 4 would drop 2 statement(s)", func() (int, string, string) { return pubLedger("-new-snapshot") })
	rc, out, errs = pubLedger("-new-snapshot")
	if rc == exitOK || !strings.Contains(out, "colour "+ids[0]+" expired") || !strings.Contains(out, "revoke "+ids[2]+" in force until") {
		t.Errorf("ledger snapshot listing: %d %q %q; want the expired colour and the file's revocation listed", rc, out, errs)
	}
	// -adopt takes the file's revocation into the ledger; the expired
	// statement still needs a yes.
	refused("adopting snapshot with an expired statement", exitFail, "snapshot 4 would drop 1 statement(s)", func() (int, string, string) { return pubLedger("-new-snapshot", "-adopt") })
	rc, out, errs = pubLedger("-new-snapshot", "-adopt", "-yes")
	ok("ledger snapshot with -adopt -yes", rc, out, errs, "batch version 4 (snapshot, 4 entries)")
	if !strings.Contains(out, "adopted 1 statement(s) the broker holds") {
		t.Errorf("adopting snapshot: %q; want it to say it adopted one statement", out)
	}

	// The broker now holds the key set and the ledger's snapshot alone.
	got := retainedOn(t, b.URL(), topics.AllTrust())
	bt, err := readRoots(t, stem+".pub").ParseBatch(got[topics.Snapshot()])
	if err != nil || bt.Version != 4 || len(bt.Entries) != 4 || len(got) != 2 {
		t.Errorf("broker holds %v, snapshot %v, %v; want the key set and snapshot 4 of 4 entries", keys(got), bt, err)
	}
	if p, err := ledger.New(pool, "f1").Pending(context.Background()); err != nil || len(p) != 0 {
		t.Errorf("pending after the snapshot: %+v, %v; want none (the adopted statement is carried)", p, err)
	}
	var versions []int64
	rows, _ := pool.Query(context.Background(), "SELECT version FROM wicket_authority_versions WHERE kind = 'batch' AND published_at IS NOT NULL ORDER BY version")
	for rows.Next() {
		var v int64
		rows.Scan(&v)
		versions = append(versions, v)
	}
	if !slices.Equal(versions, []int64{1, 2, 4}) {
		t.Errorf("ledger's published versions %v; want [1 2 4]", versions)
	}
}

// TestLedgerSnapshotParts: a ledger snapshot larger than a part is signed
// in parts that publish takes as a multi-part snapshot, whole.
func TestLedgerSnapshotParts(t *testing.T) {
	dir := t.TempDir()
	stem := filepath.Join(dir, "root")
	if rc, _, errs := run(t, "keygen", "-out", stem); rc != exitOK {
		t.Fatal(errs)
	}
	signer, err := readSigner(stem + ".key")
	if err != nil {
		t.Fatal(err)
	}
	b := verifier.Batch{Version: 7, IssuedAt: time.Now()}
	for i := range defaultPartEntries + 5 {
		b.Entries = append(b.Entries, verifier.Entry{Op: verifier.OpRevoke, Key: binary.BigEndian.AppendUint64(make([]byte, 8), uint64(i)), Time: 1, Expires: 2})
	}
	docs, err := signBatchDocs(signer, b)
	if err != nil || len(docs) != 2 {
		t.Fatalf("signBatchDocs = %d documents, %v; want 2 parts", len(docs), err)
	}
	var out bytes.Buffer
	p := &publisher{e: env{strings.NewReader(""), &out, &out}, rk: readRoots(t, stem+".pub"), prog: "off"}
	if err := p.load(ledger.KindBatch, 7, docs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, d := range p.tmp {
			os.RemoveAll(d)
		}
	})
	whole, err := p.parts.join()
	if err != nil || p.parts.count() != 2 || whole.Version != 7 || len(whole.Entries) != len(b.Entries) {
		t.Fatalf("loaded %d parts, joined %v, %v; want snapshot 7 of %d entries in 2 parts", p.parts.count(), whole, err, len(b.Entries))
	}
}

// TestLedgerResume: a batch the ledger signed but the broker never
// acknowledged is sent again, the same bytes, before anything new; one the
// broker got is only marked; one overtaken by a publish around the ledger
// is refused until a snapshot from the ledger replaces it.
func TestLedgerResume(t *testing.T) {
	b, db, pool, _, stem := authority(t)
	ctx := context.Background()
	if err := ledger.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	l := ledger.New(pool, "f1")
	signer, err := readSigner(stem + ".key")
	if err != nil {
		t.Fatal(err)
	}
	topics := wire.Topics{Fleet: "f1"}
	pubLedger := func(extra ...string) (int, string, string) {
		return run(t, append([]string{"publish", "-db", db, "-root", stem + ".key", "-roots", stem + ".pub",
			"-broker", b.URL(), "-fleet", "f1"}, extra...)...)
	}
	// signOnly records batch v in the ledger as a publish that stopped
	// before the broker acknowledged it.
	signOnly := func(v, base uint64, key byte) []byte {
		t.Helper()
		ids, err := l.Record(ctx, []verifier.Entry{{Op: verifier.OpRevoke, Key: bytes.Repeat([]byte{key}, 16), Time: 1, Expires: time.Now().Add(time.Hour).Unix()}})
		if err != nil {
			t.Fatal(err)
		}
		pending, _ := l.Pending(ctx)
		bt := verifier.Batch{Version: v, Base: base, IssuedAt: time.Now()}
		for _, en := range pending {
			bt.Entries = append(bt.Entries, en.Entry)
		}
		doc, err := verifier.SignBatch(signer, bt)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Sign(ctx, ledger.Signed{Version: ledger.Version{Kind: ledger.KindBatch, Version: v, Base: base, Entries: len(bt.Entries)}, Docs: [][]byte{doc}, Carried: ids}); err != nil {
			t.Fatal(err)
		}
		return doc
	}

	doc1 := signOnly(1, 0, 1)
	rc, out, errs := pubLedger()
	if rc != exitOK || !strings.Contains(out, "publishing batch 1 again") || !bytes.Equal(retainedOn(t, b.URL(), topics.Snapshot())[topics.Snapshot()], doc1) {
		t.Fatalf("resume of batch 1: %d %q %q; want the same bytes on the snapshot topic", rc, out, errs)
	}
	if v, _, _ := l.Unpublished(ctx, ledger.KindBatch); v != nil {
		t.Errorf("batch 1 still unpublished after the resume: %+v", v)
	}

	// Published, but the acknowledgement was not recorded.
	doc2 := signOnly(2, 1, 2)
	cl := mqttClient(t, b.URL())
	cl.Publish(topics.Delta(2), 1, true, doc2).Wait()
	if rc, out, errs := pubLedger(); rc != exitOK || !strings.Contains(out, "the broker already holds batch 2") {
		t.Fatalf("batch 2 already on the broker: %d %q %q", rc, out, errs)
	}

	// Overtaken: the ledger's batch 3 never went out; a file's 3 did.
	signOnly(3, 2, 3)
	other, _ := verifier.SignBatch(signer, verifier.Batch{Version: 3, Base: 2, IssuedAt: time.Now(), Entries: []verifier.Entry{{Op: verifier.OpRevoke, Key: bytes.Repeat([]byte{9}, 16), Time: 1, Expires: time.Now().Add(time.Hour).Unix()}}})
	cl.Publish(topics.Delta(3), 1, true, other).Wait()
	if rc, _, errs := pubLedger(); rc != exitFail || !strings.Contains(errs, "the ledger's batch 3 never reached the broker, which holds batch 3 from elsewhere") {
		t.Fatalf("overtaken batch 3: %d %q; want refused", rc, errs)
	}
	rc, out, errs = pubLedger("-new-snapshot", "-yes")
	if rc != exitOK || !strings.Contains(out, "batch version 4 (snapshot, 3 entries)") {
		t.Fatalf("snapshot over the overtaken batch: %d %q %q", rc, out, errs)
	}
	if v, _, _ := l.Unpublished(ctx, ledger.KindBatch); v != nil {
		t.Errorf("batch %d still waits after the snapshot replaced it", v.Version)
	}
}

// mqttClient connects a plain test client, disconnected when the test ends.
func mqttClient(t *testing.T, broker string) mqtt.Client {
	t.Helper()
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("test-publisher"))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { cl.Disconnect(100) })
	return cl
}

// TestCollectShardFlag: a slice that does not exist is refused before
// anything connects.
func TestCollectShardFlag(t *testing.T) {
	for _, bad := range []string{"2/2", "0/17", "1", "x/y"} {
		rc, _, stderr := run(t, "collect", "-fleet", "f", "-shard", bad)
		if rc != exitUsage || !strings.Contains(stderr, "-shard:") {
			t.Errorf("collect -shard %s = %d, %q; want a usage error naming -shard", bad, rc, stderr)
		}
	}
}
