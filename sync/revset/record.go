package revset

import (
	"cmp"
	"encoding/binary"

	"wicket/decoder"
)

// Kind is what a record states.
type Kind uint8

// Record kinds, equal to the verifier.Op values they come from.
const (
	KindRevoke     Kind = 1
	KindColour     Kind = 2
	KindVoidBefore Kind = 3
)

// RecordSize is the size of one record on disk:
//
//	0..8   key, big-endian (the first 8 bytes of the keyed hash)
//	8      kind
//	9      colour (KindColour), else 0
//	10..14 time, big-endian uint32 unix seconds (0 for KindRevoke)
//	14..18 expires, big-endian uint32 unix seconds
const RecordSize = 18

// Record is one statement as it is stored.
type Record struct {
	Key     uint64
	Time    uint32
	Expires uint32
	Kind    Kind
	Colour  decoder.Colour
	// seq orders records with equal key and kind by arrival while they
	// are sorted; it is never stored.
	seq uint32
}

func (r *Record) put(b []byte) {
	_ = b[RecordSize-1]
	binary.BigEndian.PutUint64(b, r.Key)
	b[8] = byte(r.Kind)
	b[9] = byte(r.Colour)
	binary.BigEndian.PutUint32(b[10:], r.Time)
	binary.BigEndian.PutUint32(b[14:], r.Expires)
}

func getRecord(b []byte) Record {
	_ = b[RecordSize-1]
	return Record{
		Key:     binary.BigEndian.Uint64(b),
		Kind:    Kind(b[8]),
		Colour:  decoder.Colour(b[9]),
		Time:    binary.BigEndian.Uint32(b[10:]),
		Expires: binary.BigEndian.Uint32(b[14:]),
	}
}

// valid reports whether a decoded record can be a stored statement.
func (r *Record) valid() bool {
	switch r.Kind {
	case KindRevoke:
		return r.Colour == 0
	case KindColour:
		return r.Colour >= decoder.ColourGreen && r.Colour <= decoder.ColourRed
	case KindVoidBefore:
		return r.Colour == 0
	}
	return false
}

// compareKK orders records by key, then kind.
func compareKK(a, b *Record) int {
	if c := cmp.Compare(a.Key, b.Key); c != 0 {
		return c
	}
	return cmp.Compare(a.Kind, b.Kind)
}

// compareSeq orders records by key, kind, then arrival.
func compareSeq(a, b Record) int {
	if c := compareKK(&a, &b); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

// combine folds a newer record into an older one with the same key and
// kind: a revocation keeps its latest expiry; a colour or void-before
// statement is replaced only by a strictly newer one.
func combine(older, newer Record) Record {
	if older.Kind == KindRevoke {
		older.Expires = max(older.Expires, newer.Expires)
		return older
	}
	if newer.Time > older.Time {
		return newer
	}
	return older
}

// dedupSorted combines runs of equal (key, kind) in a slice sorted by
// compareSeq, in place, and returns the shortened slice.
func dedupSorted(rs []Record) []Record {
	if len(rs) == 0 {
		return rs
	}
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if compareKK(last, &r) == 0 {
			*last = combine(*last, r)
			continue
		}
		out = append(out, r)
	}
	return out
}

// mergeSorted merges two deduplicated sorted slices into a new one; on
// equal (key, kind) the record of older goes first into combine.
func mergeSorted(older, newer []Record) []Record {
	out := make([]Record, 0, len(older)+len(newer))
	i, j := 0, 0
	for i < len(older) && j < len(newer) {
		switch c := compareKK(&older[i], &newer[j]); {
		case c < 0:
			out = append(out, older[i])
			i++
		case c > 0:
			out = append(out, newer[j])
			j++
		default:
			out = append(out, combine(older[i], newer[j]))
			i++
			j++
		}
	}
	out = append(out, older[i:]...)
	return append(out, newer[j:]...)
}

// searchSorted returns the index of the first record in rs not less than
// (key, kind).
func searchSorted(rs []Record, key uint64, kind Kind) int {
	lo, hi := 0, len(rs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if rs[m].Key < key || (rs[m].Key == key && rs[m].Kind < kind) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}
