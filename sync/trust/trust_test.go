package trust

import (
	"bytes"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"wicket/decoder"
	"wicket/sync/store"
	"wicket/sync/store/storetest"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

type rig struct {
	f  *verifiertest.Fixture
	st *store.Store
	a  *Applier
}

func newRig(t *testing.T) *rig {
	f := verifiertest.New(t)
	st := storetest.Open(t, store.Options{Logger: slog.New(slog.DiscardHandler)})
	v, err := verifier.New(f.TClock, st, &f.Policy)
	if err != nil {
		t.Fatal(err)
	}
	a := New(f.Roots(), st, v, slog.New(slog.DiscardHandler))
	a.clk = clockwork.NewFakeClockAt(verifiertest.Epoch)
	f.Verifier = v
	return &rig{f: f, st: st, a: a}
}

// batch signs a batch revoking voucher id "voucher-v<version>".
func (r *rig) batch(t *testing.T, version, base uint64) []byte {
	t.Helper()
	doc, err := verifier.SignBatch(r.f.Root, verifier.Batch{Version: version, Base: base, IssuedAt: verifiertest.Epoch.Add(-time.Hour),
		Entries: []verifier.Entry{{Op: verifier.OpRevoke, Key: revokedID(version), Time: verifiertest.Epoch.Unix(), Expires: verifiertest.Epoch.Unix() + 86400}}})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func revokedID(version uint64) []byte {
	return []byte{'v', 'o', 'u', 'c', 'h', 'e', 'r', byte(version)}
}

func (r *rig) revoked(t *testing.T, version uint64) bool {
	ok, err := r.st.Revoked(revokedID(version))
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestSnapshotAndDeltasInAnyOrder: retained messages arrive in any order
// after a reconnect; the gate ends at the newest version with every delta
// applied exactly in chain order.
func TestSnapshotAndDeltasInAnyOrder(t *testing.T) {
	r := newRig(t)
	steps := []struct {
		name          string
		version, base uint64
		want          Result
		installed     uint64
		gap           bool
	}{
		{"delta 7 before its snapshot", 7, 6, Held, 0, true},
		{"delta 6", 6, 5, Held, 0, true},
		{"snapshot 5", 5, 0, Applied, 7, false},
		{"snapshot 5 again (retained, on reconnect)", 5, 0, Stale, 7, false},
		{"delta 6 again", 6, 5, Stale, 7, false},
		{"delta 9 after a missed 8", 9, 8, Held, 7, true},
		{"snapshot 10 ends the gap", 10, 0, Applied, 10, false},
		{"delta 11", 11, 10, Applied, 11, false},
	}
	for _, s := range steps {
		res, err := r.a.Batch(r.batch(t, s.version, s.base), "test")
		if res != s.want || err != nil {
			t.Fatalf("%s: Batch = %v, %v; want %v", s.name, res, err, s.want)
		}
		if got := r.st.Info().Version; got != s.installed {
			t.Fatalf("%s: installed version %d; want %d", s.name, got, s.installed)
		}
		if gap := r.a.Stats().Gap; gap != s.gap {
			t.Fatalf("%s: gap = %v; want %v", s.name, gap, s.gap)
		}
	}
	// Snapshot 10 replaced everything before it: 5, 6, 7 are gone, 9 was
	// never applied (its chain broke), 10 and 11 are in.
	for v, want := range map[uint64]bool{5: false, 6: false, 7: false, 9: false, 10: true, 11: true} {
		if got := r.revoked(t, v); got != want {
			t.Errorf("revocation from batch %d present = %v; want %v", v, got, want)
		}
	}
}

func TestRefused(t *testing.T) {
	r := newRig(t)
	if res, _ := r.a.Batch(r.batch(t, 3, 0), "test"); res != Applied {
		t.Fatal("snapshot 3 not applied")
	}
	stranger, _ := decoder.NewSigner(verifiertest.EdKey(9), nil)
	forged, _ := verifier.SignBatch(stranger, verifier.Batch{Version: 4, IssuedAt: verifiertest.Epoch})
	tampered := r.batch(t, 4, 3)
	tampered[len(tampered)-3] ^= 1
	for name, doc := range map[string][]byte{
		"signed by a stranger": forged,
		"tampered":             tampered,
		"key set as a batch":   r.f.KeySetDoc,
		"garbage":              []byte("not cose"),
		"unsigned (no sig)":    bytes.Clone(r.batch(t, 4, 3)[:40]),
	} {
		res, err := r.a.Batch(doc, "test")
		if res != Refused || err == nil {
			t.Errorf("%s: Batch = %v, %v; want Refused with an error", name, res, err)
		}
	}
	if st := r.a.Stats(); st.Refused != 5 || st.LastRefusal == "" {
		t.Errorf("stats = %+v; want 5 refusals with a reason", st)
	}
	if got := r.st.Info().Version; got != 3 {
		t.Errorf("installed version %d after refusals; want 3", got)
	}
}

func TestKeySet(t *testing.T) {
	r := newRig(t)
	changes := 0
	r.a.OnChange = func() { changes++ }
	if res, err := r.a.KeySet(r.f.KeySetDoc, "test"); res != Applied || err != nil {
		t.Fatalf("KeySet v1 = %v, %v", res, err)
	}
	if res, _ := r.a.KeySet(r.f.KeySetDoc, "test"); res != Stale {
		t.Errorf("replayed key set v1 = %v; want Stale", res)
	}
	raw, ver, err := r.st.TrustDoc(store.TrustKeySet)
	if err != nil || ver != 1 || !bytes.Equal(raw, r.f.KeySetDoc) {
		t.Fatalf("stored key set = v%d, %v", ver, err)
	}
	v2 := r.f.SignKeySet(t, 2, r.f.IssuerKey(r.f.ESPub))
	if res, _ := r.a.KeySet(v2, "test"); res != Applied {
		t.Fatalf("KeySet v2 = %v", res)
	}
	if changes != 2 {
		t.Errorf("OnChange called %d times; want 2", changes)
	}
	// A fresh verifier on the same store loads v2 at start.
	v, _ := verifier.New(r.f.TClock, r.st, &r.f.Policy)
	b := New(r.f.Roots(), r.st, v, slog.New(slog.DiscardHandler))
	if err := b.LoadStored(); err != nil || v.KeySet() == nil || v.KeySet().Version != 2 {
		t.Fatalf("LoadStored: %v, key set %v", err, v.KeySet())
	}
}

// parts signs a snapshot of n revocations split into parts of per entries;
// entry i revokes partID(version, i).
func (r *rig) parts(t *testing.T, version uint64, issuedAt time.Time, n, per int) [][]byte {
	t.Helper()
	count := uint32((n + per - 1) / per)
	var docs [][]byte
	for p := range count {
		b := verifier.Batch{Version: version, IssuedAt: issuedAt, Part: p, Parts: count}
		for i := int(p) * per; i < min(n, int(p+1)*per); i++ {
			b.Entries = append(b.Entries, verifier.Entry{Op: verifier.OpRevoke, Key: partID(version, i), Time: verifiertest.Epoch.Unix(), Expires: verifiertest.Epoch.Unix() + 86400})
		}
		doc, err := verifier.SignBatch(r.f.Root, b)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc)
	}
	return docs
}

func partID(version uint64, i int) []byte { return fmt.Appendf(nil, "part-%d-%06d", version, i) }

// TestMultiPartSnapshot: the parts of a snapshot arrive in any order,
// with repeats, interleaved with a delta that follows it and the parts of
// an older snapshot; nothing changes until the last part, then all of it
// and the held delta are in force. A newer snapshot's parts abandon an
// unfinished one.
func TestMultiPartSnapshot(t *testing.T) {
	r := newRig(t)
	issued := verifiertest.Epoch.Add(-time.Hour)
	if res, err := r.a.Batch(r.batch(t, 3, 0), "test"); res != Applied {
		t.Fatalf("snapshot 3: %v, %v", res, err)
	}
	docs := r.parts(t, 5, issued, 1000, 150) // 7 parts
	old := r.parts(t, 4, issued, 300, 150)
	delta := r.batch(t, 6, 5)
	order := []int{4, 0, 6, 4, 2, 1, 5}
	for i, p := range order {
		if i == 2 {
			if res, _ := r.a.Batch(delta, "test"); res != Held {
				t.Fatalf("delta 6 before its snapshot: %v", res)
			}
			if res, _ := r.a.Batch(old[1], "test"); res != Stale {
				t.Fatalf("a part of older snapshot 4: %v", res)
			}
		}
		res, err := r.a.Batch(docs[p], "test")
		want := Held
		if i == 3 {
			want = Stale // part 4 again
		}
		if res != want || (err != nil) != (res == Refused) {
			t.Fatalf("part %d (step %d): %v, %v; want %v", p, i, res, err, want)
		}
		if r.st.Info().Version != 3 || !r.revoked(t, 3) {
			t.Fatalf("step %d: installed %d; want snapshot 3 until every part is in", i, r.st.Info().Version)
		}
	}
	if as := r.a.Stats().Assembling; as == nil || as.Version != 5 || as.Have != 6 || as.Of != 7 {
		t.Fatalf("Stats().Assembling = %+v; want 6 of 7 parts of 5", as)
	}
	// A part that claims another issue time or count is refused.
	bad, err := verifier.SignBatch(r.f.Root, verifier.Batch{Version: 5, IssuedAt: issued.Add(time.Second), Part: 3, Parts: 7,
		Entries: []verifier.Entry{{Op: verifier.OpRevoke, Key: revokedID(99), Time: 1, Expires: verifiertest.Epoch.Unix() + 60}}})
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := r.a.Batch(bad, "test"); res != Refused {
		t.Fatalf("mismatched part: %v", res)
	}
	if res, err := r.a.Batch(docs[3], "test"); res != Applied {
		t.Fatalf("last part: %v, %v", res, err)
	}
	if got := r.st.Info().Version; got != 6 {
		t.Fatalf("installed %d; want 6 (snapshot 5, then the held delta)", got)
	}
	for i := range 1000 {
		if ok, _ := r.st.Revoked(partID(5, i)); !ok {
			t.Fatalf("entry %d of snapshot 5 missing", i)
		}
	}
	if !r.revoked(t, 6) || r.revoked(t, 3) || r.revoked(t, 99) {
		t.Fatal("want delta 6 in force, snapshot 3 replaced, the refused part's entry absent")
	}
	if r.a.Stats().Assembling != nil {
		t.Fatal("assembly left behind")
	}

	// An unfinished snapshot is abandoned for a newer one.
	seven := r.parts(t, 7, issued, 400, 150)
	eight := r.parts(t, 8, issued, 400, 150)
	r.a.Batch(seven[0], "test")
	r.a.Batch(eight[2], "test")
	r.a.Batch(seven[1], "test") // older than the one being collected
	if as := r.a.Stats().Assembling; as == nil || as.Version != 8 || as.Have != 1 {
		t.Fatalf("Stats().Assembling = %+v; want 1 part of 8", as)
	}
	r.a.Batch(eight[0], "test")
	if res, _ := r.a.Batch(eight[1], "test"); res != Applied || r.st.Info().Version != 8 {
		t.Fatalf("snapshot 8: %v, installed %d", res, r.st.Info().Version)
	}
	if ok, _ := r.st.Revoked(partID(8, 399)); !ok {
		t.Fatal("snapshot 8's last entry missing")
	}
}

// TestClockAheadAtApply: a gate whose wall clock is 31 days ahead (past
// max_key_set_age, so the floor does not follow it) receives a revocation
// and a red override that expire in 10 days, by delta, snapshot or
// multi-part snapshot. Once the clock is corrected both are still in force,
// also after the compaction the daemon runs at the trusted floor: a wrong
// clock never drops trust data the version has moved past.
func TestClockAheadAtApply(t *testing.T) {
	issued := verifiertest.Epoch
	expires := issued.Add(10 * 24 * time.Hour).Unix()
	entries := []verifier.Entry{
		{Op: verifier.OpRevoke, Key: []byte("voucher-revoked-1"), Time: issued.Unix(), Expires: expires},
		{Op: verifier.OpColour, Key: []byte("subject-turned-red"), Time: issued.Unix(), Expires: expires, Colour: decoder.ColourRed},
	}
	sign := func(t *testing.T, r *rig, b verifier.Batch) []byte {
		doc, err := verifier.SignBatch(r.f.Root, b)
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	for _, tc := range []struct {
		name string
		docs func(*testing.T, *rig) [][]byte
	}{
		{"delta", func(t *testing.T, r *rig) [][]byte {
			return [][]byte{sign(t, r, verifier.Batch{Version: 2, Base: 1, IssuedAt: issued, Entries: entries})}
		}},
		{"snapshot", func(t *testing.T, r *rig) [][]byte {
			return [][]byte{sign(t, r, verifier.Batch{Version: 2, IssuedAt: issued, Entries: entries})}
		}},
		{"multi-part snapshot", func(t *testing.T, r *rig) [][]byte {
			return [][]byte{
				sign(t, r, verifier.Batch{Version: 2, IssuedAt: issued, Part: 0, Parts: 2, Entries: entries[:1]}),
				sign(t, r, verifier.Batch{Version: 2, IssuedAt: issued, Part: 1, Parts: 2, Entries: entries[1:]}),
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			wall := clockwork.NewFakeClockAt(verifiertest.Epoch)
			r.a.clk = wall // the gate's wall clock, as in wicketd: moved with r.f.Clock
			if res, err := r.a.KeySet(r.f.KeySetDoc, "test"); res != Applied {
				t.Fatalf("key set: %v, %v", res, err)
			}
			if res, err := r.a.Batch(sign(t, r, verifier.Batch{Version: 1, IssuedAt: issued.Add(-time.Hour)}), "test"); res != Applied {
				t.Fatalf("snapshot 1: %v, %v", res, err)
			}
			revoked := r.f.Claims(decoder.KindPrinted)
			revoked.ID = []byte("voucher-revoked-1")
			red := r.f.Claims(decoder.KindPrinted)
			red.Voucher.Subject = []byte("subject-turned-red")
			codes := map[verifier.Reason]string{
				verifier.ReasonRevoked:   r.f.Issue(t, r.f.Ed, revoked),
				verifier.ReasonColourRed: r.f.Issue(t, r.f.Ed, red),
			}

			r.f.Clock.Set(verifiertest.Epoch.Add(31 * 24 * time.Hour))
			wall.Advance(31 * 24 * time.Hour)
			docs := tc.docs(t, r)
			for i, doc := range docs {
				want := Held
				if i == len(docs)-1 {
					want = Applied
				}
				if res, err := r.a.Batch(doc, "test"); res != want {
					t.Fatalf("document %d: %v, %v; want %v", i, res, err, want)
				}
			}
			r.f.Clock.Set(verifiertest.Epoch.Add(time.Hour))
			if err := r.st.CompactStatus(r.f.TClock.Floor()); err != nil {
				t.Fatal(err)
			}
			if got := r.st.Info().Version; got != 2 {
				t.Fatalf("installed version %d; want 2", got)
			}
			for want, code := range codes {
				if d := r.f.Verifier.Verify([]byte(code)); d.Reason != want {
					t.Errorf("after the clock was corrected: Verify = %s (%s); want %s", d.Reason, d.Detail, want)
				}
			}
		})
	}
}
