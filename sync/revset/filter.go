package revset

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"slices"

	"github.com/FastFilter/xorfilter"
)

// The filter file holds a binary fuse filter (16-bit fingerprints, about
// 18 bits a key, false-positive rate about 0.0015 %) of every key of one
// snapshot file, so a lookup of a key the snapshot does not hold (almost
// every lookup on a gate) does not read the snapshot. 8-bit fingerprints
// (0.4 %) were measured first: a decision looks up two keys, so 0.8 % of
// decisions on unknown keys read the file, which is the p99 itself on a
// board whose page cache can't hold it (docs/revocations.md §9). It is derived data:
// built with the snapshot, rebuilt from it when missing or damaged.
//
// The keys are split into 2^bits shards by their top bits, one filter
// each, so a build keeps one shard's keys and scratch in memory (about
// 40 bytes a key for at most ~1M keys), whatever the size of the set.
//
//	header   0..8 magic "WKREVFLT", 8..10 format version (1),
//	         10..12 shard bits, 12..14 fingerprint size in bytes (2),
//	         14..16 reserved, 16..24 body length,
//	         24..28 CRC-32C of the body, 28..60 reserved,
//	         60..64 CRC-32C of bytes 0..60
//	         64..128 the 64-byte header of the snapshot file it was
//	         built from (a filter of another file is never used)
//	body     per shard: seed (8), segment length, segment length mask,
//	         segment count, segment count length, fingerprint count
//	         (4 each), then the fingerprints, two bytes each
//
// All integers big-endian.
const (
	filterMagic      = "WKREVFLT"
	filterVersion    = 1
	fingerprintSize  = 2
	filterHeaderSize = 64 + HeaderSize
	shardHeadSize    = 28
	// filterShardKeys is the most keys a shard is sized for: its build
	// needs about 40 bytes a key (keys, the library's scratch), 40 MiB.
	filterShardKeys = 1 << 20
	// maxFilterBits bounds the shard count read from a file.
	maxFilterBits = 24
)

// ErrFilterStale: the filter file was built from another snapshot file.
var ErrFilterStale = errors.New("revset: filter file does not match the snapshot")

// filter answers "may the snapshot hold this key": false means it
// certainly does not.
type filter struct {
	shift  uint // 64 - shard bits
	bits   int
	shards []fuse
	bytes  int
}

// fuse is one shard's filter.
type fuse = xorfilter.BinaryFuse[uint16]

// contains reports whether the snapshot may hold key. An empty shard
// holds nothing.
func (f *filter) contains(key uint64) bool {
	s := &f.shards[key>>f.shift]
	if s.Fingerprints == nil {
		return false
	}
	return s.Contains(key)
}

// filterBits picks the shard bits for n keys: shards of at most
// filterShardKeys keys on average.
func filterBits(n uint64) int { return min(bits.Len64(n/filterShardKeys), maxFilterBits) }

// filterBuilder builds a filter from keys in increasing order (equal keys
// are repeated in a file: a subject's colour and void-before records).
type filterBuilder struct {
	f    *filter
	cur  uint64
	keys []uint64
	last uint64
	b    xorfilter.BinaryFuseBuilder
	err  error
}

// newFilterBuilder sizes a filter for at most upper keys.
func newFilterBuilder(upper uint64) *filterBuilder {
	b := filterBits(upper)
	return &filterBuilder{f: &filter{shift: uint(64 - b), bits: b, shards: make([]fuse, 1<<b)}}
}

func (fb *filterBuilder) add(key uint64) {
	if fb.err != nil {
		return
	}
	s := key >> fb.f.shift
	if s != fb.cur {
		if s < fb.cur {
			fb.err = errors.New("revset: filter keys out of order")
			return
		}
		fb.flush()
		fb.cur = s
	}
	if len(fb.keys) > 0 && key == fb.last {
		return
	}
	if fb.keys == nil {
		fb.keys = make([]uint64, 0, 1<<16)
	}
	fb.keys = append(fb.keys, key)
	fb.last = key
}

// flush builds the current shard and frees its keys.
func (fb *filterBuilder) flush() {
	if len(fb.keys) == 0 || fb.err != nil {
		return
	}
	s, err := xorfilter.BuildBinaryFuse[uint16](&fb.b, fb.keys)
	if err != nil {
		fb.err = fmt.Errorf("revset: filter shard %d: %w", fb.cur, err)
		return
	}
	if !shardValid(&s, uint64(len(s.Fingerprints))) {
		fb.err = fmt.Errorf("revset: filter shard %d: unexpected parameters", fb.cur)
		return
	}
	// The builder owns the fingerprints and reuses them for the next shard.
	s.Fingerprints = slices.Clone(s.Fingerprints)
	fb.f.shards[fb.cur] = s
	fb.f.bytes += fingerprintSize * len(s.Fingerprints)
	fb.keys = fb.keys[:0]
}

// finish returns the filter; the builder's scratch is released.
func (fb *filterBuilder) finish() (*filter, error) {
	fb.flush()
	fb.keys, fb.b = nil, xorfilter.BinaryFuseBuilder{}
	if fb.err != nil {
		return nil, fb.err
	}
	return fb.f, nil
}

// buildFilter builds the filter of a file by reading it once through the
// descriptor. A retired file stops it (errStopped).
func (fl *File) buildFilter() (*filter, error) {
	fl.refs.Add(1)
	defer fl.refs.Add(-1)
	fb := newFilterBuilder(fl.hdr.Count)
	err := fl.all(func(r Record) error {
		if fl.stop.Load() {
			return errStopped
		}
		fb.add(r.Key)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return fb.finish()
}

// writeFilter writes the filter of the snapshot with header hdr to path:
// a temporary file, fsync, rename, fsync of the directory.
func writeFilter(path string, f *filter, hdr *Header) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("revset: write filter: %w", err)
	}
	w := bufio.NewWriterSize(tmp, 1<<20)
	if _, err := w.Write(make([]byte, filterHeaderSize)); err != nil {
		return fail(err)
	}
	crc, size := uint32(0), uint64(0)
	put := func(b []byte) error {
		crc = crc32.Update(crc, castagnoli, b)
		size += uint64(len(b))
		_, err := w.Write(b)
		return err
	}
	var sh [shardHeadSize]byte
	var fp []byte
	for i := range f.shards {
		s := &f.shards[i]
		binary.BigEndian.PutUint64(sh[0:], s.Seed)
		binary.BigEndian.PutUint32(sh[8:], s.SegmentLength)
		binary.BigEndian.PutUint32(sh[12:], s.SegmentLengthMask)
		binary.BigEndian.PutUint32(sh[16:], s.SegmentCount)
		binary.BigEndian.PutUint32(sh[20:], s.SegmentCountLength)
		binary.BigEndian.PutUint32(sh[24:], uint32(len(s.Fingerprints)))
		if err := put(sh[:]); err != nil {
			return fail(err)
		}
		fp = fp[:0]
		for _, x := range s.Fingerprints {
			fp = binary.BigEndian.AppendUint16(fp, x)
		}
		if err := put(fp); err != nil {
			return fail(err)
		}
	}
	h := make([]byte, filterHeaderSize)
	copy(h, filterMagic)
	binary.BigEndian.PutUint16(h[8:], filterVersion)
	binary.BigEndian.PutUint16(h[10:], uint16(f.bits))
	binary.BigEndian.PutUint16(h[12:], fingerprintSize)
	binary.BigEndian.PutUint64(h[16:], size)
	binary.BigEndian.PutUint32(h[24:], crc)
	binary.BigEndian.PutUint32(h[60:], crc32.Checksum(h[:60], castagnoli))
	copy(h[64:], hdr.encode())
	err = w.Flush()
	if err == nil {
		_, err = tmp.WriteAt(h, 0)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = tmp.Close()
	}
	if err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("revset: write filter: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// readFilter reads the filter file at path and checks it belongs to the
// snapshot with header hdr: ErrFilterStale if it was built from another
// file, ErrCorrupt if it fails its checks.
func readFilter(path string, hdr *Header) (*filter, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(fd, 1<<20)
	h := make([]byte, filterHeaderSize)
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, fmt.Errorf("%w: filter header: %w", ErrCorrupt, err)
	}
	switch {
	case string(h[:8]) != filterMagic:
		return nil, fmt.Errorf("%w: filter magic", ErrCorrupt)
	case crc32.Checksum(h[:60], castagnoli) != binary.BigEndian.Uint32(h[60:]):
		return nil, fmt.Errorf("%w: filter header checksum", ErrCorrupt)
	case binary.BigEndian.Uint16(h[8:]) != filterVersion:
		return nil, fmt.Errorf("%w: filter format version %d", ErrCorrupt, binary.BigEndian.Uint16(h[8:]))
	case binary.BigEndian.Uint16(h[12:]) != fingerprintSize:
		return nil, fmt.Errorf("%w: filter fingerprints of %d bytes", ErrCorrupt, binary.BigEndian.Uint16(h[12:]))
	case !bytes.Equal(h[64:], hdr.encode()):
		return nil, ErrFilterStale
	}
	b := int(binary.BigEndian.Uint16(h[10:]))
	size := binary.BigEndian.Uint64(h[16:])
	if b > maxFilterBits || size != uint64(st.Size())-filterHeaderSize {
		return nil, fmt.Errorf("%w: filter of %d bytes with %d shard bits", ErrCorrupt, st.Size(), b)
	}
	f := &filter{shift: uint(64 - b), bits: b, shards: make([]fuse, 1<<b)}
	crc, left := uint32(0), size
	var sh [shardHeadSize]byte
	var fp []byte
	for i := range f.shards {
		if left < shardHeadSize {
			return nil, fmt.Errorf("%w: filter shard %d cut", ErrCorrupt, i)
		}
		if _, err := io.ReadFull(r, sh[:]); err != nil {
			return nil, fmt.Errorf("%w: filter shard %d: %w", ErrCorrupt, i, err)
		}
		crc = crc32.Update(crc, castagnoli, sh[:])
		left -= shardHeadSize
		s := fuse{
			Seed:               binary.BigEndian.Uint64(sh[0:]),
			SegmentLength:      binary.BigEndian.Uint32(sh[8:]),
			SegmentLengthMask:  binary.BigEndian.Uint32(sh[12:]),
			SegmentCount:       binary.BigEndian.Uint32(sh[16:]),
			SegmentCountLength: binary.BigEndian.Uint32(sh[20:]),
		}
		n := uint64(binary.BigEndian.Uint32(sh[24:]))
		if n*fingerprintSize > left || !shardValid(&s, n) {
			return nil, fmt.Errorf("%w: filter shard %d parameters", ErrCorrupt, i)
		}
		if n > 0 {
			if uint64(cap(fp)) < n*fingerprintSize {
				fp = make([]byte, n*fingerprintSize)
			}
			fp = fp[:n*fingerprintSize]
			if _, err := io.ReadFull(r, fp); err != nil {
				return nil, fmt.Errorf("%w: filter shard %d: %w", ErrCorrupt, i, err)
			}
			crc = crc32.Update(crc, castagnoli, fp)
			s.Fingerprints = make([]uint16, n)
			for j := range s.Fingerprints {
				s.Fingerprints[j] = binary.BigEndian.Uint16(fp[fingerprintSize*j:])
			}
			left -= n * fingerprintSize
			f.bytes += int(n * fingerprintSize)
		}
		f.shards[i] = s
	}
	if left != 0 || crc != binary.BigEndian.Uint32(h[24:]) {
		return nil, fmt.Errorf("%w: filter checksum", ErrCorrupt)
	}
	return f, nil
}

// shardValid checks that a shard's parameters keep every probe of
// Contains inside n fingerprints, so a damaged file can't make a lookup
// read out of bounds. An empty shard has all zero.
func shardValid(s *fuse, n uint64) bool {
	if n == 0 {
		return s.Seed == 0 && s.SegmentLength == 0 && s.SegmentLengthMask == 0 && s.SegmentCount == 0 && s.SegmentCountLength == 0
	}
	l := uint64(s.SegmentLength)
	return l > 0 && l&(l-1) == 0 && uint64(s.SegmentLengthMask) == l-1 &&
		uint64(s.SegmentCountLength) == uint64(s.SegmentCount)*l && s.SegmentCount > 0 &&
		n == (uint64(s.SegmentCount)+2)*l
}
