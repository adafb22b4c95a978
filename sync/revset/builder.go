package revset

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// DefaultRunRecords is how many records a Builder sorts in memory before
// it spills a sorted run to disk: 24 bytes each, so 24 MiB on 32-bit
// boards and 96 MiB on 64-bit ones.
var DefaultRunRecords = map[bool]int{true: 1 << 20, false: 4 << 20}[strconv.IntSize == 32]

// builder sorts records of unbounded number in bounded memory: full
// buffers are sorted, combined and spilled to run files, which are merged
// at the end. Records with equal key and kind combine in seq order: the
// arrival order (add), or an order the caller gives (addSeq, for parts of
// a snapshot that arrive in any order). Run files keep each record's seq,
// so the order holds across runs.
type builder struct {
	dir     string
	max     int
	buf     []Record
	tmp     []Record
	runs    []*os.File
	seq     uint32
	added   uint64
	spilled uint64
}

func newBuilder(dir string, maxRecords int) *builder {
	if maxRecords <= 0 {
		maxRecords = DefaultRunRecords
	}
	return &builder{dir: dir, max: maxRecords}
}

func (b *builder) add(r Record) error {
	r.seq = b.seq
	b.seq++
	return b.addSeq(r)
}

// addSeq adds a record with its seq as given.
func (b *builder) addSeq(r Record) error {
	if b.buf == nil {
		b.buf = make([]Record, 0, min(b.max, 1<<16))
	}
	b.buf = append(b.buf, r)
	b.added++
	if len(b.buf) >= b.max {
		return b.spill()
	}
	return nil
}

func (b *builder) sortBuf() {
	b.tmp = sortRecords(b.buf, b.tmp)
	b.buf = dedupSorted(b.buf)
}

// runRecordSize is a record in a run file: the stored record, then its
// seq (big-endian uint32).
const runRecordSize = RecordSize + 4

func (b *builder) spill() error {
	b.sortBuf()
	f, err := os.CreateTemp(b.dir, "revset.run-*")
	if err != nil {
		return err
	}
	os.Remove(f.Name()) // the open descriptor keeps it; nothing to clean after a crash
	w := bufio.NewWriterSize(f, 1<<20)
	var rb [runRecordSize]byte
	for i := range b.buf {
		b.buf[i].put(rb[:])
		binary.BigEndian.PutUint32(rb[RecordSize:], b.buf[i].seq)
		if _, err := w.Write(rb[:]); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	b.spilled += uint64(len(b.buf))
	b.runs = append(b.runs, f)
	b.buf = b.buf[:0]
	return nil
}

// upper bounds the number of records the builder yields.
func (b *builder) upper() uint64 { return b.spilled + uint64(len(b.buf)) }

// finish yields every record once, combined, in (key, kind) order. The
// builder is spent afterwards.
func (b *builder) finish(yield func(Record) error) error {
	defer b.close()
	b.sortBuf()
	if len(b.runs) == 0 {
		for _, r := range b.buf {
			if err := yield(r); err != nil {
				return err
			}
		}
		return nil
	}
	h := &runHeap{}
	for i, f := range b.runs {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		src := &runSrc{idx: i, r: bufio.NewReaderSize(f, runBuffer(len(b.runs)))}
		if err := h.push(src); err != nil {
			return err
		}
	}
	if len(b.buf) > 0 {
		if err := h.push(&runSrc{idx: len(b.runs), mem: b.buf}); err != nil {
			return err
		}
	}
	var cur Record
	have := false
	for h.Len() > 0 {
		s := (*h)[0]
		r := s.cur
		if err := s.next(); err == io.EOF {
			heap.Pop(h)
		} else if err != nil {
			return err
		} else {
			heap.Fix(h, 0)
		}
		switch {
		case !have:
			cur, have = r, true
		case compareKK(&cur, &r) == 0:
			cur = combine(cur, r)
		default:
			if err := yield(cur); err != nil {
				return err
			}
			cur = r
		}
	}
	if have {
		return yield(cur)
	}
	return nil
}

func (b *builder) close() {
	for _, f := range b.runs {
		f.Close()
	}
	b.runs, b.buf, b.tmp = nil, nil, nil
}

type runSrc struct {
	idx int
	r   *bufio.Reader
	mem []Record
	cur Record
	rb  [runRecordSize]byte
}

// runBuffer sizes the read buffer of each of n run files: 16 MiB in all,
// between 16 and 256 KiB each.
func runBuffer(n int) int { return min(max((16<<20)/max(n, 1), 16<<10), 256<<10) }

func (s *runSrc) next() error {
	if s.r == nil {
		if len(s.mem) == 0 {
			return io.EOF
		}
		s.cur, s.mem = s.mem[0], s.mem[1:]
		return nil
	}
	if _, err := io.ReadFull(s.r, s.rb[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("revset: short run file")
		}
		return err
	}
	s.cur = getRecord(s.rb[:])
	s.cur.seq = binary.BigEndian.Uint32(s.rb[RecordSize:])
	return nil
}

// runHeap orders sources by their current record's (key, kind, seq), so
// combine sees records in seq order.
type runHeap []*runSrc

func (h runHeap) Len() int { return len(h) }
func (h runHeap) Less(i, j int) bool {
	if c := compareSeq(h[i].cur, h[j].cur); c != 0 {
		return c < 0
	}
	return h[i].idx < h[j].idx
}
func (h runHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)   { *h = append(*h, x.(*runSrc)) }
func (h *runHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (h *runHeap) push(s *runSrc) error {
	switch err := s.next(); err {
	case nil:
		heap.Push(h, s)
		return nil
	case io.EOF:
		return nil
	default:
		return err
	}
}
