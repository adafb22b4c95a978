package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/verifier"
)

// newRand returns a seeded generator and logs the seed for replay.
func newRand(t testing.TB) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	return rand.New(rand.NewPCG(seed, 0x5717e))
}

// fillRandom overwrites data with random bytes.
func fillRandom(rng *rand.Rand, data []byte) {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], rng.Uint64())
	_, _ = rand.NewChaCha8(seed).Read(data)
}

// randomBatch builds a batch of n entries of every op over 4n ids.
func randomBatch(rng *rand.Rand, version, base uint64, n int, now time.Time) *verifier.Batch {
	b := &verifier.Batch{Version: version, Base: base, IssuedAt: now}
	for range n {
		b.Entries = append(b.Entries, randomEntry(rng, 4*n, now))
	}
	return b
}

func poolKey(i int) []byte { return fmt.Appendf(nil, "id-%08d", i) }

func randomEntry(rng *rand.Rand, pool int, now time.Time) verifier.Entry {
	e := verifier.Entry{
		Op:      verifier.Op(1 + rng.IntN(3)),
		Key:     poolKey(rng.IntN(pool)),
		Time:    now.Unix() - 100 + rng.Int64N(40), // few distinct times: ties happen
		Expires: now.Unix() - 20 + rng.Int64N(200), // some already expired
	}
	if e.Op == verifier.OpColour {
		e.Colour = decoder.Colour(1 + rng.IntN(3))
	}
	return e
}

// sameStatus compares every lookup over the id pool.
func sameStatus(t *testing.T, what string, mem *verifier.MemStatus, s *Store, pool int) {
	t.Helper()
	if m, g := mem.Info(), s.Info(); m.Version != g.Version || !m.IssuedAt.Equal(g.IssuedAt) {
		t.Fatalf("%s: Info() = %+v; want %+v", what, g, m)
	}
	for i := range pool {
		id := poolKey(i)
		mr, _ := mem.Revoked(id)
		sr, err := s.Revoked(id)
		if err != nil || mr != sr {
			t.Fatalf("%s: Revoked(%q) = %v, %v; want %v", what, id, sr, err, mr)
		}
		ms, _ := mem.Subject(id)
		ss, err := s.Subject(id)
		if err != nil || !sameSubject(ms, ss) {
			t.Fatalf("%s: Subject(%q) = %+v, %v; want %+v", what, id, ss, err, ms)
		}
	}
}

func sameSubject(a, b verifier.SubjectState) bool {
	return a.Colour == b.Colour && a.ColourAt.Equal(b.ColourAt) && a.ColourUntil.Equal(b.ColourUntil) && a.VoidBefore.Equal(b.VoidBefore)
}

// TestStatusDifferential applies the same random batches to MemStatus and
// the store: every lookup, every error and the info must agree, across
// reopens too.
func TestStatusDifferential(t *testing.T) {
	rng := newRand(t)
	const pool = 60
	path := t.TempDir() + "/wicket.db"
	mem := verifier.NewMemStatus()
	s := openTest(t, Options{Path: path})
	now := time.Unix(1_700_000_000, 0)
	rounds := 400
	if testing.Short() {
		rounds = 100
	}
	for round := range rounds {
		now = now.Add(time.Duration(rng.IntN(30)) * time.Second)
		installed := mem.Info().Version
		b := &verifier.Batch{Version: installed + 1 + uint64(rng.IntN(3)), IssuedAt: now.Add(-time.Duration(rng.IntN(100)) * time.Second)}
		switch r := rng.IntN(20); {
		case r == 0:
			b.Version = installed - uint64(min(installed, uint64(rng.IntN(2)))) // stale
		case r < 4:
			b.Base = 0 // snapshot
		case r == 4:
			b.Base = installed + 1 // gap
		default:
			b.Base = installed
		}
		unknown := false
		for range rng.IntN(40) {
			e := randomEntry(rng, pool, now)
			if rng.IntN(50) == 0 {
				e.Op = 4 // ParseBatch refuses it; the store refuses the batch
				unknown = true
			}
			b.Entries = append(b.Entries, e)
		}
		if unknown {
			if err := s.ApplyBatch(b, now); err == nil {
				t.Fatalf("round %d: a batch with an unknown op was applied", round)
			}
			sameStatus(t, fmt.Sprintf("round %d, refused batch", round), mem, s, pool)
			continue
		}
		errM := mem.Apply(b, now)
		errS := s.ApplyBatch(b, now)
		if (errM == nil) != (errS == nil) ||
			errors.Is(errM, verifier.ErrTrustVersion) != errors.Is(errS, verifier.ErrTrustVersion) ||
			errors.Is(errM, verifier.ErrTrustGap) != errors.Is(errS, verifier.ErrTrustGap) {
			t.Fatalf("round %d: ApplyBatch(version %d base %d) = %v; MemStatus.Apply = %v", round, b.Version, b.Base, errS, errM)
		}
		sameStatus(t, fmt.Sprintf("round %d", round), mem, s, pool)
		if rng.IntN(50) == 0 {
			s.Close()
			s = openTest(t, Options{Path: path})
			sameStatus(t, fmt.Sprintf("round %d after reopen", round), mem, s, pool)
		}
	}
}

func TestApplyBatchRules(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	n := now.Unix()
	id := []byte("voucher-0001")
	sub := []byte("subject-0001")
	rev := func(exp int64) verifier.Entry {
		return verifier.Entry{Op: verifier.OpRevoke, Key: id, Time: n - 10, Expires: exp}
	}
	col := func(at, exp int64, c decoder.Colour) verifier.Entry {
		return verifier.Entry{Op: verifier.OpColour, Key: sub, Time: at, Expires: exp, Colour: c}
	}
	void := func(at, exp int64) verifier.Entry {
		return verifier.Entry{Op: verifier.OpVoidBefore, Key: sub, Time: at, Expires: exp}
	}
	tests := []struct {
		name        string
		batches     []verifier.Batch
		wantErr     error
		wantRevoked bool
		wantSubject verifier.SubjectState
	}{
		{"revocation", []verifier.Batch{{Version: 1, Entries: []verifier.Entry{rev(n + 10)}}}, nil, true, verifier.SubjectState{}},
		{"expired revocation skipped", []verifier.Batch{{Version: 1, Entries: []verifier.Entry{rev(n)}}}, nil, false, verifier.SubjectState{}},
		{"snapshot replaces", []verifier.Batch{
			{Version: 1, Entries: []verifier.Entry{rev(n + 10), col(n-5, n+10, decoder.ColourRed)}},
			{Version: 2},
		}, nil, false, verifier.SubjectState{}},
		{"delta adds", []verifier.Batch{
			{Version: 1, Entries: []verifier.Entry{rev(n + 10)}},
			{Version: 2, Base: 1, Entries: []verifier.Entry{col(n-5, n+10, decoder.ColourRed)}},
		}, nil, true, verifier.SubjectState{Colour: decoder.ColourRed, ColourAt: time.Unix(n-5, 0), ColourUntil: time.Unix(n+10, 0)}},
		{"newest colour wins", []verifier.Batch{
			{Version: 1, Entries: []verifier.Entry{col(n-5, n+10, decoder.ColourRed), col(n-9, n+20, decoder.ColourGreen)}},
		}, nil, false, verifier.SubjectState{Colour: decoder.ColourRed, ColourAt: time.Unix(n-5, 0), ColourUntil: time.Unix(n+10, 0)}},
		{"colour tie keeps the first", []verifier.Batch{
			{Version: 1, Entries: []verifier.Entry{col(n-5, n+10, decoder.ColourRed)}},
			{Version: 2, Base: 1, Entries: []verifier.Entry{col(n-5, n+30, decoder.ColourGreen)}},
		}, nil, false, verifier.SubjectState{Colour: decoder.ColourRed, ColourAt: time.Unix(n-5, 0), ColourUntil: time.Unix(n+10, 0)}},
		{"void and colour merge", []verifier.Batch{
			{Version: 1, Entries: []verifier.Entry{void(n-7, n+10), col(n-5, n+10, decoder.ColourYellow), void(n-8, n+10)}},
		}, nil, false, verifier.SubjectState{Colour: decoder.ColourYellow, ColourAt: time.Unix(n-5, 0), ColourUntil: time.Unix(n+10, 0), VoidBefore: time.Unix(n-7, 0)}},
		{"stale version refused", []verifier.Batch{
			{Version: 2, Entries: []verifier.Entry{rev(n + 10)}},
			{Version: 2},
		}, verifier.ErrTrustVersion, true, verifier.SubjectState{}},
		{"delta gap refused", []verifier.Batch{
			{Version: 1, Entries: []verifier.Entry{rev(n + 10)}},
			{Version: 3, Base: 2},
		}, verifier.ErrTrustGap, true, verifier.SubjectState{}},
		{"delta on nothing refused", []verifier.Batch{
			{Version: 3, Base: 2, Entries: []verifier.Entry{rev(n + 10)}},
		}, verifier.ErrTrustGap, false, verifier.SubjectState{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, Options{})
			var err error
			for i := range tt.batches {
				err = s.ApplyBatch(&tt.batches[i], now)
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("last ApplyBatch = %v; want %v", err, tt.wantErr)
			}
			if got, err := s.Revoked(id); got != tt.wantRevoked || err != nil {
				t.Errorf("Revoked(%q) = %v, %v; want %v", id, got, err, tt.wantRevoked)
			}
			if got, err := s.Subject(sub); !sameSubject(got, tt.wantSubject) || err != nil {
				t.Errorf("Subject(%q) = %+v, %v; want %+v", sub, got, err, tt.wantSubject)
			}
		})
	}
}

func TestCompactStatus(t *testing.T) {
	rng := newRand(t)
	now := time.Unix(1_700_000_000, 0)
	s := openTest(t, Options{})
	b := randomBatch(rng, 1, 0, 500, now)
	if err := s.ApplyBatch(b, now); err != nil {
		t.Fatal(err)
	}
	// What each key holds: the newest statement of each kind (the first
	// on a tie), or for a revocation the latest expiry.
	type newest struct{ at, exp int64 }
	held := map[string]*[4]newest{}
	for _, e := range b.Entries {
		if e.Expires <= now.Unix() {
			continue
		}
		h := held[string(e.Key)]
		if h == nil {
			h = &[4]newest{}
			held[string(e.Key)] = h
		}
		n := &h[e.Op]
		switch {
		case e.Op == verifier.OpRevoke:
			n.exp = max(n.exp, e.Expires)
		case e.Time > n.at:
			*n = newest{e.Time, e.Expires}
		}
	}
	at := now.Add(90 * time.Second)
	before := s.StatusStats()
	if err := s.CompactStatus(at); err != nil {
		t.Fatal(err)
	}
	after := s.StatusStats()
	if after.OverlayRecords != 0 || after.FileRecords >= before.FileRecords {
		t.Errorf("statements went from %+v to %+v; want fewer, all in the file", before, after)
	}
	alive := func(n newest) bool { return n.exp > at.Unix() }
	for i := range 2000 {
		id := poolKey(i)
		h := held[string(id)]
		if h == nil {
			h = &[4]newest{}
		}
		if got, _ := s.Revoked(id); got != alive(h[verifier.OpRevoke]) {
			t.Fatalf("after compacting at %d: Revoked(%q) = %v; held %+v", at.Unix(), id, got, h[verifier.OpRevoke])
		}
		got, _ := s.Subject(id)
		if c := h[verifier.OpColour]; (got.Colour != 0) != alive(c) || alive(c) && got.ColourAt.Unix() != c.at {
			t.Fatalf("after compacting: Subject(%q) = %+v; newest colour %+v", id, got, c)
		}
		if v := h[verifier.OpVoidBefore]; got.VoidBefore.IsZero() == alive(v) || alive(v) && got.VoidBefore.Unix() != v.at {
			t.Fatalf("after compacting: Subject(%q) = %+v; newest void-before %+v", id, got, v)
		}
	}
}

func TestApplyBatchLarge(t *testing.T) {
	s := openTest(t, Options{})
	now := time.Unix(1_700_000_000, 0)
	b := &verifier.Batch{Version: 1, IssuedAt: now}
	for i := range 65536 {
		b.Entries = append(b.Entries, verifier.Entry{Op: verifier.OpRevoke, Key: poolKey(i), Time: now.Unix(), Expires: now.Unix() + 3600})
	}
	start := time.Now()
	if err := s.ApplyBatch(b, now); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	t.Logf("65536-entry snapshot applied in %v", d)
	// BenchmarkApplyBatch65k measures; this only catches a pathological
	// slowdown, with room for the race detector and emulated boards.
	if limit := 5 * time.Second; !raceEnabled && d > limit {
		t.Errorf("65536-entry snapshot took %v; want well under %v", d, limit)
	}
	delta := &verifier.Batch{Version: 2, Base: 1, IssuedAt: now}
	for i := range 65536 {
		delta.Entries = append(delta.Entries, verifier.Entry{Op: verifier.OpRevoke, Key: poolKey(2 * i), Time: now.Unix(), Expires: now.Unix() + 7200})
	}
	start = time.Now()
	if err := s.ApplyBatch(delta, now); err != nil {
		t.Fatal(err)
	}
	t.Logf("65536-entry delta over 65536 entries applied in %v", time.Since(start))
	if err := s.CompactStatus(now); err != nil {
		t.Fatal(err)
	}
	if st := s.StatusStats(); st.FileRecords != 65536+32768 {
		t.Errorf("after compacting: %d records; want %d", st.FileRecords, 65536+32768)
	}
}
