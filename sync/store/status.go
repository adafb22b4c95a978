package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"wicket/decoder"
	"wicket/verifier"
)

// subjectLen is the size of a subject record: colour (1 byte), then
// colourAt, colourUntil, voidBefore, voidUntil as big-endian int64 seconds.
const subjectLen = 1 + 4*8

// snapshotFillPercent is how full bbolt packs pages when a snapshot writes
// its sorted keys into empty buckets; later deltas split the pages they
// touch.
const snapshotFillPercent = 0.9

// subject mirrors what verifier.MemStatus keeps per subject.
type subject struct {
	colour      decoder.Colour
	colourAt    int64
	colourUntil int64
	voidBefore  int64
	voidUntil   int64
}

func (s *subject) merge(e *verifier.Entry) {
	switch e.Op {
	case verifier.OpColour:
		if e.Time > s.colourAt {
			s.colour, s.colourAt, s.colourUntil = e.Colour, e.Time, e.Expires
		}
	case verifier.OpVoidBefore:
		if e.Time > s.voidBefore {
			s.voidBefore, s.voidUntil = e.Time, e.Expires
		}
	}
}

// expired reports whether every statement in the record has expired.
func (s *subject) expired(now int64) bool {
	return max(s.colourUntil, s.voidUntil) <= now
}

func (s *subject) encode(dst []byte) []byte {
	dst = append(dst, byte(s.colour))
	for _, v := range [...]int64{s.colourAt, s.colourUntil, s.voidBefore, s.voidUntil} {
		dst = binary.BigEndian.AppendUint64(dst, uint64(v))
	}
	return dst
}

func decodeSubject(v []byte) (subject, error) {
	if len(v) != subjectLen {
		return subject{}, fmt.Errorf("subject record is %d bytes, want %d", len(v), subjectLen)
	}
	i := func(n int) int64 { return int64(binary.BigEndian.Uint64(v[1+8*n:])) }
	return subject{colour: decoder.Colour(v[0]), colourAt: i(0), colourUntil: i(1), voidBefore: i(2), voidUntil: i(3)}, nil
}

func (s *subject) state() verifier.SubjectState {
	st := verifier.SubjectState{Colour: s.colour}
	if s.colourAt != 0 {
		st.ColourAt, st.ColourUntil = time.Unix(s.colourAt, 0), time.Unix(s.colourUntil, 0)
	}
	if s.voidBefore != 0 {
		st.VoidBefore = time.Unix(s.voidBefore, 0)
	}
	return st
}

// ApplyBatch installs a verified batch in one transaction, with the same
// rules as verifier.MemStatus.Apply: the version must pass
// verifier.CheckBatchVersion; a snapshot replaces every statement, a delta
// merges on top (the newest statement about a subject wins, a revocation
// keeps its latest expiry); entries already expired at now are skipped.
// On error nothing changes. It fsyncs once.
func (s *Store) ApplyBatch(b *verifier.Batch, now time.Time) error {
	if b == nil {
		return errors.New("apply batch: nil batch")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if err := verifier.CheckBatchVersion(getUint(meta, keyStatusVersion), b); err != nil {
			return err
		}
		if b.Snapshot() {
			for _, name := range [][]byte{bucketRevoked, bucketSubjects} {
				if err := tx.DeleteBucket(name); err != nil {
					return fmt.Errorf("clear %s: %w", name, err)
				}
				nb, err := tx.CreateBucket(name)
				if err != nil {
					return fmt.Errorf("recreate %s: %w", name, err)
				}
				// Sorted keys into an empty bucket: fill pages up rather
				// than splitting them in half.
				nb.FillPercent = snapshotFillPercent
			}
		}
		rb, sb := tx.Bucket(bucketRevoked), tx.Bucket(bucketSubjects)
		// Merge in batch order (ties keep the earlier statement, as in
		// MemStatus), then write each key once, in key order.
		revs := newMerger[int64](len(b.Entries))
		subs := newMerger[subject](len(b.Entries))
		nowUnix := now.Unix()
		for i := range b.Entries {
			e := &b.Entries[i]
			if e.Expires <= nowUnix {
				continue
			}
			k := verifier.EntryKey(e.Op, e.Key)
			switch e.Op {
			case verifier.OpRevoke:
				exp, err := revs.get(k, func() (int64, error) { return getInt(rb, k[:]), nil })
				if err != nil {
					return err
				}
				*exp = max(*exp, e.Expires)
			case verifier.OpColour, verifier.OpVoidBefore:
				rec, err := subs.get(k, func() (subject, error) { return getSubject(sb, k[:]) })
				if err != nil {
					return err
				}
				rec.merge(e)
			}
		}
		if err := revs.write(rb, 8, func(dst []byte, v *int64) []byte {
			return binary.BigEndian.AppendUint64(dst, uint64(*v))
		}); err != nil {
			return err
		}
		if err := subs.write(sb, subjectLen, func(dst []byte, v *subject) []byte {
			return v.encode(dst)
		}); err != nil {
			return err
		}
		if err := putUint(meta, keyStatusVersion, b.Version); err != nil {
			return err
		}
		return putTime(meta, keyStatusIssued, b.IssuedAt)
	})
	if err != nil {
		return fmt.Errorf("apply batch %d: %w", b.Version, err)
	}
	s.info.Store(&verifier.StatusInfo{Version: b.Version, IssuedAt: b.IssuedAt})
	return nil
}

// merger collects the new value of each key a batch touches.
type merger[V any] struct {
	index map[[16]byte]int
	recs  []keyed[V]
}

type keyed[V any] struct {
	key [16]byte
	val V
}

func newMerger[V any](n int) *merger[V] {
	return &merger[V]{index: make(map[[16]byte]int, n), recs: make([]keyed[V], 0, n)}
}

// get returns the value for key, loading the stored one on first use. The
// pointer is valid until the next get.
func (m *merger[V]) get(key [16]byte, load func() (V, error)) (*V, error) {
	if i, ok := m.index[key]; ok {
		return &m.recs[i].val, nil
	}
	v, err := load()
	if err != nil {
		return nil, err
	}
	m.index[key] = len(m.recs)
	m.recs = append(m.recs, keyed[V]{key, v})
	return &m.recs[len(m.recs)-1].val, nil
}

// write puts every value into b in key order (bbolt appends sorted keys
// cheaply). Values live in one buffer that outlasts the transaction's
// Puts, as bbolt requires.
func (m *merger[V]) write(b *bbolt.Bucket, vlen int, enc func([]byte, *V) []byte) error {
	slices.SortFunc(m.recs, func(x, y keyed[V]) int { return compareKeys(&x.key, &y.key) })
	vals := make([]byte, 0, len(m.recs)*vlen)
	for i := range m.recs {
		r := &m.recs[i]
		start := len(vals)
		vals = enc(vals, &r.val)
		if err := b.Put(r.key[:], vals[start:len(vals):len(vals)]); err != nil {
			return err
		}
	}
	return nil
}

// compareKeys orders 16-byte keys as bytes.Compare does.
func compareKeys(x, y *[16]byte) int {
	if c := cmp.Compare(binary.BigEndian.Uint64(x[:8]), binary.BigEndian.Uint64(y[:8])); c != 0 {
		return c
	}
	return cmp.Compare(binary.BigEndian.Uint64(x[8:]), binary.BigEndian.Uint64(y[8:]))
}

func getInt(b *bbolt.Bucket, key []byte) int64 { return int64(getUint(b, key)) }

func getSubject(b *bbolt.Bucket, key []byte) (subject, error) {
	v := b.Get(key)
	if v == nil {
		return subject{}, nil
	}
	return decodeSubject(v)
}

// Revoked reports whether the voucher id is revoked
// (until PruneExpired removes the entry after it expires).
func (s *Store) Revoked(id []byte) (bool, error) {
	st, err := s.Standing(id, nil)
	return st.Revoked, err
}

// Standing implements verifier.Status: the voucher's revocation and its
// subject's statements, from one read transaction. A nil sub skips the
// subject.
func (s *Store) Standing(id, sub []byte) (verifier.Standing, error) {
	rk := verifier.EntryKey(verifier.OpRevoke, id)
	var out verifier.Standing
	var rec subject
	err := s.db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(bucketRevoked); b != nil {
			out.Revoked = b.Get(rk[:]) != nil
		}
		if sub == nil {
			return nil
		}
		b := tx.Bucket(bucketSubjects)
		if b == nil {
			return nil
		}
		sk := verifier.EntryKey(verifier.OpColour, sub)
		var err error
		rec, err = getSubject(b, sk[:])
		return err
	})
	if err != nil {
		return verifier.Standing{}, fmt.Errorf("revocation lookup: %w", err)
	}
	if sub != nil {
		out.Subject = rec.state()
	}
	return out, nil
}

// Subject returns the colour and void statements about
// a subject pseudonym.
func (s *Store) Subject(sub []byte) (verifier.SubjectState, error) {
	k := verifier.EntryKey(verifier.OpColour, sub)
	var rec subject
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSubjects)
		if b == nil {
			return nil
		}
		var err error
		rec, err = getSubject(b, k[:])
		return err
	})
	if err != nil {
		return verifier.SubjectState{}, fmt.Errorf("subject lookup: %w", err)
	}
	return rec.state(), nil
}

// Info implements verifier.Status from memory: the installed batch version
// and issue time, zero when none.
func (s *Store) Info() verifier.StatusInfo { return *s.info.Load() }

// PruneExpired deletes revocations that expired at or before now, and
// subject records all of whose statements did. It returns how many entries
// it deleted and fsyncs once. Run it periodically; lookups do not look at
// expiry themselves.
func (s *Store) PruneExpired(now time.Time) (int, error) {
	nowUnix := now.Unix()
	n := 0
	err := s.update(func(tx *bbolt.Tx) error {
		n = 0
		var dead [][]byte
		rb := tx.Bucket(bucketRevoked)
		if err := rb.ForEach(func(k, v []byte) error {
			if len(v) != 8 || int64(binary.BigEndian.Uint64(v)) <= nowUnix {
				dead = append(dead, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		if err := deleteKeys(rb, dead); err != nil {
			return err
		}
		n += len(dead)
		dead = dead[:0]
		sb := tx.Bucket(bucketSubjects)
		if err := sb.ForEach(func(k, v []byte) error {
			rec, err := decodeSubject(v)
			if err != nil || rec.expired(nowUnix) {
				dead = append(dead, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		if err := deleteKeys(sb, dead); err != nil {
			return err
		}
		n += len(dead)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune expired statements: %w", err)
	}
	return n, nil
}

// deleteKeys deletes keys collected during a ForEach (bbolt forbids
// changing a bucket while iterating it).
func deleteKeys(b *bbolt.Bucket, keys [][]byte) error {
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
