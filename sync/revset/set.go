package revset

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"wicket/decoder"
	"wicket/verifier"
)

// File names inside the directory.
const (
	SnapshotName = "revset.dat"
	FilterName   = "revset.flt"
	LogName      = "deltas.log"
	KeyName      = "key"
)

// dirKey reads the directory's gate key, creating it (0600, fsynced) when
// missing.
func dirKey(dir string) ([]byte, error) {
	p := filepath.Join(dir, KeyName)
	k, err := os.ReadFile(p)
	if err == nil {
		if len(k) < MinKeyLen {
			return nil, fmt.Errorf("revset: %s: %d bytes, want %d", p, len(k), MinKeyLen)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k = make([]byte, MinKeyLen)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	_, err = f.Write(k)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("revset: create key: %w", err)
	}
	return k, nil
}

// DefaultMergeRecords is the overlay size that starts a background merge:
// about 24 bytes of memory per record, three copies at most while a merge
// runs.
var DefaultMergeRecords = map[bool]int{true: 512 << 10, false: 2 << 20}[strconv.IntSize == 32]

// ErrClosed: the Set was closed.
var ErrClosed = errors.New("revset: closed")

// Options configure Open.
type Options struct {
	// Key is the gate key for the keyed hash, at least MinKeyLen bytes.
	// Nil means the key kept in the directory (KeyName), made from random
	// bytes when the directory is new.
	Key []byte
	// Mode selects mmap or pread lookups; ModeAuto maps and falls back.
	Mode Mode
	// IndexBits bounds the in-memory index (DefaultIndexBits when 0).
	IndexBits int
	// MergeRecords: an overlay this large starts a background merge.
	// Zero means DefaultMergeRecords; negative never merges by itself.
	MergeRecords int
	// RunRecords: records a snapshot build sorts in memory per run. Zero
	// means DefaultRunRecords.
	RunRecords int
	// NoFilter turns the filter off: every lookup then reads the
	// snapshot file, and the set saves about 2.3 bytes of memory per
	// entry (see Stats.FilterBytes).
	NoFilter bool
	// RefuseCorrupt makes Open fail on a damaged snapshot or log instead
	// of moving it aside and starting without it. It also makes Open
	// verify the whole snapshot before returning (see Open).
	RefuseCorrupt bool
	// OnDamage, if set, is called (from a background goroutine) when the
	// snapshot that Open put in use fails its verification: the set has
	// then dropped all statements and moved the file aside.
	OnDamage func(error)
	// Logger receives recovery and merge warnings; nil discards them.
	Logger *slog.Logger
}

// Set is the gate's revocation/override data: a snapshot file, a delta
// log and the in-memory overlay. It implements verifier.Status. Lookups
// are lock-free; writers are serialised.
type Set struct {
	dir  string
	o    Options
	h    *Hasher
	view atomic.Pointer[view]

	mergeMu sync.Mutex // held by merges and snapshot installs (they rename the snapshot)
	mu      sync.Mutex // held by every writer
	log     *os.File
	logSize int64
	closed  bool

	merging   atomic.Bool
	mergeErr  atomic.Pointer[error]
	wg        sync.WaitGroup
	retiring  sync.WaitGroup // files replaced while open; Close waits for them
	recovered []string       // under mu
}

var _ verifier.Status = (*Set)(nil)

// view is what one lookup reads: never modified once published.
type view struct {
	file   *File    // nil: no snapshot yet
	frozen []Record // overlay being merged into the next file
	live   []Record // overlay of deltas since
	info   verifier.StatusInfo
}

// Open opens (or creates) the set in dir. It replays the delta log and
// cuts a torn last frame. A damaged snapshot or log is moved aside
// ("<name>.corrupt-<unixtime>", see Recovered) and the set starts without
// it, unless RefuseCorrupt is set; the trust sync then re-provisions it
// from the next snapshot.
//
// Open checks the snapshot's header and size, maps it and returns; the
// record checksum, order and index are checked and built by a background
// read of the whole file (seconds for 10 million records on an SD card).
// Until then lookups search the mapping by interpolation (the keys are
// uniform hashes). A file that fails that check is moved aside, every
// statement is dropped (Info becomes the zero value) and OnDamage is
// called. With RefuseCorrupt, or when the file can't be mapped, Open
// verifies before returning.
//
// The snapshot's filter (FilterName) is loaded in the background too, or
// rebuilt from the snapshot (in the same read as the check, if that has
// not run) when it is missing, damaged or of another snapshot; until it
// is there, lookups read the file.
func Open(dir string, o Options) (*Set, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	if o.Key == nil {
		k, err := dirKey(dir)
		if err != nil {
			return nil, err
		}
		o.Key = k
	}
	h, err := NewHasher(o.Key)
	if err != nil {
		return nil, err
	}
	if o.MergeRecords == 0 {
		o.MergeRecords = DefaultMergeRecords
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Set{dir: dir, o: o, h: h}
	// Leftovers of an interrupted write: never part of the state.
	for _, pat := range []string{SnapshotName + ".tmp-*", FilterName + ".tmp-*", LogName + ".tmp-*", "revset.run-*"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, p := range m {
			o.Logger.Warn("revset: removing leftover of an interrupted write", "file", p)
			os.Remove(p)
		}
	}
	keyID := h.KeyID()
	v := &view{}
	fpath := filepath.Join(dir, SnapshotName)
	f, err := openPath(fpath, &keyID, o.Mode, o.IndexBits, !o.RefuseCorrupt)
	switch {
	case err == nil:
		v.file = f
		v.info = verifier.StatusInfo{Version: f.hdr.Version, IssuedAt: time.Unix(f.hdr.IssuedAt, 0)}
	case errors.Is(err, os.ErrNotExist):
	case o.RefuseCorrupt:
		return nil, err
	default:
		if err := s.moveAside(fpath, err); err != nil {
			return nil, err
		}
	}
	lpath := filepath.Join(dir, LogName)
	frames, good, torn, err := readLog(lpath, keyID)
	switch {
	case err == nil:
	case errors.Is(err, os.ErrNotExist):
	case o.RefuseCorrupt:
		s.closeFile(v.file)
		return nil, err
	default:
		if err := s.moveAside(lpath, err); err != nil {
			s.closeFile(v.file)
			return nil, err
		}
	}
	applied := 0
	for _, fr := range frames {
		if fr.version <= v.info.Version {
			continue // already in the snapshot
		}
		if fr.base != v.info.Version {
			o.Logger.Warn("revset: log frame does not follow; dropping the rest", "base", fr.base, "installed", v.info.Version)
			torn = true
			break
		}
		v.live = mergeSorted(v.live, fr.recs)
		v.info = verifier.StatusInfo{Version: fr.version, IssuedAt: time.Unix(fr.issuedAt, 0)}
		applied++
	}
	if torn && o.RefuseCorrupt {
		s.closeFile(v.file)
		return nil, fmt.Errorf("%w: %s: torn log", ErrCorrupt, lpath)
	}
	// Rewrite the log when it is missing, damaged or carries frames the
	// snapshot already holds, so appends follow a clean tail.
	if err != nil || torn || applied != len(frames) || frames == nil && good == 0 {
		var fr []*frame
		if len(v.live) > 0 {
			base := uint64(0)
			if v.file != nil {
				base = v.file.hdr.Version
			}
			fr = append(fr, &frame{version: v.info.Version, base: base, issuedAt: v.info.IssuedAt.Unix(), recs: v.live})
		}
		s.log, s.logSize, err = writeLog(lpath, keyID, fr...)
	} else {
		s.log, err = os.OpenFile(lpath, os.O_WRONLY|os.O_APPEND, 0)
		s.logSize = good
	}
	if err != nil {
		s.closeFile(v.file)
		return nil, err
	}
	s.view.Store(v)
	if f := v.file; f != nil {
		s.wg.Add(1)
		go s.prepare(f)
	}
	return s, nil
}

// prepare runs in the background for the snapshot Open put in use. It
// reads the snapshot's filter file; when that is missing, damaged or of
// another snapshot, it builds the filter from the snapshot and saves it.
// When Open did not verify the snapshot, it does, in the same read as the
// filter build, and drops the snapshot with everything on top of it if it
// is damaged. Until the filter is there, lookups read the file.
func (s *Set) prepare(f *File) {
	defer s.wg.Done()
	var fb *filterBuilder
	if !s.o.NoFilter {
		ft, err := readFilter(filepath.Join(s.dir, FilterName), &f.hdr)
		switch {
		case err == nil:
			f.flt.Store(ft)
		case errors.Is(err, os.ErrNotExist):
			fb = newFilterBuilder(f.hdr.Count)
		default:
			s.o.Logger.Warn("revset: rebuilding the filter from the snapshot", "err", err)
			fb = newFilterBuilder(f.hdr.Count)
		}
	}
	select {
	case <-f.verified:
		if fb != nil {
			ft, err := f.buildFilter()
			if err != nil {
				if !errors.Is(err, errStopped) {
					s.o.Logger.Warn("revset: filter build failed; lookups read the file", "err", err)
				}
				return
			}
			f.flt.Store(ft)
		}
	default:
		if err := f.verify(s.o.IndexBits, fb); err != nil {
			s.dropDamaged(f, err)
			return
		}
	}
	if fb == nil {
		return
	}
	if f.flt.Load() == nil {
		s.o.Logger.Warn("revset: filter build failed; lookups read the file", "err", fb.err)
		return
	}
	s.mergeMu.Lock()
	if s.view.Load().file == f {
		s.saveFilter(f)
	}
	s.mergeMu.Unlock()
}

// saveFilter writes the filter of f, the snapshot in place, beside it. A
// failure is logged, not returned: the filter is derived data, and the
// next Open builds it again. The caller holds mergeMu.
func (s *Set) saveFilter(f *File) {
	ft := f.flt.Load()
	if ft == nil {
		return
	}
	if err := writeFilter(filepath.Join(s.dir, FilterName), ft, &f.hdr); err != nil {
		s.o.Logger.Warn("revset: filter not saved; the next start builds it again", "err", err)
	}
}

// dropDamaged drops f, which failed its verification, with everything
// on top of it.
func (s *Set) dropDamaged(f *File, err error) {
	if errors.Is(err, errStopped) {
		return
	}
	s.mu.Lock()
	if s.closed || s.view.Load().file != f {
		s.mu.Unlock()
		return
	}
	merr := s.moveAside(f.path, err)
	lf, size, lerr := writeLog(filepath.Join(s.dir, LogName), s.h.KeyID())
	if lerr == nil {
		s.log.Close()
		s.log, s.logSize = lf, size
	}
	s.view.Store(&view{})
	s.retiring.Go(f.retire)
	s.mu.Unlock()
	if e := errors.Join(merr, lerr); e != nil {
		s.o.Logger.Error("revset: dropping a damaged snapshot", "err", e)
	}
	if s.o.OnDamage != nil {
		s.o.OnDamage(err)
	}
}

// Verified reports whether the snapshot in use has passed its full check
// (true when there is none).
func (s *Set) Verified() bool {
	f := s.view.Load().file
	return f == nil || f.idx.Load() != nil
}

func (s *Set) moveAside(path string, cause error) error {
	to := fmt.Sprintf("%s.corrupt-%d", path, time.Now().Unix())
	s.o.Logger.Error("revset: damaged file moved aside", "file", path, "to", to, "err", cause)
	if err := os.Rename(path, to); err != nil {
		return err
	}
	s.recovered = append(s.recovered, to)
	return syncDir(s.dir)
}

func (s *Set) closeFile(f *File) {
	if f != nil {
		f.Close()
	}
}

// Recovered names the damaged files moved aside, by Open or by the
// background check of the snapshot.
func (s *Set) Recovered() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.recovered)
}

// Hasher returns the set's keyed hash.
func (s *Set) Hasher() *Hasher { return s.h }

// Info implements verifier.Status.
func (s *Set) Info() verifier.StatusInfo { return s.view.Load().info }

// Standing implements verifier.Status. A nil sub skips the subject.
func (s *Set) Standing(id, sub []byte) (verifier.Standing, error) {
	sk := uint64(0)
	if sub != nil {
		sk = s.h.Subject(sub)
	}
	return s.StandingKeys(s.h.Voucher(id), sk, sub != nil)
}

// StandingKeys is Standing on keys already hashed with Hasher.
func (s *Set) StandingKeys(voucher, subject uint64, withSubject bool) (verifier.Standing, error) {
	for {
		v := s.view.Load()
		f := v.file
		if f == nil {
			return v.standing(voucher, subject, withSubject)
		}
		f.refs.Add(1)
		if s.view.Load().file == f {
			st, err := v.standing(voucher, subject, withSubject)
			f.refs.Add(-1)
			return st, err
		}
		// The file was replaced meanwhile and may be closing: retry.
		f.refs.Add(-1)
	}
}

func (v *view) standing(vk, sk uint64, withSubject bool) (verifier.Standing, error) {
	var out verifier.Standing
	var buf [4]Record
	recs := buf[:0]
	var err error
	if v.file != nil {
		if recs, err = v.file.lookup(vk, recs); err != nil {
			return verifier.Standing{}, err
		}
	}
	for _, r := range recs {
		if r.Kind == KindRevoke {
			out.Revoked = true
		}
	}
	for _, o := range [2][]Record{v.frozen, v.live} {
		if !out.Revoked {
			if i := searchSorted(o, vk, KindRevoke); i < len(o) && o[i].Key == vk && o[i].Kind == KindRevoke {
				out.Revoked = true
			}
		}
	}
	if !withSubject {
		return out, nil
	}
	var colour, void Record
	fold := func(r Record) {
		switch r.Kind {
		case KindColour:
			if colour.Kind == 0 {
				colour = r
			} else {
				colour = combine(colour, r)
			}
		case KindVoidBefore:
			if void.Kind == 0 {
				void = r
			} else {
				void = combine(void, r)
			}
		}
	}
	recs = buf[:0]
	if v.file != nil {
		if recs, err = v.file.lookup(sk, recs); err != nil {
			return verifier.Standing{}, err
		}
	}
	for _, r := range recs {
		fold(r)
	}
	for _, o := range [2][]Record{v.frozen, v.live} {
		for i := searchSorted(o, sk, KindColour); i < len(o) && o[i].Key == sk; i++ {
			fold(o[i])
		}
	}
	if colour.Kind != 0 {
		out.Subject.Colour = colour.Colour
		out.Subject.ColourAt = time.Unix(int64(colour.Time), 0)
		out.Subject.ColourUntil = time.Unix(int64(colour.Expires), 0)
	}
	if void.Kind != 0 {
		out.Subject.VoidBefore = time.Unix(int64(void.Time), 0)
	}
	return out, nil
}

// records hashes a batch's entries, skips those expired at floor, and
// returns them sorted and combined.
func (s *Set) records(entries []verifier.Entry, floor int64) ([]Record, error) {
	recs, err := s.hashEntries(entries, floor)
	if err != nil {
		return nil, err
	}
	sortRecords(recs, nil)
	return dedupSorted(recs), nil
}

// hashEntries converts entries to records in order (seq numbers them),
// skipping those expired at floor. Large slices are hashed on all CPUs.
func (s *Set) hashEntries(entries []verifier.Entry, floor int64) ([]Record, error) {
	recs := make([]Record, len(entries))
	keep := make([]bool, len(entries))
	const chunk = 8192
	workers := min(runtime.GOMAXPROCS(0), (len(entries)+chunk-1)/chunk)
	var next atomic.Int64
	errs := make([]error, max(workers, 1))
	work := func(w int) {
		for {
			lo := int(next.Add(chunk)) - chunk
			if lo >= len(entries) {
				return
			}
			for i := lo; i < min(lo+chunk, len(entries)); i++ {
				r, ok, err := s.record(&entries[i], floor)
				if err != nil {
					errs[w] = fmt.Errorf("entry %d: %w", i, err)
					return
				}
				recs[i], keep[i] = r, ok
			}
		}
	}
	if workers <= 1 {
		work(0)
	} else {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() { defer wg.Done(); work(w) }()
		}
		wg.Wait()
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := recs[:0]
	for i, r := range recs {
		if keep[i] {
			r.seq = uint32(len(out))
			out = append(out, r)
		}
	}
	return out, nil
}

// record converts one entry. Times are stored as uint32 seconds: an
// expiry past 2106 is clamped; a statement time past it is refused.
func (s *Set) record(e *verifier.Entry, floor int64) (Record, bool, error) {
	var key uint64
	switch {
	case e.Op < verifier.OpRevoke || e.Op > verifier.OpVoidBefore:
		return Record{}, false, fmt.Errorf("revset: unknown op %d", e.Op)
	case e.Expires <= floor:
		return Record{}, false, nil
	case e.Op == verifier.OpRevoke:
		key = s.h.Voucher(e.Key)
	default:
		key = s.h.Subject(e.Key)
	}
	return makeRecord(e.Op, key, e.Time, e.Expires, e.Colour, floor)
}

func makeRecord(op verifier.Op, key uint64, t, expires int64, colour decoder.Colour, floor int64) (Record, bool, error) {
	if expires <= floor {
		return Record{}, false, nil
	}
	if t <= 0 || t > math.MaxUint32 {
		return Record{}, false, fmt.Errorf("revset: statement time %d out of range", t)
	}
	r := Record{Key: key, Kind: Kind(op), Colour: colour, Expires: uint32(min(expires, math.MaxUint32))}
	switch op {
	case verifier.OpRevoke:
	case verifier.OpColour, verifier.OpVoidBefore:
		r.Time = uint32(t)
	default:
		return Record{}, false, fmt.Errorf("revset: unknown op %d", op)
	}
	if !r.valid() {
		return Record{}, false, fmt.Errorf("revset: invalid %v entry", op)
	}
	return r, true, nil
}

// ApplyBatch installs a verified batch with the rules of
// verifier.MemStatus.Apply: the version must pass
// verifier.CheckBatchVersion; a snapshot replaces everything (built into a
// new file); a delta is appended to the log, fsynced, and merged into the
// overlay. Entries expired at floor are skipped. On error nothing changes.
// Lookups run on throughout. A delta that grows the overlay past
// Options.MergeRecords starts a background merge with the same floor.
//
// floor must be a time known to have passed (the trusted clock's floor),
// never a wall clock that may be set ahead: an entry dropped here does not
// come back with a later delta, only with the next snapshot.
func (s *Set) ApplyBatch(b *verifier.Batch, floor time.Time) error {
	if b == nil {
		return errors.New("revset: nil batch")
	}
	if b.Parts != 0 {
		return fmt.Errorf("%w: version %d part %d of %d (use NewSnapshot)", verifier.ErrSnapshotPart, b.Version, b.Part, b.Parts)
	}
	if b.Snapshot() {
		w := s.NewSnapshot(b.Version, b.IssuedAt, floor)
		if err := w.AddEntries(b.Entries); err != nil {
			w.Abort()
			return err
		}
		return w.Commit()
	}
	recs, err := s.records(b.Entries, floor.Unix())
	if err != nil {
		return fmt.Errorf("apply batch %d: %w", b.Version, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	v := s.view.Load()
	if err := verifier.CheckBatchVersion(v.info.Version, b); err != nil {
		return err
	}
	fb := encodeFrame(&frame{version: b.Version, base: b.Base, issuedAt: b.IssuedAt.Unix(), recs: recs})
	if _, err := s.log.Write(fb); err != nil {
		// A partial frame is cut at the next Open; later frames must not
		// follow it.
		s.log.Truncate(s.logSize)
		return fmt.Errorf("apply batch %d: log: %w", b.Version, err)
	}
	if err := s.log.Sync(); err != nil {
		s.log.Truncate(s.logSize)
		return fmt.Errorf("apply batch %d: log fsync: %w", b.Version, err)
	}
	s.logSize += int64(len(fb))
	nv := &view{file: v.file, frozen: v.frozen, live: mergeSorted(v.live, recs), info: verifier.StatusInfo{Version: b.Version, IssuedAt: b.IssuedAt}}
	s.view.Store(nv)
	if s.o.MergeRecords > 0 && len(nv.live) >= s.o.MergeRecords && s.merging.CompareAndSwap(false, true) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.merging.Store(false)
			if err := s.Merge(floor); err != nil {
				s.mergeErr.Store(&err)
				s.o.Logger.Error("revset: background merge failed", "err", err)
			}
		}()
	}
	return nil
}

// Merge writes the snapshot and the overlay into a new snapshot file,
// dropping statements that expired at floor, and switches lookups to it.
// Deltas may be applied while it runs; they stay in the overlay. It
// returns at once when there is nothing to merge and nothing expired.
// floor must be a time known to have passed, as for ApplyBatch.
func (s *Set) Merge(floor time.Time) error {
	// Never rewrite a file before it has passed its check.
	if f := s.view.Load().file; f != nil {
		if err := f.waitVerified(); err != nil {
			return fmt.Errorf("revset: merge: %w", err)
		}
	}
	s.mergeMu.Lock()
	defer s.mergeMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	v := s.view.Load()
	floorU := floor.Unix()
	expiring := v.file != nil && v.file.hdr.MinExpires != 0 && int64(v.file.hdr.MinExpires) <= floorU
	if len(v.live) == 0 && len(v.frozen) == 0 && !expiring {
		s.mu.Unlock()
		return nil
	}
	frozen := v.live
	if len(v.frozen) > 0 { // left by a failed merge
		frozen = mergeSorted(v.frozen, v.live)
	}
	s.view.Store(&view{file: v.file, frozen: frozen, info: v.info})
	s.mu.Unlock()

	info := v.info
	upper := uint64(len(frozen))
	if v.file != nil {
		upper += v.file.hdr.Count
	}
	fw, err := newFileWriter(filepath.Join(s.dir, SnapshotName), Header{Version: info.Version, IssuedAt: info.IssuedAt.Unix(), KeyID: s.h.KeyID()}, upper, s.o.IndexBits, !s.o.NoFilter)
	if err != nil {
		return err
	}
	emit := func(r Record) error {
		if int64(r.Expires) <= floorU {
			return nil
		}
		return fw.add(r)
	}
	i := 0
	step := func(r Record) error {
		for i < len(frozen) && compareKK(&frozen[i], &r) < 0 {
			if err := emit(frozen[i]); err != nil {
				return err
			}
			i++
		}
		if i < len(frozen) && compareKK(&frozen[i], &r) == 0 {
			r = combine(r, frozen[i])
			i++
		}
		return emit(r)
	}
	if v.file != nil {
		err = v.file.all(step)
	}
	for ; err == nil && i < len(frozen); i++ {
		err = emit(frozen[i])
	}
	if err != nil {
		fw.abort()
		return fmt.Errorf("revset: merge: %w", err)
	}
	nf, err := fw.commit(s.o.Mode)
	if err != nil {
		return fmt.Errorf("revset: merge: %w", err)
	}
	s.saveFilter(nf)
	// The new file is in place: frames up to info.Version are in it, the
	// rest of the log still applies on top. Now shorten the log.
	s.mu.Lock()
	cur := s.view.Load()
	var frames []*frame
	if cur.info.Version > info.Version {
		frames = append(frames, &frame{version: cur.info.Version, base: info.Version, issuedAt: cur.info.IssuedAt.Unix(), recs: cur.live})
	}
	lf, size, lerr := writeLog(filepath.Join(s.dir, LogName), s.h.KeyID(), frames...)
	if lerr == nil {
		s.log.Close()
		s.log, s.logSize = lf, size
	}
	s.view.Store(&view{file: nf, live: cur.live, info: cur.info})
	s.mu.Unlock()
	if v.file != nil {
		v.file.retire()
	}
	return lerr
}

// MergeRunning reports whether a background merge is running.
func (s *Set) MergeRunning() bool { return s.merging.Load() }

// WaitMerge waits for a background merge and for the background work
// after Open (the snapshot's check, the filter's load or rebuild) to
// finish, and returns the error of the last failed merge, if any.
func (s *Set) WaitMerge() error {
	s.wg.Wait()
	if p := s.mergeErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Stats describes the set.
type Stats struct {
	Version        uint64
	FileRecords    uint64
	FileBytes      int64
	OverlayRecords int
	LogBytes       int64
	IndexBytes     int
	// FilterBytes is the memory of the filter in front of the file (0
	// while it is loaded or built after Open, or with NoFilter).
	FilterBytes int
	Mapped      bool
	// MinExpires is the earliest expiry in the snapshot file: a Merge
	// at or after it drops statements.
	MinExpires time.Time
}

// Stats returns the current sizes.
func (s *Set) Stats() Stats {
	v := s.view.Load()
	st := Stats{Version: v.info.Version, OverlayRecords: len(v.frozen) + len(v.live)}
	if v.file != nil {
		st.FileRecords = v.file.hdr.Count
		st.FileBytes = HeaderSize + int64(v.file.hdr.Count)*RecordSize
		st.IndexBytes = v.file.IndexBytes()
		st.FilterBytes = v.file.FilterBytes()
		st.Mapped = v.file.Mapped()
		if v.file.hdr.MinExpires != 0 {
			st.MinExpires = time.Unix(int64(v.file.hdr.MinExpires), 0)
		}
	}
	s.mu.Lock()
	st.LogBytes = s.logSize
	s.mu.Unlock()
	return st
}

// Close waits for a running merge, then releases the files. Lookups must
// have finished.
func (s *Set) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if f := s.view.Load().file; f != nil {
		f.stop.Store(true) // a background check gives up
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.mergeMu.Lock()
	defer s.mergeMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.log.Close()
	if f := s.view.Load().file; f != nil {
		f.retire()
	}
	s.retiring.Wait()
	return err
}

// SnapshotWriter streams the entries of a snapshot (for example one
// published in several documents) into a new file with bounded memory.
// Entries go in either in order (Add, AddEntries, AddStored) or by part
// (AddPart), not both.
type SnapshotWriter struct {
	s        *Set
	b        *builder
	version  uint64
	issuedAt time.Time
	floor    int64
	err      error
	ordered  bool
	parts    bool
}

// NewSnapshot starts a snapshot of the given version. Entries expired at
// floor (a time known to have passed, as for ApplyBatch) are skipped.
// Nothing changes until Commit.
func (s *Set) NewSnapshot(version uint64, issuedAt, floor time.Time) *SnapshotWriter {
	return &SnapshotWriter{s: s, b: newBuilder(s.dir, s.o.RunRecords), version: version, issuedAt: issuedAt, floor: floor.Unix()}
}

// errMixed: a writer fed both in order and by part.
var errMixed = errors.New("revset: snapshot entries added both in order and by part")

func (w *SnapshotWriter) use(parts bool) error {
	if w.err == nil && (parts && w.ordered || !parts && w.parts) {
		w.err = errMixed
	}
	w.ordered, w.parts = w.ordered || !parts, w.parts || parts
	return w.err
}

// Add adds one entry; entries combine in the order added.
func (w *SnapshotWriter) Add(e *verifier.Entry) error {
	if err := w.use(false); err != nil {
		return err
	}
	r, ok, err := w.s.record(e, w.floor)
	if err == nil && ok {
		err = w.b.add(r)
	}
	w.err = err
	return err
}

// AddStored adds one statement already reduced to its verifier.EntryKey
// (moving statements kept elsewhere under that key into the set).
func (w *SnapshotWriter) AddStored(op verifier.Op, entryKey [16]byte, t, expires int64, colour decoder.Colour) error {
	if err := w.use(false); err != nil {
		return err
	}
	if expires <= w.floor {
		return nil
	}
	r, ok, err := makeRecord(op, w.s.h.Entry(op, entryKey), t, expires, colour, w.floor)
	if err == nil && ok {
		err = w.b.add(r)
	}
	w.err = err
	return err
}

// AddEntries adds entries in order, hashing them on all CPUs.
func (w *SnapshotWriter) AddEntries(es []verifier.Entry) error {
	if err := w.use(false); err != nil {
		return err
	}
	recs, err := w.s.hashEntries(es, w.floor)
	for i := 0; err == nil && i < len(recs); i++ {
		err = w.b.add(recs[i])
	}
	w.err = err
	return err
}

// AddPart adds part number part of a snapshot published in several
// documents. Parts may be added in any order, each once: statements about
// one key combine in part order, and in entry order within a part, as if
// the parts had been one document.
func (w *SnapshotWriter) AddPart(part uint32, es []verifier.Entry) error {
	if err := w.use(true); err != nil {
		return err
	}
	recs, err := w.s.records(es, w.floor)
	for i := 0; err == nil && i < len(recs); i++ {
		r := recs[i]
		r.seq = part
		err = w.b.addSeq(r)
	}
	w.err = err
	return err
}

// Abort discards the snapshot.
func (w *SnapshotWriter) Abort() { w.b.close() }

// Commit checks the version (it must be newer than the installed one),
// writes and fsyncs the file, installs it, empties the log, and switches
// lookups to it. It waits for a running merge.
func (w *SnapshotWriter) Commit() error {
	defer w.b.close()
	if w.err != nil {
		return w.err
	}
	s := w.s
	s.mergeMu.Lock()
	defer s.mergeMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	old := s.view.Load()
	if err := verifier.CheckBatchVersion(old.info.Version, &verifier.Batch{Version: w.version}); err != nil {
		return err
	}
	fw, err := newFileWriter(filepath.Join(s.dir, SnapshotName), Header{Version: w.version, IssuedAt: w.issuedAt.Unix(), KeyID: s.h.KeyID()}, w.b.upper(), s.o.IndexBits, !s.o.NoFilter)
	if err != nil {
		return err
	}
	if err := w.b.finish(fw.add); err != nil {
		fw.abort()
		return fmt.Errorf("revset: snapshot %d: %w", w.version, err)
	}
	nf, err := fw.commit(s.o.Mode)
	if err != nil {
		return fmt.Errorf("revset: snapshot %d: %w", w.version, err)
	}
	s.saveFilter(nf)
	// Log frames are all older than the new file and would be skipped;
	// empty the log anyway so it does not grow.
	lf, size, lerr := writeLog(filepath.Join(s.dir, LogName), s.h.KeyID())
	if lerr == nil {
		s.log.Close()
		s.log, s.logSize = lf, size
	}
	s.view.Store(&view{file: nf, info: verifier.StatusInfo{Version: w.version, IssuedAt: w.issuedAt}})
	if old.file != nil {
		s.retiring.Go(old.file.retire)
	}
	return lerr
}

// Peek describes the set in dir without opening it for writing or
// checking more than the snapshot's header and the log's frames: for a
// tool run while the gate is stopped. A missing directory or key reads
// as an empty set.
func Peek(dir string) (Stats, verifier.StatusInfo, error) {
	var st Stats
	var info verifier.StatusInfo
	k, err := os.ReadFile(filepath.Join(dir, KeyName))
	if errors.Is(err, os.ErrNotExist) {
		return st, info, nil
	}
	if err != nil {
		return st, info, err
	}
	h, err := NewHasher(k)
	if err != nil {
		return st, info, err
	}
	keyID := h.KeyID()
	f, err := os.Open(filepath.Join(dir, SnapshotName))
	switch {
	case err == nil:
		fl, err := openFile(f, &keyID, ModePread, 0)
		f.Close()
		if err != nil {
			return st, info, fmt.Errorf("%s: %w", SnapshotName, err)
		}
		st.FileRecords = fl.hdr.Count
		st.FileBytes = HeaderSize + int64(fl.hdr.Count)*RecordSize
		info = verifier.StatusInfo{Version: fl.hdr.Version, IssuedAt: time.Unix(fl.hdr.IssuedAt, 0)}
	case !errors.Is(err, os.ErrNotExist):
		return st, info, err
	}
	frames, good, _, err := readLog(filepath.Join(dir, LogName), keyID)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return st, info, fmt.Errorf("%s: %w", LogName, err)
	}
	st.LogBytes = good
	for _, fr := range frames {
		if fr.version > info.Version && fr.base == info.Version {
			info = verifier.StatusInfo{Version: fr.version, IssuedAt: time.Unix(fr.issuedAt, 0)}
			st.OverlayRecords += len(fr.recs)
		}
	}
	st.Version = info.Version
	return st, info, nil
}
