package store

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"go.etcd.io/bbolt"

	"wicket/sync/wire"
)

// Event types (the record types of the wire contract).
const (
	TypeDecision  = wire.TypeDecision
	TypePassage   = wire.TypePassage
	TypeEmergency = wire.TypeEmergency
	TypeAttendant = wire.TypeAttendant
	TypeAlert     = wire.TypeAlert
	TypeSystem    = wire.TypeSystem
)

// Event is one access-log record: the record of the wire contract, which
// the store keeps as its JSON (wire.Record).
type Event = wire.Record

// HashID returns the record form of a voucher id: hex of the first 16
// bytes of HMAC-SHA256(record key, "v\x00" || id).
func (s *Store) HashID(id []byte) string { return s.hash('v', id) }

// HashSubject returns the record form of a subject pseudonym: hex of the
// first 16 bytes of HMAC-SHA256(record key, "s\x00" || sub).
func (s *Store) HashSubject(sub []byte) string { return s.hash('s', sub) }

func (s *Store) hash(domain byte, id []byte) string {
	m := hmac.New(sha256.New, s.recordKey)
	m.Write([]byte{domain, 0})
	m.Write(id)
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// passbackKey is the fixed-size anti-passback key of a voucher at a venue.
func passbackKey(venue, voucher string) []byte {
	h := sha256.New()
	h.Write([]byte{'p', 0})
	h.Write(binary.AppendUvarint(nil, uint64(len(venue))))
	h.Write([]byte(venue))
	h.Write([]byte(voucher))
	return h.Sum(nil)[:16]
}

// unixNano is t in nanoseconds, clamped to the int64 range (time.UnixNano
// is undefined outside it, for the zero time among others).
func unixNano(t time.Time) int64 {
	if t.Before(time.Unix(0, math.MinInt64)) {
		return math.MinInt64
	}
	if t.After(time.Unix(0, math.MaxInt64)) {
		return math.MaxInt64
	}
	return t.UnixNano()
}

// minus is t-d in nanoseconds, saturating at the int64 range.
func minus(t int64, d time.Duration) int64 {
	if r := t - int64(d); (d > 0) == (r < t) {
		return r
	}
	if d > 0 {
		return math.MinInt64
	}
	return math.MaxInt64
}

// Append commits ev to the access log and the outbox in one transaction,
// fsynced before it returns, and returns its sequence number (also set in
// ev.Seq). It is Prepare and Commit in one call.
//
// Anti-passback memory: passback is the anti-passback window in force.
// When it is > 0, an allowing decision (Type TypeDecision, Allow, a
// Voucher) is remembered as the voucher's last allowed passage at its
// venue (ev.At, read back by LastAllowed), in the same transaction as the
// record. The store records the decision it is given; it never changes it.
//
// When the outbox holds MaxOutbox records the event is logged but not
// queued, and Stats().Dropped counts it; that is not an error, so the gate
// keeps deciding. When the log holds more than MaxEvents records the oldest
// are deleted in the same transaction, at most 1024 per call (after
// MaxEvents was lowered, later calls delete the rest).
//
// On error nothing is written and ev is unchanged; the caller must treat
// the decision as not committed.
func (s *Store) Append(ev *Event, passback time.Duration) (uint64, error) {
	if ev == nil {
		return 0, errors.New("append event: nil event")
	}
	e := *ev
	p, err := s.Prepare(&e, passback)
	if err != nil {
		return 0, err
	}
	if err := p.Commit(); err != nil {
		return 0, err
	}
	*ev = e
	return e.Seq, nil
}

// Pending is an Append whose write transaction is built but not yet
// written: its record, outbox row, anti-passback entry and counters exist
// only in memory until Commit. While it is open it holds the store's write
// lock, so other writers wait (lookups and reads do not): commit or roll
// it back at once. It may be committed or rolled back on another
// goroutine than the one that prepared it, but not from two at once.
type Pending struct {
	s      *Store
	tx     *bbolt.Tx
	seq    uint64
	queued bool
	done   bool
}

// Prepare builds the transaction of Append for ev (everything but writing
// it, the anti-passback memory included) and sets ev.Seq to the sequence
// number the record gets if Commit succeeds. Nothing is on disk until
// Commit; after Rollback, or a failed Commit, nothing of it exists and the
// sequence number is given to the next record.
//
// This lets a caller act on the decision (open the turnstile) while the
// record is written: see docs/design.md, "Relay before fsync", for what
// that trades. On error nothing is held, ev is unchanged, and the caller
// must treat the decision as not committed.
func (s *Store) Prepare(ev *Event, passback time.Duration) (p *Pending, err error) {
	if ev == nil {
		return nil, errors.New("append event: nil event")
	}
	if s.readOnly {
		return nil, fmt.Errorf("append event: %w", ErrReadOnly)
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		return nil, fmt.Errorf("append event: %w", s.commits.noteCommit(err))
	}
	defer func() {
		if p == nil {
			_ = tx.Rollback()
		}
	}()
	e := *ev
	queued, err := s.appendTx(tx, &e, passback)
	if err != nil {
		return nil, fmt.Errorf("append event: %w", err)
	}
	*ev = e
	return &Pending{s: s, tx: tx, seq: e.Seq, queued: queued}, nil
}

// Commit writes and fsyncs the prepared transaction; it blocks for the
// disk. On error nothing of it is durable, the error is marked with
// ErrCommit and recorded for CommitHealth (as for every write), and the
// caller must treat the record as lost. A second call returns an error.
func (p *Pending) Commit() error {
	if p.done {
		return errors.New("append event: transaction already closed")
	}
	p.done = true
	if err := p.s.commits.noteCommit(p.tx.Commit()); err != nil {
		return fmt.Errorf("append event: %w", err)
	}
	if was := p.s.dropping.Swap(!p.queued); was != !p.queued {
		if p.queued {
			p.s.log.Info("outbox has room again; queueing events for sync", "seq", p.seq)
		} else {
			p.s.log.Warn("outbox full; events are logged but not queued for sync", "seq", p.seq, "max_outbox", p.s.maxOutbox)
		}
	}
	return nil
}

// Rollback discards the prepared transaction; nothing is written. It is a
// no-op after Commit or an earlier Rollback.
func (p *Pending) Rollback() {
	if !p.done {
		p.done = true
		_ = p.tx.Rollback()
	}
}

// appendTx writes e in tx: the record, its outbox row, the anti-passback
// memory and the counters. It sets e.Seq; it reports whether the record
// was queued in the outbox.
func (s *Store) appendTx(tx *bbolt.Tx, e *Event, passback time.Duration) (bool, error) {
	meta := tx.Bucket(bucketMeta)
	e.Seq = getUint(meta, keySeq) + 1
	if e.Type == TypeDecision && e.Allow && passback > 0 && e.Voucher != "" {
		k := passbackKey(e.Venue, e.Voucher)
		if err := tx.Bucket(bucketPassback).Put(k, u64(uint64(unixNano(e.At)))); err != nil {
			return false, err
		}
	}
	data, err := json.Marshal(e)
	if err != nil {
		return false, fmt.Errorf("encode: %w", err)
	}
	if len(data) > maxEventBytes {
		return false, fmt.Errorf("%w: %d bytes, over %d", ErrEventTooLarge, len(data), maxEventBytes)
	}
	key := u64(e.Seq)
	events, outbox := tx.Bucket(bucketEvents), tx.Bucket(bucketOutbox)
	// Keys only ever grow: fill pages instead of splitting them in half.
	events.FillPercent, outbox.FillPercent = appendFillPercent, appendFillPercent
	if err := events.Put(key, data); err != nil {
		return false, err
	}
	nEvents := getUint(meta, keyEventCount) + 1
	if nEvents > s.maxEvents {
		pruned, err := pruneOldest(events, min(nEvents-s.maxEvents, maxPrunePerTx))
		if err != nil {
			return false, err
		}
		nEvents -= pruned
	}
	nOutbox := getUint(meta, keyOutboxCount)
	queued := nOutbox < s.maxOutbox
	if queued {
		if err := outbox.Put(key, data); err != nil {
			return false, err
		}
		nOutbox++
	} else if err := putUint(meta, keyDropped, getUint(meta, keyDropped)+1); err != nil {
		return false, err
	}
	for _, kv := range [...]struct {
		k []byte
		v uint64
	}{{keySeq, e.Seq}, {keyEventCount, nEvents}, {keyOutboxCount, nOutbox}} {
		if err := putUint(meta, kv.k, kv.v); err != nil {
			return false, err
		}
	}
	return queued, nil
}

// pruneOldest deletes up to n of the lowest keys and returns how many it
// deleted.
func pruneOldest(b *bbolt.Bucket, n uint64) (uint64, error) {
	c := b.Cursor()
	var done uint64
	for k, _ := c.First(); k != nil && done < n; k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return done, err
		}
		done++
	}
	return done, nil
}

// Events returns up to max records of the access log with seq > after, in
// seq order; max is capped at MaxPage, and max <= 0 returns none.
func (s *Store) Events(after uint64, max int) ([]Event, error) {
	evs, err := s.scan(bucketEvents, after, max)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return evs, nil
}

// Outbox returns up to max records queued for sync with seq > after, in
// seq order; max is capped at MaxPage, and max <= 0 returns none. Records
// stay queued until Ack, even when pruned from the log.
func (s *Store) Outbox(after uint64, max int) ([]Event, error) {
	evs, err := s.scan(bucketOutbox, after, max)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return evs, nil
}

func (s *Store) scan(bucket []byte, after uint64, limit int) ([]Event, error) {
	limit = min(limit, MaxPage)
	if limit <= 0 || after == math.MaxUint64 {
		return nil, nil
	}
	var evs []Event
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(evs) < limit; k, v = c.Next() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("record %x: %w", k, err)
			}
			evs = append(evs, e)
		}
		return nil
	})
	return evs, err
}

// Ack removes every outbox record with seq <= through, in one transaction
// (fsynced), and returns how many it removed. It is idempotent: acking
// again, or below what was acked, removes nothing.
func (s *Store) Ack(through uint64) (int, error) {
	return s.AckRange(0, through)
}

// AckRange deletes the outbox rows with from <= seq <= through: what one
// collector acknowledged of one records batch. Acks of several collectors
// may arrive in any order; it is idempotent and fsyncs once.
func (s *Store) AckRange(from, through uint64) (int, error) {
	n := 0
	err := s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		var keys [][]byte
		c := b.Cursor()
		var start [8]byte
		binary.BigEndian.PutUint64(start[:], from)
		for k, _ := c.Seek(start[:]); k != nil && binary.BigEndian.Uint64(k) <= through; k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		if len(keys) == 0 {
			return nil
		}
		if err := deleteKeys(b, keys); err != nil {
			return err
		}
		n = len(keys)
		meta := tx.Bucket(bucketMeta)
		left := getUint(meta, keyOutboxCount)
		return putUint(meta, keyOutboxCount, left-min(uint64(n), left))
	})
	if err != nil {
		return 0, fmt.Errorf("ack outbox through %d: %w", through, err)
	}
	return n, nil
}

// LastAllowed returns when voucher (its record form, HashID) was last
// recorded allowed at venue with an anti-passback window in force, and
// false if the store does not remember it (never allowed, or pruned). It
// reads the last committed state: a caller that decides on it and then
// records the decision must be the only writer of decisions, or two
// scans could both read "not remembered" (the gate's decision loop is
// that one writer).
func (s *Store) LastAllowed(venue, voucher string) (time.Time, bool, error) {
	var at time.Time
	var ok bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketPassback).Get(passbackKey(venue, voucher)); len(v) == 8 {
			at, ok = time.Unix(0, int64(binary.BigEndian.Uint64(v))), true
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read anti-passback memory: %w", err)
	}
	return at, ok, nil
}

// PrunePassback forgets anti-passback entries last allowed before
// now-window; they can no longer deny anything with that window. It returns
// how many it removed. It finds them in a read transaction, which does
// not hold the write lock that an opened passage's record waits for
// (reading a large memory from an SD card takes hundreds of ms), and
// deletes them in one write transaction (fsynced once), none when none
// expired. An entry renewed in between (the voucher allowed again) stays.
func (s *Store) PrunePassback(now time.Time, window time.Duration) (int, error) {
	cutoff := minus(unixNano(now), max(window, 0))
	keys, err := s.expiredPassback(cutoff)
	if err != nil {
		return 0, fmt.Errorf("prune anti-passback entries: %w", err)
	}
	n, err := s.deletePassback(keys, cutoff)
	if err != nil {
		return 0, fmt.Errorf("prune anti-passback entries: %w", err)
	}
	return n, nil
}

// passbackExpired reports whether an anti-passback entry's value is
// before cutoff (or damaged).
func passbackExpired(v []byte, cutoff int64) bool {
	return len(v) != 8 || int64(binary.BigEndian.Uint64(v)) < cutoff
}

// expiredPassback returns the keys of the anti-passback entries before
// cutoff, read in a read transaction.
func (s *Store) expiredPassback(cutoff int64) ([][]byte, error) {
	var keys [][]byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketPassback).ForEach(func(k, v []byte) error {
			if passbackExpired(v, cutoff) {
				keys = append(keys, bytes.Clone(k))
			}
			return nil
		})
	})
	return keys, err
}

// deletePassback deletes the entries keys that are still before cutoff,
// in one write transaction (none when keys is empty), and returns how
// many it deleted.
func (s *Store) deletePassback(keys [][]byte, cutoff int64) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	n := 0
	err := s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketPassback)
		for _, k := range keys {
			if v := b.Get(k); v == nil || !passbackExpired(v, cutoff) {
				continue
			}
			if err := b.Delete(k); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
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
