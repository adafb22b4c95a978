package revset

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Errors callers branch on.
var (
	// ErrCorrupt: a file or log frame failed its checks.
	ErrCorrupt = errors.New("revset: file corrupt")
	// ErrKeyMismatch: the file was hashed with another gate key.
	ErrKeyMismatch = errors.New("revset: file written with another gate key")
)

// File format constants.
const (
	fileMagic   = "WKREVSET"
	fileVersion = 1
	// HeaderSize is the size of the file header:
	//
	//	0..8   magic "WKREVSET"
	//	8..10  format version, big-endian uint16 (1)
	//	10..12 record size, big-endian uint16 (18)
	//	12..16 reserved, zero
	//	16..24 record count, big-endian uint64
	//	24..32 trust data version (batch version), big-endian uint64
	//	32..40 batch issued-at, big-endian int64 unix seconds
	//	40..48 key id (Hasher.KeyID)
	//	48..52 earliest expiry of any record, big-endian uint32 (0: none)
	//	52..56 reserved, zero
	//	56..60 CRC-32C of the records, big-endian
	//	60..64 CRC-32C of bytes 0..60, big-endian
	HeaderSize = 64
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header describes a snapshot file.
type Header struct {
	Count      uint64
	Version    uint64
	IssuedAt   int64
	KeyID      [8]byte
	MinExpires uint32
	BodyCRC    uint32
}

func (h *Header) encode() []byte {
	b := make([]byte, HeaderSize)
	copy(b, fileMagic)
	binary.BigEndian.PutUint16(b[8:], fileVersion)
	binary.BigEndian.PutUint16(b[10:], RecordSize)
	binary.BigEndian.PutUint64(b[16:], h.Count)
	binary.BigEndian.PutUint64(b[24:], h.Version)
	binary.BigEndian.PutUint64(b[32:], uint64(h.IssuedAt))
	copy(b[40:], h.KeyID[:])
	binary.BigEndian.PutUint32(b[48:], h.MinExpires)
	binary.BigEndian.PutUint32(b[56:], h.BodyCRC)
	binary.BigEndian.PutUint32(b[60:], crc32.Checksum(b[:60], castagnoli))
	return b
}

func decodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: header is %d bytes", ErrCorrupt, len(b))
	}
	switch {
	case string(b[:8]) != fileMagic:
		return Header{}, fmt.Errorf("%w: bad magic", ErrCorrupt)
	case crc32.Checksum(b[:60], castagnoli) != binary.BigEndian.Uint32(b[60:]):
		return Header{}, fmt.Errorf("%w: header checksum", ErrCorrupt)
	case binary.BigEndian.Uint16(b[8:]) != fileVersion:
		return Header{}, fmt.Errorf("%w: format version %d", ErrCorrupt, binary.BigEndian.Uint16(b[8:]))
	case binary.BigEndian.Uint16(b[10:]) != RecordSize:
		return Header{}, fmt.Errorf("%w: record size %d", ErrCorrupt, binary.BigEndian.Uint16(b[10:]))
	}
	h := Header{
		Count:      binary.BigEndian.Uint64(b[16:]),
		Version:    binary.BigEndian.Uint64(b[24:]),
		IssuedAt:   int64(binary.BigEndian.Uint64(b[32:])),
		MinExpires: binary.BigEndian.Uint32(b[48:]),
		BodyCRC:    binary.BigEndian.Uint32(b[56:]),
	}
	copy(h.KeyID[:], b[40:48])
	return h, nil
}

// Mode selects how a File reads its records.
type Mode int

const (
	// ModeAuto maps the file and falls back to pread when mapping fails
	// (a 32-bit address space too fragmented for the file).
	ModeAuto Mode = iota
	// ModeMmap reads through a read-only shared mapping.
	ModeMmap
	// ModePread reads each lookup's index bucket with one pread.
	ModePread
)

// DefaultIndexBits bounds the in-memory index: 2^20+1 uint32 offsets,
// 4 MiB, about 10 records per bucket at 10 million and 76 at 80 million.
const DefaultIndexBits = 20

// File is an open, verified snapshot file. Lookups are safe for concurrent
// use; the file is never modified.
type File struct {
	path string
	hdr  Header
	f    *os.File
	data []byte // the mapping, nil in pread mode
	idx  atomic.Pointer[fileIndex]
	flt  atomic.Pointer[filter] // nil: every lookup reads the file
	refs atomic.Int64
	once sync.Once
	bufs sync.Pool

	// A file opened lazily is verified after it is put in use: lookups
	// search the mapping until the index is there.
	verified chan struct{} // closed when verify has finished
	verr     error         // its result, read after verified is closed
	stop     atomic.Bool   // retire asks a running verify to give up
}

// fileIndex maps the top bits of a key to the records that may hold it.
type fileIndex struct {
	index []uint32
	shift uint
}

// errStopped: a verification given up because the file was retired.
var errStopped = errors.New("revset: verification stopped")

// indexBits picks the index size for n records: buckets of 4 to 8
// records on average, at most maxBits bits.
func indexBits(n uint64, maxBits int) int {
	if maxBits <= 0 {
		maxBits = DefaultIndexBits
	}
	if n < 16 {
		return 0
	}
	return min(bits.Len64(n/4)-1, maxBits)
}

// indexBuilder fills an index from records in key order.
type indexBuilder struct {
	index []uint32
	shift uint
	next  uint64
	n     uint32
}

func newIndexBuilder(upper uint64, maxBits int) *indexBuilder {
	b := indexBits(upper, maxBits)
	return &indexBuilder{index: make([]uint32, (1<<b)+1), shift: uint(64 - b)}
}

func (ib *indexBuilder) add(key uint64) {
	p := uint64(0)
	if ib.shift < 64 {
		p = key >> ib.shift
	}
	for ib.next <= p {
		ib.index[ib.next] = ib.n
		ib.next++
	}
	ib.n++
}

func (ib *indexBuilder) finish() {
	for ib.next < uint64(len(ib.index)) {
		ib.index[ib.next] = ib.n
		ib.next++
	}
}

// OpenFile opens and verifies a snapshot file: header checksum, size,
// key id (when keyID is not nil), record checksum, order and kinds. It
// reads the whole file once and builds the in-memory index.
func OpenFile(path string, keyID *[8]byte, mode Mode, maxIndexBits int) (*File, error) {
	return openPath(path, keyID, mode, maxIndexBits, false)
}

// openPath opens a snapshot file. With lazy set and the file mapped it
// checks only the header and size; the caller runs verify.
func openPath(path string, keyID *[8]byte, mode Mode, maxIndexBits int, lazy bool) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fl, err := openFile(f, keyID, mode, maxIndexBits)
	if err == nil && (!lazy || fl.data == nil) {
		if err = fl.verify(maxIndexBits, nil); err != nil {
			fl.unmap()
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	fl.path = path
	return fl, nil
}

func openFile(f *os.File, keyID *[8]byte, mode Mode, maxIndexBits int) (*File, error) {
	hb := make([]byte, HeaderSize)
	if _, err := io.ReadFull(f, hb); err != nil {
		return nil, fmt.Errorf("%w: read header: %w", ErrCorrupt, err)
	}
	hdr, err := decodeHeader(hb)
	if err != nil {
		return nil, err
	}
	if keyID != nil && hdr.KeyID != *keyID {
		return nil, ErrKeyMismatch
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if hdr.Count > (1<<40) || uint64(st.Size()) != HeaderSize+hdr.Count*RecordSize {
		return nil, fmt.Errorf("%w: %d bytes for %d records", ErrCorrupt, st.Size(), hdr.Count)
	}
	fl := &File{f: f, hdr: hdr, verified: make(chan struct{})}
	if mode != ModePread {
		data, err := mmapFile(f, uint64(st.Size()))
		switch {
		case err == nil:
			fl.data = data
		case mode == ModeMmap:
			return nil, fmt.Errorf("mmap: %w", err)
		}
	}
	fl.adviseRandom()
	return fl, nil
}

// verify reads every record once: checksum, order and kinds. On success
// it installs the index, and the filter when fb is not nil and its build
// succeeded. Its result is also kept for waitVerified.
func (fl *File) verify(maxIndexBits int, fb *filterBuilder) (err error) {
	defer func() {
		fl.verr = err
		close(fl.verified)
	}()
	hdr := fl.hdr
	ib := newIndexBuilder(hdr.Count, maxIndexBits)
	crc := uint32(0)
	var prev Record
	check := func(chunk []byte) error {
		if fl.stop.Load() {
			return errStopped
		}
		crc = crc32.Update(crc, castagnoli, chunk)
		for off := 0; off < len(chunk); off += RecordSize {
			r := getRecord(chunk[off:])
			if !r.valid() || (ib.n > 0 && compareKK(&prev, &r) >= 0) {
				return fmt.Errorf("%w: record %d out of order or invalid", ErrCorrupt, ib.n)
			}
			ib.add(r.Key)
			if fb != nil {
				fb.add(r.Key)
			}
			prev = r
		}
		return nil
	}
	// Through the descriptor even when mapped: the mapping is advised
	// for random access, the descriptor gets the kernel's read-ahead.
	fl.refs.Add(1)
	defer fl.refs.Add(-1)
	const chunk = RecordSize * 4096
	br := bufio.NewReaderSize(io.NewSectionReader(fl.f, HeaderSize, int64(hdr.Count*RecordSize)), 1<<20)
	buf := make([]byte, chunk)
	for left := hdr.Count * RecordSize; left > 0 && err == nil; {
		n := min(uint64(len(buf)), left)
		if _, err = io.ReadFull(br, buf[:n]); err == nil {
			err = check(buf[:n])
		}
		left -= n
	}
	if err != nil && fl.stop.Load() {
		return errStopped
	}
	if err == nil && crc != hdr.BodyCRC {
		err = fmt.Errorf("%w: record checksum", ErrCorrupt)
	}
	if err != nil {
		return err
	}
	ib.finish()
	fl.idx.Store(&fileIndex{index: ib.index, shift: ib.shift})
	if fb != nil {
		if ft, ferr := fb.finish(); ferr == nil {
			fl.flt.Store(ft)
		}
	}
	return nil
}

// waitVerified waits for verify and returns its result.
func (fl *File) waitVerified() error {
	<-fl.verified
	return fl.verr
}

func (fl *File) unmap() {
	if fl.data != nil {
		munmapFile(fl.data)
		fl.data = nil
	}
}

// Header returns the file's header.
func (fl *File) Header() Header { return fl.hdr }

// Mapped reports whether lookups read through a memory mapping.
func (fl *File) Mapped() bool { return fl.data != nil }

// IndexBytes is the memory the in-memory index takes (0 until verified).
func (fl *File) IndexBytes() int {
	if ix := fl.idx.Load(); ix != nil {
		return 4 * len(ix.index)
	}
	return 0
}

// FilterBytes is the memory the filter takes (0 without one).
func (fl *File) FilterBytes() int {
	if ft := fl.flt.Load(); ft != nil {
		return ft.bytes + len(ft.shards)*shardHeadSize
	}
	return 0
}

// Close releases the file. Lookups must have finished.
func (fl *File) Close() error {
	var err error
	fl.once.Do(func() {
		fl.unmap()
		err = fl.f.Close()
	})
	return err
}

// bucket returns the record range that may hold key.
func (ix *fileIndex) bucket(key uint64) (lo, hi uint32) {
	p := uint64(0)
	if ix.shift < 64 {
		p = key >> ix.shift
	}
	return ix.index[p], ix.index[p+1]
}

// keyAt reads the key of record i from the mapping.
func (fl *File) keyAt(i uint64) uint64 {
	return binary.BigEndian.Uint64(fl.data[HeaderSize+i*RecordSize:])
}

// locate returns the first record whose key is not below key, searching
// the mapping without the index. The keys are uniform hashes, so
// interpolation finds a key in a few probes; a step that does not halve
// the range is followed by a bisection, so a damaged (unsorted) file
// still ends within about 2·log2(n) probes, with a wrong but harmless
// answer.
func (fl *File) locate(key uint64) uint64 {
	lo, hi := uint64(0), fl.hdr.Count
	kl, kh := uint64(0), uint64(math.MaxUint64)
	bisect := false
	for hi-lo > 4 {
		m := lo + (hi-lo)/2
		if !bisect && kl <= key && key <= kh && kh > kl {
			p1, p0 := bits.Mul64(key-kl, hi-lo)
			q, _ := bits.Div64(p1, p0, kh-kl)
			m = lo + min(q, hi-lo-1)
		}
		before := hi - lo
		if km := fl.keyAt(m); km < key {
			lo, kl = m+1, km
		} else {
			hi, kh = m, km
		}
		bisect = !bisect && (hi-lo)*2 > before
	}
	for lo < hi && fl.keyAt(lo) < key {
		lo++
	}
	return lo
}

// lookup appends to dst the records with the key, in kind order. A key
// the filter rules out is not looked for in the file.
func (fl *File) lookup(key uint64, dst []Record) ([]Record, error) {
	if ft := fl.flt.Load(); ft != nil && !ft.contains(key) {
		return dst, nil
	}
	ix := fl.idx.Load()
	if ix == nil {
		// Not verified yet (lazy open, so mapped): no index.
		for i, n := fl.locate(key), 0; i < fl.hdr.Count && n < 4; i, n = i+1, n+1 {
			off := HeaderSize + i*RecordSize
			if binary.BigEndian.Uint64(fl.data[off:]) != key {
				break
			}
			dst = append(dst, getRecord(fl.data[off:]))
		}
		return dst, nil
	}
	lo, hi := ix.bucket(key)
	if lo == hi {
		return dst, nil
	}
	var b []byte
	var bp *[]byte
	if fl.data != nil {
		b = fl.data[HeaderSize+uint64(lo)*RecordSize : HeaderSize+uint64(hi)*RecordSize]
	} else {
		n := int(hi-lo) * RecordSize
		if v := fl.bufs.Get(); v != nil {
			bp = v.(*[]byte)
		} else {
			s := make([]byte, 0, 64*RecordSize)
			bp = &s
		}
		if cap(*bp) < n {
			*bp = make([]byte, n)
		}
		b = (*bp)[:n]
		if _, err := fl.f.ReadAt(b, HeaderSize+int64(lo)*RecordSize); err != nil {
			fl.bufs.Put(bp)
			return dst, fmt.Errorf("revset: read %s: %w", fl.path, err)
		}
		defer fl.bufs.Put(bp)
	}
	// First record with a key not below key.
	i, j := 0, len(b)/RecordSize
	for i < j {
		m := int(uint(i+j) >> 1)
		if binary.BigEndian.Uint64(b[m*RecordSize:]) < key {
			i = m + 1
		} else {
			j = m
		}
	}
	for ; i < len(b)/RecordSize; i++ {
		off := i * RecordSize
		if binary.BigEndian.Uint64(b[off:]) != key {
			break
		}
		dst = append(dst, getRecord(b[off:]))
	}
	return dst, nil
}

// all streams every record in order. It reads through the descriptor
// with a large buffer even when the file is mapped: the mapping is
// advised for random access, the descriptor gets the kernel's read-ahead.
func (fl *File) all(yield func(Record) error) error {
	r := bufio.NewReaderSize(io.NewSectionReader(fl.f, HeaderSize, int64(fl.hdr.Count*RecordSize)), 1<<20)
	var buf [RecordSize]byte
	for range fl.hdr.Count {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return fmt.Errorf("revset: read %s: %w", fl.path, err)
		}
		if err := yield(getRecord(buf[:])); err != nil {
			return err
		}
	}
	return nil
}

// fileWriter writes a snapshot file to a temporary name, then installs it.
type fileWriter struct {
	final string
	tmp   *os.File
	w     *bufio.Writer
	hdr   Header
	crc   uint32
	ib    *indexBuilder
	fb    *filterBuilder // nil: no filter
	prev  Record
	buf   [RecordSize]byte
}

// newFileWriter starts a file that will hold at most upper records
// (upper sizes the index and the filter); with withFilter the file's
// filter is built as it is written.
func newFileWriter(final string, hdr Header, upper uint64, maxIndexBits int, withFilter bool) (*fileWriter, error) {
	tmp, err := os.CreateTemp(filepath.Dir(final), filepath.Base(final)+".tmp-*")
	if err != nil {
		return nil, err
	}
	fw := &fileWriter{final: final, tmp: tmp, w: bufio.NewWriterSize(tmp, 1<<20), hdr: hdr, ib: newIndexBuilder(upper, maxIndexBits)}
	if withFilter {
		fw.fb = newFilterBuilder(upper)
	}
	fw.hdr.Count, fw.hdr.MinExpires = 0, 0
	if _, err := fw.w.Write(make([]byte, HeaderSize)); err != nil {
		fw.abort()
		return nil, err
	}
	return fw, nil
}

// add appends a record; records must come in strictly increasing
// (key, kind) order.
func (fw *fileWriter) add(r Record) error {
	if fw.hdr.Count > 0 && compareKK(&fw.prev, &r) >= 0 {
		return errors.New("revset: records out of order")
	}
	r.put(fw.buf[:])
	fw.crc = crc32.Update(fw.crc, castagnoli, fw.buf[:])
	if _, err := fw.w.Write(fw.buf[:]); err != nil {
		return err
	}
	if fw.hdr.MinExpires == 0 || r.Expires < fw.hdr.MinExpires {
		fw.hdr.MinExpires = r.Expires
	}
	fw.ib.add(r.Key)
	if fw.fb != nil {
		fw.fb.add(r.Key)
	}
	fw.hdr.Count++
	fw.prev = r
	return nil
}

// commit writes the header, fsyncs, renames the file into place, fsyncs
// the directory and opens the result.
func (fw *fileWriter) commit(mode Mode) (*File, error) {
	fw.hdr.BodyCRC = fw.crc
	err := fw.w.Flush()
	if err == nil {
		_, err = fw.tmp.WriteAt(fw.hdr.encode(), 0)
	}
	if err == nil {
		err = fw.tmp.Sync()
	}
	if err != nil {
		fw.abort()
		return nil, err
	}
	if err := os.Rename(fw.tmp.Name(), fw.final); err != nil {
		fw.abort()
		return nil, err
	}
	if err := syncDir(filepath.Dir(fw.final)); err != nil {
		fw.tmp.Close()
		return nil, err
	}
	fw.ib.finish()
	fl := &File{path: fw.final, f: fw.tmp, hdr: fw.hdr, verified: make(chan struct{})}
	fl.idx.Store(&fileIndex{index: fw.ib.index, shift: fw.ib.shift})
	if fw.fb != nil {
		if ft, err := fw.fb.finish(); err == nil {
			fl.flt.Store(ft)
		}
	}
	close(fl.verified)
	if mode != ModePread {
		data, err := mmapFile(fw.tmp, HeaderSize+fw.hdr.Count*RecordSize)
		switch {
		case err == nil:
			fl.data = data
		case mode == ModeMmap:
			fw.tmp.Close()
			return nil, fmt.Errorf("mmap: %w", err)
		}
	}
	fl.adviseRandom()
	return fl, nil
}

func (fw *fileWriter) abort() {
	fw.tmp.Close()
	os.Remove(fw.tmp.Name())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// retire stops a running verify, waits until no lookup holds fl, then
// closes it.
func (fl *File) retire() {
	fl.stop.Store(true)
	for fl.refs.Load() != 0 {
		time.Sleep(time.Millisecond)
	}
	fl.Close()
}

func crc32Update(crc uint32, b []byte) uint32 { return crc32.Update(crc, castagnoli, b) }
