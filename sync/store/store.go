package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"wicket/internal/clock"
	"wicket/sync/revset"
	"wicket/verifier"
)

// Errors callers branch on.
var (
	// ErrLocked: another process holds the store file past LockTimeout.
	ErrLocked = errors.New("store file locked by another process")
	// ErrStaleVersion: a trust document not newer than the stored one.
	ErrStaleVersion = errors.New("trust document version not newer than stored")
	// ErrReadOnly: a write on a store opened with OpenReadOnly.
	ErrReadOnly = errors.New("store opened read-only")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
	// ErrCorrupt: OpenReadOnly found the file damaged (Open would recover).
	ErrCorrupt = errors.New("store file corrupt")
	// ErrSchema: the file was written by a newer program.
	ErrSchema = errors.New("store schema newer than this program")
	// ErrEventTooLarge: an encoded event over the size bound.
	ErrEventTooLarge = errors.New("event too large")
)

// schemaVersion is the layout written by this package; bump it with a
// migration when a bucket's encoding changes. Schema 1 kept the
// revocation and override statements in buckets "revoked" and
// "subjects"; schema 2 keeps them in a revset.Set (see migrateStatus).
const schemaVersion = 2

var (
	bucketMeta     = []byte("meta")
	bucketTrust    = []byte("trust")
	bucketEvents   = []byte("events")
	bucketOutbox   = []byte("outbox")
	bucketPassback = []byte("passback")

	allBuckets = [][]byte{bucketMeta, bucketTrust, bucketEvents, bucketOutbox, bucketPassback}
)

// Keys in the meta bucket.
var (
	keySchema      = []byte("schema")
	keyRecordKey   = []byte("record_key")
	keySeq         = []byte("seq")      // last sequence number assigned
	keyEventCount  = []byte("events_n") // records in the events bucket
	keyOutboxCount = []byte("outbox_n") // records in the outbox bucket
	keyDropped     = []byte("dropped")  // records not queued: outbox full
	keyFloor       = []byte("floor")
)

// Options configure Open.
type Options struct {
	// Path is the bbolt file; it is created if missing. Required.
	Path string
	// LockTimeout is how long Open waits while another process holds the
	// file; then it fails with ErrLocked. Zero means DefaultLockTimeout.
	LockTimeout time.Duration
	// MaxEvents bounds the access log; the oldest records are pruned first.
	// Zero means DefaultMaxEvents.
	MaxEvents int
	// MaxOutbox bounds the records waiting for sync; see Append. Zero means
	// DefaultMaxOutbox.
	MaxOutbox int
	// RecordKey is the key for hashing identifiers in records, at least
	// MinRecordKeyLen bytes. Nil means a random key generated once and kept
	// in the store.
	RecordKey []byte
	// Logger receives recovery and outbox warnings. Nil discards them.
	Logger *slog.Logger
	// StatusDir is the directory of the revocation and override
	// statements (a revset.Set). Empty means Path + ".revset".
	StatusDir string
	// StatusMergeRecords is revset.Options.MergeRecords (0: its default).
	StatusMergeRecords int
	// OnStatusDamage, if set, is called when the background check of the
	// statements' snapshot file finds it damaged: the statements were
	// dropped (Info is zero) and the file moved aside.
	OnStatusDamage func(error)
	// BackgroundCheck makes Open check only what it must before use (the
	// meta pages, the file size, the meta bucket) and read the rest of
	// the file after it returns: a full access log is hundreds of MB,
	// seconds to read from an SD card after a power-up. bbolt's freelist
	// consistency check needs a quiet file, so it then runs only when a
	// check in full is due (after damage was found). Damage found then is reported to OnDamage and recorded
	// in "<path>.check", so the next Open checks in full before returning
	// and recovers (the caller should stop using the store and restart).
	BackgroundCheck bool
	// OnDamage, if set, is called (from a background goroutine) when the
	// background check finds the file damaged.
	OnDamage func(error)
	// Clock is read for the name and the sequence base of a file moved
	// aside, the start of a run of commit failures (CommitHealth.Since)
	// and the durations logged. Nil means the real clock. Nothing the
	// store decides depends on it: expiry is judged against a floor the
	// caller passes.
	Clock clock.Clock
}

// checkMarker is the file that makes the next Open check in full.
func checkMarker(path string) string { return path + ".check" }

// statusDir is the directory of the statements for a store file.
func statusDir(path, dir string) string {
	if dir != "" {
		return dir
	}
	return path + ".revset"
}

// withDefaults validates o and fills in defaults.
func (o Options) withDefaults() (Options, error) {
	switch {
	case o.Path == "":
		return o, errors.New("store options: Path is empty; set it to the database file, e.g. /var/lib/wicket/wicket.db")
	case o.LockTimeout < 0:
		return o, errors.New("store options: LockTimeout is negative; use 0 for the default or a positive duration")
	case o.MaxEvents < 0:
		return o, errors.New("store options: MaxEvents is negative; use 0 for the default or a positive bound")
	case o.MaxOutbox < 0:
		return o, errors.New("store options: MaxOutbox is negative; use 0 for the default or a positive bound")
	case o.RecordKey != nil && len(o.RecordKey) < MinRecordKeyLen:
		return o, fmt.Errorf("store options: RecordKey is %d bytes; use at least %d random bytes, or nil to keep a generated one in the store", len(o.RecordKey), MinRecordKeyLen)
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.MaxEvents == 0 {
		o.MaxEvents = DefaultMaxEvents
	}
	if o.MaxOutbox == 0 {
		o.MaxOutbox = DefaultMaxOutbox
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Clock = clock.OrReal(o.Clock)
	return o, nil
}

// Store is the gate's state file. Its methods are safe for concurrent use.
type Store struct {
	db        *bbolt.DB
	path      string
	log       *slog.Logger
	clock     clock.Clock
	maxEvents uint64
	maxOutbox uint64
	recordKey []byte
	recovered string
	readOnly  bool

	rs        *revset.Set    // the statements; nil when read-only
	checking  sync.WaitGroup // the background check, when running
	stopCheck atomic.Bool
	peek      revset.Stats        // read-only: what revset.Peek found
	peekInfo  verifier.StatusInfo // likewise

	closed   atomic.Bool // Close was called
	mu       sync.Mutex  // orders cache updates after commits
	floor    atomic.Pointer[time.Time]
	dropping atomic.Bool // the last Append found the outbox full
	commits  commitState // the last commit failure, if any
}

var _ verifier.Status = (*Store)(nil)

// Open opens or creates the store at opts.Path, checks its consistency and
// recovers from a corrupt file by moving it aside and starting empty (see
// Recovered). It waits up to LockTimeout for another process holding the
// file and then returns an error wrapping ErrLocked; a locked file is never
// moved. Open fsyncs the file (and after a recovery its directory) before
// returning.
func Open(opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	log := opts.Logger.With("component", "store", "path", opts.Path)
	marker := checkMarker(opts.Path)
	_, merr := os.Stat(marker)
	full := !opts.BackgroundCheck || merr == nil
	if merr == nil {
		log.Warn("the last background check found damage: checking the whole file before use")
	}
	res, err := openChecked(opts.Path, opts.LockTimeout, false, full)
	if err != nil {
		return nil, err
	}
	var recovered string
	var seqBase uint64
	if res.corrupt != nil {
		recovered, err = moveAside(opts.Path, opts.Clock.Now())
		if err != nil {
			return nil, fmt.Errorf("open store: move corrupt file aside: %w (corruption: %w)", err, res.corrupt)
		}
		seqBase = uint64(max(opts.Clock.Now().Unix(), 0)) << recoverySeqShift
		if res.lastSeq < maxSalvagedSeq {
			seqBase = max(seqBase, res.lastSeq)
		}
		log.Error("store file corrupt: moved aside, starting with an empty store",
			"moved_to", recovered, "err", res.corrupt, "salvaged_seq", res.lastSeq, "next_seq", seqBase+1,
			"record_key_salvaged", len(res.lastKey) >= MinRecordKeyLen)
		salvaged := res
		res, err = openChecked(opts.Path, opts.LockTimeout, false, true)
		if err != nil {
			return nil, err
		}
		res.lastKey = salvaged.lastKey
		if res.corrupt != nil {
			return nil, fmt.Errorf("open store: new file unusable: %w", res.corrupt)
		}
	}
	s := &Store{
		db: res.db, path: opts.Path, log: log, clock: opts.Clock,
		maxEvents: uint64(opts.MaxEvents), maxOutbox: uint64(opts.MaxOutbox),
		recovered: recovered,
	}
	s.commits.clock = opts.Clock
	recordKey := opts.RecordKey
	if recordKey == nil && len(res.lastKey) >= MinRecordKeyLen {
		recordKey = res.lastKey // keep hashing ids as before the damage
	}
	if err := s.init(recordKey, recordKey != nil && opts.RecordKey == nil, seqBase); err != nil {
		_ = res.db.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	if full && merr == nil {
		if err := os.Remove(marker); err != nil {
			log.Error("remove check marker", "err", err)
		}
	}
	if !full {
		s.checking.Add(1)
		go s.checkLater(marker, opts.OnDamage)
	}
	s.rs, err = revset.Open(statusDir(opts.Path, opts.StatusDir), revset.Options{
		Logger: log, MergeRecords: opts.StatusMergeRecords, OnDamage: opts.OnStatusDamage,
	})
	if err == nil {
		err = s.migrateStatus()
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open store: statements: %w", err)
	}
	return s, nil
}

// OpenReadOnly opens the store for reading, for tools that inspect a gate's
// state. It takes a shared lock, so it waits while a writer (the running
// daemon) holds the file, up to timeout (zero waits indefinitely), and then
// returns an error wrapping ErrLocked. It never repairs: a damaged file is
// an error wrapping ErrCorrupt. Writes return ErrReadOnly.
func OpenReadOnly(path string, timeout time.Duration) (*Store, error) {
	return OpenReadOnlyDir(path, "", timeout)
}

// OpenReadOnlyDir is OpenReadOnly with the statements' directory (see
// Options.StatusDir). The statements are not loaded: Info and
// StatusStats come from their files' headers, and lookups fail.
func OpenReadOnlyDir(path, dir string, timeout time.Duration) (*Store, error) {
	res, err := openChecked(path, timeout, true, true)
	if err != nil {
		return nil, err
	}
	if res.corrupt != nil {
		return nil, fmt.Errorf("open store read-only: %w: %w", ErrCorrupt, res.corrupt)
	}
	s := &Store{db: res.db, path: path, log: slog.New(slog.DiscardHandler), clock: clock.Real(), readOnly: true}
	if err := s.init(nil, false, 0); err != nil {
		_ = res.db.Close()
		return nil, fmt.Errorf("open store read-only: %w", err)
	}
	if s.peek, s.peekInfo, err = revset.Peek(statusDir(path, dir)); err != nil {
		_ = res.db.Close()
		return nil, fmt.Errorf("open store read-only: statements: %w", err)
	}
	return s, nil
}

// Close closes the files. Calls after the first return nil; other methods
// fail after Close. A background check still running gives up.
func (s *Store) Close() error {
	s.closed.Store(true)
	s.stopCheck.Store(true)
	s.checking.Wait()
	var rerr error
	if s.rs != nil {
		rerr = s.rs.Close()
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("close store: statements: %w", rerr)
	}
	return nil
}

// Writable returns why no write can begin (ErrReadOnly, ErrClosed), nil
// when one can. It reads two flags: it neither waits for the write lock
// nor says whether the disk will take the write (CommitHealth does, of
// the last one).
func (s *Store) Writable() error {
	switch {
	case s.readOnly:
		return ErrReadOnly
	case s.closed.Load():
		return ErrClosed
	}
	return nil
}

// WaitCheck waits for the background check Open started, if any.
func (s *Store) WaitCheck() { s.checking.Wait() }

// StatusRecovered names the statements' files found damaged and moved
// aside, at Open or by the background check since.
func (s *Store) StatusRecovered() []string {
	if s.rs == nil {
		return nil
	}
	return s.rs.Recovered()
}

// Recovered returns the path the corrupt file was moved to by Open, or ""
// when the file was sound.
func (s *Store) Recovered() string { return s.recovered }

// Path returns the store file's path.
func (s *Store) Path() string { return s.path }

type openResult struct {
	db      *bbolt.DB
	corrupt error  // the file is damaged: db is nil
	lastSeq uint64 // salvaged from a damaged file when readable
	lastKey []byte // record key salvaged likewise
}

// openChecked opens the bbolt file and checks it: in full, or only its
// size against the meta page. Damage, including a panic or memory fault
// inside bbolt while reading the file, is reported in corrupt rather than
// err; err is for everything that says nothing about the file's contents
// (lock timeout, permissions).
func openChecked(path string, timeout time.Duration, readOnly, full bool) (res openResult, err error) {
	var file *os.File
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if res.db != nil {
			closeQuietly(res.db)
		} else if file != nil {
			_ = file.Close()
		}
		res = openResult{corrupt: fmt.Errorf("panic reading store file: %v", r)}
		err = nil
	}()
	// bbolt reads the file through a memory map: a damaged file can make it
	// touch unmapped memory. Turn that into a recoverable panic here.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))

	bopts := &bbolt.Options{
		Timeout:      timeout,
		FreelistType: bbolt.FreelistMapType,
		ReadOnly:     readOnly,
		NoStatistics: true,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	}
	if fi, err := os.Stat(path); err == nil && !full {
		// A writer that must grow the memory map waits for every open read
		// transaction, and the background check is one long read: map a
		// quarter more than the file from the start, so commits made
		// while the check runs never need to grow it.
		bopts.InitialMmapSize = int(min(fi.Size()/4*5+4<<20, math.MaxInt32))
	}
	db, err := bbolt.Open(path, 0o600, bopts)
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return res, fmt.Errorf("open store %s: %w: %w", path, ErrLocked, err)
	case isFormatError(err):
		return openResult{corrupt: err}, nil
	case err != nil:
		return res, fmt.Errorf("open store %s: %w", path, err)
	}
	res.db = db
	cerr := checkSize(db)
	if full {
		cerr = checkFile(db, nil)
	}
	if cerr != nil {
		seq, key := salvage(db)
		closeQuietly(db)
		return openResult{corrupt: cerr, lastSeq: seq, lastKey: key}, nil
	}
	return res, nil
}

// isFormatError reports whether an error from bbolt.Open means the file's
// contents are not a readable bbolt database.
func isFormatError(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) ||
		errors.Is(err, berrors.ErrVersionMismatch) || errors.Is(err, berrors.ErrInvalidMapping) {
		return true
	}
	// A file shorter than its two meta pages; bbolt has no sentinel for it.
	return strings.Contains(err.Error(), "file size too small")
}

// checkFile verifies that the file holds every page the meta page claims
// (a shorter file would fault on access), reads every record, and runs
// bbolt's consistency check. The read comes first and runs on the calling
// goroutine, where a fault from a damaged page becomes a recoverable panic;
// Check runs on a goroutine of its own, where it would kill the process.
// With stop set (the background check, writers running) it only reads,
// and gives up (errCheckStopped) when stop turns true.
func checkFile(db *bbolt.DB, stop *atomic.Bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic reading store file: %v", r)
		}
	}()
	if err := checkSize(db); err != nil {
		return err
	}
	return db.View(func(tx *bbolt.Tx) error {
		n := 0
		if err := tx.ForEach(func(_ []byte, b *bbolt.Bucket) error {
			return b.ForEach(func(_, _ []byte) error {
				if n++; stop != nil && n%4096 == 0 && stop.Load() {
					return errCheckStopped
				}
				return nil
			})
		}); err != nil {
			return err
		}
		if stop != nil {
			// In the background the writers go on: bbolt's Check compares
			// this transaction's pages with the live freelist, which they
			// change, and reports damage that is not there. It runs only
			// when the file is quiet: a full check at Open.
			return nil
		}
		var errs []error
		for err := range tx.Check() {
			if len(errs) < 8 {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}

// checkSize verifies that the file holds every page the meta page claims
// (a shorter file would fault on access) and that the meta bucket reads.
func checkSize(db *bbolt.DB) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic reading store file: %v", r)
		}
	}()
	fi, err := os.Stat(db.Path())
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	return db.View(func(tx *bbolt.Tx) error {
		if need := tx.Size(); fi.Size() < need {
			return fmt.Errorf("file is %d bytes but its pages need %d: truncated", fi.Size(), need)
		}
		if meta := tx.Bucket(bucketMeta); meta != nil {
			return meta.ForEach(func(_, _ []byte) error { return nil })
		}
		return nil
	})
}

// errCheckStopped: Close stopped a background check.
var errCheckStopped = errors.New("store check stopped")

// checkLater runs the full check after Open returned. On damage it writes
// the marker (so the next Open checks in full and recovers), logs, and
// calls onDamage.
func (s *Store) checkLater(marker string, onDamage func(error)) {
	defer s.checking.Done()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	start := s.clock.Now()
	err := checkFile(s.db, &s.stopCheck)
	switch {
	case err == nil:
		s.log.Debug("background check of the store file passed", "took", s.clock.Since(start).Round(time.Millisecond))
		return
	case errors.Is(err, errCheckStopped):
		return
	}
	s.log.Error("store file damaged: the next start checks it in full and moves it aside", "err", err)
	if werr := os.WriteFile(marker, []byte(err.Error()+"\n"), 0o600); werr != nil {
		s.log.Error("write check marker", "err", werr)
	} else {
		syncDirOf(marker)
	}
	if onDamage != nil {
		onDamage(err)
	}
}

// salvage reads the last sequence number and the record key from a
// damaged file if it can, so numbers are not reused and identifiers hash
// the same after recovery.
func salvage(db *bbolt.DB) (seq uint64, key []byte) {
	defer func() {
		if recover() != nil {
			seq, key = 0, nil
		}
	}()
	_ = db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		seq = getUint(meta, keySeq)
		if meta != nil {
			key = bytes.Clone(meta.Get(keyRecordKey))
		}
		return nil
	})
	return seq, key
}

func closeQuietly(db *bbolt.DB) {
	defer func() { _ = recover() }()
	_ = db.Close()
}

// moveAside renames a damaged file to "<path>.corrupt-<unixtime>" (with a
// counter if that exists) and fsyncs the directory.
func moveAside(path string, now time.Time) (string, error) {
	base := fmt.Sprintf("%s.corrupt-%d", path, now.Unix())
	target := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(target); errors.Is(err, os.ErrNotExist) {
			break
		} else if err != nil {
			return "", err
		}
		target = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(path, target); err != nil {
		return "", err
	}
	syncDirOf(path)
	return target, nil
}

// syncDirOf fsyncs the directory holding path, so a rename or a new file
// in it survives a power cut.
func syncDirOf(path string) {
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// init creates the buckets and meta keys of a new file, checks the schema,
// and loads the record key and the cached status info and clock floor.
// A given recordKey is used as is, and also kept in the file when keep is
// set; a nil one is read from the file (generated there when missing).
// seqBase is the lowest last-seq the file may hold.
func (s *Store) init(recordKey []byte, keep bool, seqBase uint64) error {
	load := func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := getUint(meta, keySchema); v > schemaVersion {
			return fmt.Errorf("%w: file has schema %d, this program knows %d", ErrSchema, v, schemaVersion)
		}
		if recordKey != nil {
			s.recordKey = append([]byte(nil), recordKey...)
		} else if meta != nil {
			s.recordKey = append([]byte(nil), meta.Get(keyRecordKey)...)
		}
		floor := getTime(meta, keyFloor)
		s.floor.Store(&floor)
		return nil
	}
	if s.readOnly {
		return s.db.View(load)
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		if meta.Get(keySchema) == nil {
			if err := putUint(meta, keySchema, schemaVersion); err != nil {
				return err
			}
		}
		switch {
		case keep:
			if err := meta.Put(keyRecordKey, recordKey); err != nil {
				return err
			}
		case recordKey == nil && len(meta.Get(keyRecordKey)) < MinRecordKeyLen:
			k := make([]byte, MinRecordKeyLen)
			if _, err := rand.Read(k); err != nil {
				return fmt.Errorf("generate record key: %w", err)
			}
			if err := meta.Put(keyRecordKey, k); err != nil {
				return err
			}
		}
		if seqBase > getUint(meta, keySeq) {
			if err := putUint(meta, keySeq, seqBase); err != nil {
				return err
			}
		}
		return load(tx)
	})
}

// update runs fn in one read-write transaction, committed and fsynced
// before it returns. An error of fn is returned as is; an error of the
// transaction itself (begin, write, fsync) is marked with ErrCommit and
// recorded for CommitHealth, which the next successful commit clears.
func (s *Store) update(fn func(tx *bbolt.Tx) error) error {
	if s.readOnly {
		return ErrReadOnly
	}
	var fnErr error
	err := s.db.Update(func(tx *bbolt.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	if fnErr != nil {
		return err
	}
	return s.commits.noteCommit(err)
}

// Floor returns the persisted clock floor: the latest instant the gate
// knows has passed. Zero when never raised. It does not touch the disk.
func (s *Store) Floor() time.Time { return *s.floor.Load() }

// RaiseFloor persists t as the clock floor if it is later than the current
// one; the floor never goes down. It fsyncs when the floor rises.
func (s *Store) RaiseFloor(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !t.After(s.Floor()) {
		return nil
	}
	err := s.update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if !t.After(getTime(meta, keyFloor)) {
			return nil
		}
		return putTime(meta, keyFloor, t)
	})
	if err != nil {
		return fmt.Errorf("raise clock floor: %w", err)
	}
	s.floor.Store(&t)
	return nil
}

// Stats describe the store's contents.
type Stats struct {
	Events        int          // records in the access log
	Outbox        int          // records waiting for sync
	LastSeq       uint64       // last sequence number assigned
	Dropped       uint64       // records logged but not queued: outbox full
	KeySetVersion uint64       // version of the stored "keyset" document
	StatusVersion uint64       // installed revocation/override batch version
	StatusIssued  time.Time    // its issue time
	Floor         time.Time    // clock floor
	Status        revset.Stats // the statements' files
	FileSize      int64        // bytes of the bbolt file
}

// Counters are the store's running counts, kept in its meta bucket.
type Counters struct {
	Events  int    // records in the access log
	Outbox  int    // records waiting for sync
	LastSeq uint64 // last sequence number assigned
	Dropped uint64 // records logged but not queued: outbox full
}

func readCounters(meta *bbolt.Bucket) Counters {
	return Counters{
		Events: int(getUint(meta, keyEventCount)), Outbox: int(getUint(meta, keyOutboxCount)),
		LastSeq: getUint(meta, keySeq), Dropped: getUint(meta, keyDropped),
	}
}

// OutboxFull reports whether c's outbox is at the store's bound, where
// Append keeps new records in the log but no longer queues them.
func (s *Store) OutboxFull(c Counters) bool { return uint64(c.Outbox) >= s.maxOutbox }

// Counters reads the running counts without walking any data: cheap
// enough for a heartbeat or a page refresh, unlike Stats.
func (s *Store) Counters() (Counters, error) {
	var c Counters
	err := s.db.View(func(tx *bbolt.Tx) error {
		c = readCounters(tx.Bucket(bucketMeta))
		return nil
	})
	if err != nil {
		return c, fmt.Errorf("store counters: %w", err)
	}
	return c, nil
}

// Stats reads the store's counters, for status reports (see Counters for
// heartbeats).
func (s *Store) Stats() (Stats, error) {
	var st Stats
	err := s.db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		c := readCounters(meta)
		st.Events, st.Outbox, st.LastSeq, st.Dropped = c.Events, c.Outbox, c.LastSeq, c.Dropped
		st.Floor = getTime(meta, keyFloor)
		if b := tx.Bucket(bucketTrust); b != nil {
			if v := b.Get([]byte(TrustKeySet)); len(v) >= 8 {
				st.KeySetVersion = binary.BigEndian.Uint64(v)
			}
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("store stats: %w", err)
	}
	info := s.Info()
	st.StatusVersion, st.StatusIssued = info.Version, info.IssuedAt
	st.Status = s.StatusStats()
	fi, err := os.Stat(s.path)
	if err != nil {
		return st, fmt.Errorf("store stats: %w", err)
	}
	st.FileSize = fi.Size()
	return st, nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v) }

// getUint reads a big-endian uint64; 0 when the bucket or key is missing.
func getUint(b *bbolt.Bucket, key []byte) uint64 {
	if b == nil {
		return 0
	}
	v := b.Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putUint(b *bbolt.Bucket, key []byte, v uint64) error { return b.Put(key, u64(v)) }

// getTime reads a time stored with putTime; zero when missing.
func getTime(b *bbolt.Bucket, key []byte) time.Time {
	var t time.Time
	if b == nil {
		return t
	}
	if v := b.Get(key); v != nil {
		if err := t.UnmarshalBinary(v); err != nil {
			return time.Time{}
		}
	}
	return t
}

func putTime(b *bbolt.Bucket, key []byte, t time.Time) error {
	v, err := t.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encode time: %w", err)
	}
	return b.Put(key, v)
}
