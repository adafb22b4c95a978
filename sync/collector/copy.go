package collector

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"wicket/sync/wire"
)

// copySQL copies rows in PostgreSQL's binary COPY format (copyRows) into
// the recordColumns of wicket_records.
var copySQL = "COPY wicket_records (" + strings.Join(recordColumns, ", ") + ") FROM STDIN (FORMAT binary)"

// copyHeader starts a binary COPY: the signature, no flags, no header
// extension.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// textOID is PostgreSQL's type oid of text, the element type of warnings.
const textOID = 25

// y2kMicros is 2000-01-01 00:00:00 UTC, PostgreSQL's timestamp epoch, in
// microseconds since 1970.
const y2kMicros = 946684800 * 1_000_000

// copyBuffers are reused by copyRows: a COPY of 1,600 rows takes about
// 400 kB.
var copyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// copyRows encodes the records of rs as the rows of a binary COPY in
// recordColumns order, each column in the binary form of its type, the
// way pgx would encode them but without boxing every value in an
// interface and planning its encoding per value. The hashes must be
// hex, as check makes sure; a hash that is not is an error.
func copyRows(b *bytes.Buffer, rs []*wire.Records) error {
	b.Write(copyHeader)
	var scratch [8]byte
	u16 := func(v uint16) { binary.BigEndian.PutUint16(scratch[:2], v); b.Write(scratch[:2]) }
	u32 := func(v uint32) { binary.BigEndian.PutUint32(scratch[:4], v); b.Write(scratch[:4]) }
	// field8 writes a field of 8 bytes: bigint, timestamptz, float8.
	field8 := func(v uint64) { u32(8); binary.BigEndian.PutUint64(scratch[:], v); b.Write(scratch[:]) }
	text := func(s string) { u32(uint32(len(s))); b.WriteString(s) }
	boolean := func(v bool) {
		u32(1)
		if v {
			b.WriteByte(1)
		} else {
			b.WriteByte(0)
		}
	}
	timestamptz := func(t time.Time) { field8(uint64(t.Unix()*1_000_000 + int64(t.Nanosecond()/1000) - y2kMicros)) }
	hash := func(s string) error {
		var h [hashBytes]byte
		v, err := appendHash(h[:0], s)
		if err != nil {
			return err
		}
		u32(uint32(len(v)))
		b.Write(v)
		return nil
	}
	// warnings, a one-dimensional text[] (no dimension when empty): its
	// size, then dimensions, no NULLs, the element type, per dimension
	// the length and lower bound 1, then each element.
	array := func(ss []string) {
		size := 12
		if len(ss) > 0 {
			size += 8
		}
		for _, s := range ss {
			size += 4 + len(s)
		}
		u32(uint32(size))
		if len(ss) == 0 {
			u32(0)
			u32(0)
			u32(textOID)
			return
		}
		u32(1)
		u32(0)
		u32(textOID)
		u32(uint32(len(ss)))
		u32(1)
		for _, s := range ss {
			text(s)
		}
	}
	for _, r := range rs {
		for i := range r.Records {
			e := &r.Records[i]
			u16(uint16(len(recordColumns)))
			text(e.Gate)
			field8(uint64(int64(e.Seq)))
			text(e.Type)
			timestamptz(e.At)
			text(e.Venue)
			boolean(e.Allow)
			text(e.Reason)
			text(e.Colour)
			text(e.Kind)
			text(e.Class)
			text(e.Issuer)
			if err := hash(e.Voucher); err != nil {
				return fmt.Errorf("seq %d: voucher: %w", e.Seq, err)
			}
			if err := hash(e.Subject); err != nil {
				return fmt.Errorf("seq %d: subject: %w", e.Seq, err)
			}
			boolean(e.Alert)
			boolean(e.Attendant)
			array(e.Warnings)
			field8(uint64(int64(e.Ref)))
			text(e.Detail)
			text(e.Temperature)
			field8(math.Float64bits(e.Celsius))
		}
	}
	u16(0xffff) // the trailer: -1 fields
	return nil
}
