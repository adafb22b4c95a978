// Package trust installs signed trust data (key sets and revocation/
// override batches) from any source, the fleet broker or a technician's
// file, with the same checks: root signature, document type, version.
// It also checks and carries out the authority's signed orders to named
// gates (clock-floor resets, emergency acknowledges), each once.
//
// A key set or batch is stored in the gate's store in one transaction and
// only then put in force, so after a power cut the gate holds the old data
// or the new, never a mix. Deltas that arrive before the version they
// follow are held (bounded) and applied once the chain is complete; a
// delta that can't be chained marks a gap until a snapshot arrives.
package trust

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"wicket/internal/clock"
	"wicket/sync/store"
	"wicket/verifier"
)

// maxPending bounds the deltas held while waiting for the one before
// them: a gate that missed more than this many waits for a snapshot.
const maxPending = 1024

// Result says what happened to one document.
type Result int

const (
	Applied   Result = iota // installed now
	Held                    // a delta waiting for the version it follows
	Stale                   // not newer than what is installed: nothing to do
	Refused                 // bad signature, wrong type, malformed: reported
	Elsewhere               // an order addressed to other gates: nothing to do
)

func (r Result) String() string {
	return [...]string{"applied", "held", "stale", "refused", "elsewhere"}[r]
}

// Stats counts what the Applier saw.
type Stats struct {
	Applied, Held, Stale, Refused uint64
	// Gap: deltas are held that don't chain to the installed version.
	Gap bool
	// LastRefusal explains the last refused document.
	LastRefusal string
	// Assembling is the multi-part snapshot being collected, if any.
	Assembling *Assembly
}

// Assembly describes a multi-part snapshot being collected.
type Assembly struct {
	Version    uint64
	Have, Of   uint32
	Started    time.Time
	LastPartAt time.Time
}

// Applier installs trust documents into a store and a verifier. Its
// methods are safe for concurrent use.
type Applier struct {
	roots verifier.RootKeys
	st    *store.Store
	v     *verifier.Verifier
	log   *slog.Logger
	clk   clock.Clock // wall clock: assembly timestamps and install time only, never expiry

	// OnChange, if set, is called after something was installed.
	OnChange func()
	// OnClockReset, if set, is called after a signed clock reset moved
	// the floor from old to floor (for the gate's access log).
	OnClockReset func(o *verifier.Order, old, floor time.Time)
	// OnEmergencyAck is the gate's acknowledge path (the one the admin
	// page and wicketd ack-emergency use), called for each signed
	// emergency acknowledge the gate acts on; by says which order. Nil:
	// the gate has no emergency release to end, and such orders are used
	// up and do nothing.
	OnEmergencyAck func(by string) (ended bool, err error)
	// Place is this gate's id and venue, which orders (clock resets,
	// emergency acknowledges) must name; the roster adds its station.
	// Set it before the first order arrives.
	Place verifier.Place

	mu      sync.Mutex
	pending map[uint64]*verifier.Batch // deltas by version
	asm     *assembly                  // multi-part snapshot being collected
	stats   Stats
}

// assembly collects the parts of one multi-part snapshot into a store
// snapshot writer; nothing is in force until the last part arrives.
type assembly struct {
	Assembly
	issuedAt time.Time
	have     []bool
	w        *store.SnapshotWriter
}

// New returns an Applier.
func New(roots verifier.RootKeys, st *store.Store, v *verifier.Verifier, log *slog.Logger) *Applier {
	return &Applier{roots: roots, st: st, v: v, log: log.With("component", "trust"), clk: clock.Real(), pending: map[uint64]*verifier.Batch{}}
}

// Stats returns the counters.
func (a *Applier) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stats
	s.Gap = len(a.pending) > 0
	if a.asm != nil {
		as := a.asm.Assembly
		s.Assembling = &as
	}
	return s
}

// LoadStored installs the key set kept in the store (at start). A stored
// key set that no longer verifies (the root keys changed) is reported and
// skipped.
func (a *Applier) LoadStored() error {
	raw, _, err := a.st.TrustDoc(store.TrustKeySet)
	if err != nil {
		return fmt.Errorf("read stored key set: %w", err)
	}
	if raw == nil {
		return nil
	}
	ks, err := a.roots.ParseKeySet(raw)
	if err != nil {
		a.log.Error("stored key set no longer verifies (root keys changed?)", "err", err)
		return nil
	}
	if err := a.v.InstallKeySet(ks); err != nil && !errors.Is(err, verifier.ErrTrustVersion) {
		return err
	}
	if info := a.st.Info(); info.Version != 0 {
		a.v.Clock().Raise(info.IssuedAt)
	}
	return nil
}

// KeySet verifies a signed key set and installs it if newer: stored first,
// then in force, and the clock floor raised to its issue time.
func (a *Applier) KeySet(raw []byte, source string) (Result, error) {
	ks, err := a.roots.ParseKeySet(raw)
	if err != nil {
		return a.refuse("key set", source, err)
	}
	if cur := a.v.KeySet(); cur != nil && ks.Version <= cur.Version {
		return a.stale("key set", source, ks.Version, cur.Version)
	}
	if err := a.st.PutTrustDoc(store.TrustKeySet, ks.Version, raw); err != nil {
		if errors.Is(err, store.ErrStaleVersion) {
			return a.stale("key set", source, ks.Version, 0)
		}
		return Refused, fmt.Errorf("store key set: %w", err)
	}
	if err := a.v.InstallKeySet(ks); err != nil && !errors.Is(err, verifier.ErrTrustVersion) {
		return Refused, err
	}
	a.log.Info("key set installed", "version", ks.Version, "keys", len(ks.Keys), "source", source)
	a.count(Applied)
	a.changed()
	return Applied, nil
}

// Batch verifies a signed batch and applies it: a newer snapshot at once,
// a delta when it follows the installed version (else it is held), and
// then every held delta that now chains.
func (a *Applier) Batch(raw []byte, source string) (Result, error) {
	b, err := a.roots.ParseBatch(raw)
	if err != nil {
		return a.refuse("batch", source, err)
	}
	a.mu.Lock()
	var res Result
	if b.Parts != 0 {
		res, err = a.partLocked(b, source)
	} else {
		res, err = a.applyLocked(b, source)
	}
	if res == Applied {
		a.drainLocked(source)
	}
	a.mu.Unlock()
	if res == Applied {
		a.changed()
	}
	return res, err
}

func (a *Applier) applyLocked(b *verifier.Batch, source string) (Result, error) {
	err := a.st.ApplyBatch(b, a.dropBefore(b))
	switch {
	case err == nil:
		a.v.Clock().Raise(b.IssuedAt)
		a.log.Info("batch applied", "version", b.Version, "base", b.Base, "entries", len(b.Entries), "source", source)
		a.stats.Applied++
		for v := range a.pending {
			if v <= b.Version {
				delete(a.pending, v)
			}
		}
		if a.asm != nil && a.asm.Version <= b.Version {
			a.abandonLocked()
		}
		return Applied, nil
	case errors.Is(err, verifier.ErrTrustVersion):
		a.stats.Stale++
		a.log.Debug("batch not newer than installed", "version", b.Version, "installed", a.st.Info().Version, "source", source)
		return Stale, nil
	case errors.Is(err, verifier.ErrTrustGap):
		if len(a.pending) >= maxPending {
			a.stats.Refused++
			a.stats.LastRefusal = fmt.Sprintf("delta %d: %d deltas already waiting; waiting for a snapshot", b.Version, maxPending)
			a.log.Warn("too many deltas waiting; waiting for a snapshot", "version", b.Version)
			return Refused, nil
		}
		a.pending[b.Version] = b
		a.stats.Held++
		a.log.Info("delta held until the version it follows arrives", "version", b.Version, "base", b.Base, "installed", a.st.Info().Version, "source", source)
		return Held, nil
	}
	return Refused, fmt.Errorf("apply batch %d: %w", b.Version, err)
}

// partLocked adds one part of a multi-part snapshot; the last one to
// arrive puts the snapshot in force. A part of a newer snapshot abandons
// the one being collected.
func (a *Applier) partLocked(b *verifier.Batch, source string) (Result, error) {
	installed := a.st.Info().Version
	if b.Version <= installed {
		a.stats.Stale++
		return Stale, nil
	}
	if cur := a.asm; cur != nil {
		switch {
		case b.Version < cur.Version:
			a.stats.Stale++
			return Stale, nil
		case b.Version > cur.Version:
			a.log.Info("multi-part snapshot abandoned for a newer one", "version", cur.Version, "parts", cur.Have, "of", cur.Of, "newer", b.Version)
			a.abandonLocked()
		case b.Parts != cur.Of || !b.IssuedAt.Equal(cur.issuedAt):
			a.stats.Refused++
			a.stats.LastRefusal = fmt.Sprintf("snapshot %d part %d from %s: %d parts issued %v, but the parts collected say %d issued %v",
				b.Version, b.Part, source, b.Parts, b.IssuedAt.UTC(), cur.Of, cur.issuedAt.UTC())
			a.log.Warn("snapshot part does not match the parts collected", "version", b.Version, "part", b.Part, "source", source)
			return Refused, errors.New(a.stats.LastRefusal)
		case cur.have[b.Part]:
			a.stats.Stale++
			return Stale, nil
		}
	}
	if a.asm == nil {
		w, err := a.st.NewSnapshot(b.Version, b.IssuedAt, a.dropBefore(b))
		if err != nil {
			return Refused, err
		}
		now := a.clk.Now()
		a.asm = &assembly{Assembly: Assembly{Version: b.Version, Of: b.Parts, Started: now}, issuedAt: b.IssuedAt, have: make([]bool, b.Parts), w: w}
	}
	cur := a.asm
	if err := cur.w.AddPart(b.Part, b.Entries); err != nil {
		a.abandonLocked()
		return Refused, fmt.Errorf("snapshot %d part %d: %w", b.Version, b.Part, err)
	}
	cur.have[b.Part] = true
	cur.Have++
	cur.LastPartAt = a.clk.Now()
	if cur.Have < cur.Of {
		a.stats.Held++
		a.log.Debug("snapshot part stored", "version", b.Version, "part", b.Part, "have", cur.Have, "of", cur.Of, "source", source)
		return Held, nil
	}
	a.asm = nil
	start := a.clk.Now()
	if err := cur.w.Commit(); err != nil {
		if errors.Is(err, verifier.ErrTrustVersion) {
			a.stats.Stale++
			return Stale, nil
		}
		return Refused, fmt.Errorf("install snapshot %d: %w", b.Version, err)
	}
	a.v.Clock().Raise(b.IssuedAt)
	a.stats.Applied++
	for v := range a.pending {
		if v <= b.Version {
			delete(a.pending, v)
		}
	}
	a.log.Info("multi-part snapshot applied", "version", b.Version, "parts", cur.Of, "collected_in", cur.LastPartAt.Sub(cur.Started).Round(time.Millisecond), "install", a.clk.Since(start).Round(time.Millisecond), "source", source)
	return Applied, nil
}

// dropBefore is the time at which a batch's statements count as expired
// and are not stored: the trusted clock's floor, or the batch's own issue
// time if later (the floor rises to it once the batch is in). Never the
// wall clock: a gate whose clock is ahead would drop revocations and
// overrides still in force, and since the version moves on they would not
// come back until the next snapshot.
func (a *Applier) dropBefore(b *verifier.Batch) time.Time {
	floor := a.v.Clock().Floor()
	if b.IssuedAt.After(floor) {
		return b.IssuedAt
	}
	return floor
}

// abandonLocked drops the snapshot being collected.
func (a *Applier) abandonLocked() {
	if a.asm != nil {
		a.asm.w.Abort()
		a.asm = nil
	}
}

// drainLocked applies held deltas that chain to the installed version.
func (a *Applier) drainLocked(source string) {
	for {
		installed := a.st.Info().Version
		var next *verifier.Batch
		vs := make([]uint64, 0, len(a.pending))
		for v := range a.pending {
			vs = append(vs, v)
		}
		sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
		for _, v := range vs {
			if b := a.pending[v]; b.Base == installed {
				next = b
				break
			}
		}
		if next == nil {
			return
		}
		delete(a.pending, next.Version)
		if res, err := a.applyLocked(next, source+" (held)"); res != Applied {
			a.log.Warn("held delta not applied", "version", next.Version, "result", res.String(), "err", err)
		}
	}
}

func (a *Applier) refuse(what, source string, err error) (Result, error) {
	a.mu.Lock()
	a.stats.Refused++
	a.stats.LastRefusal = fmt.Sprintf("%s from %s: %v", what, source, err)
	a.mu.Unlock()
	a.log.Warn("trust document refused", "what", what, "source", source, "err", err)
	return Refused, fmt.Errorf("%s from %s: %w", what, source, err)
}

func (a *Applier) stale(what, source string, got, have uint64) (Result, error) {
	a.count(Stale)
	a.log.Debug(what+" not newer than installed", "version", got, "installed", have, "source", source)
	return Stale, nil
}

func (a *Applier) count(r Result) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch r {
	case Applied:
		a.stats.Applied++
	case Stale:
		a.stats.Stale++
	}
}

func (a *Applier) changed() {
	if a.OnChange != nil {
		a.OnChange()
	}
}
