package station

import (
	"encoding/hex"
	"sync"
	"time"
)

// hashLen is the length of a voucher's record hash (store.HashID): the
// hex of 16 bytes.
const hashLen = 32

// key is a voucher's record hash in binary.
type key [hashLen / 2]byte

// parseKey reads a record hash; ok is false for anything else.
func parseKey(voucher string) (k key, ok bool) {
	if len(voucher) != hashLen {
		return k, false
	}
	if _, err := hex.Decode(k[:], []byte(voucher)); err != nil {
		return k, false
	}
	return k, true
}

// Memory is the station's memory of admitted vouchers: record hash → the
// latest time another gate admitted it. It is bounded (the oldest entry
// goes first when it is full) and forgets entries older than the window
// it is given. Safe for concurrent use.
type Memory struct {
	mu      sync.Mutex
	max     int
	last    map[key]int64 // unix ns of the latest grant
	order   []grantAt     // grants in arrival order, a queue from head
	head    int
	evicted uint64
}

type grantAt struct {
	k  key
	at int64
}

// NewMemory returns a memory of at most max entries (DefaultMaxEntries
// when max <= 0).
func NewMemory(max int) *Memory {
	if max <= 0 {
		max = DefaultMaxEntries
	}
	return &Memory{max: max, last: make(map[key]int64)}
}

// Put remembers that voucher was admitted at at. A hash that is not a
// record hash is ignored (the receiver checked it before).
func (m *Memory) Put(voucher string, at time.Time) {
	k, ok := parseKey(voucher)
	if !ok {
		return
	}
	ns := at.UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev, ok := m.last[k]; ok && prev >= ns {
		return
	}
	for len(m.last) >= m.max {
		if _, known := m.last[k]; known {
			break
		}
		m.popOldest()
		m.evicted++
	}
	m.last[k] = ns
	m.order = append(m.order, grantAt{k, ns})
}

// popOldest forgets the entry at the head of the queue, unless a later
// grant of the same voucher keeps it. The caller holds mu.
func (m *Memory) popOldest() {
	for m.head < len(m.order) {
		g := m.order[m.head]
		m.head++
		if m.last[g.k] == g.at {
			delete(m.last, g.k)
			break
		}
	}
	m.compact()
}

// compact drops the consumed head of the queue once it is half of it.
func (m *Memory) compact() {
	if m.head > 1024 && m.head*2 > len(m.order) {
		m.order = append(m.order[:0], m.order[m.head:]...)
		m.head = 0
	}
}

// LastAllowed returns when voucher was last admitted at another gate of
// the station, if the memory holds it.
func (m *Memory) LastAllowed(voucher string) (time.Time, bool) {
	k, ok := parseKey(voucher)
	if !ok {
		return time.Time{}, false
	}
	m.mu.Lock()
	ns, ok := m.last[k]
	m.mu.Unlock()
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// Forget drops every entry admitted before now-window and returns how
// many it dropped.
func (m *Memory) Forget(now time.Time, window time.Duration) int {
	cutoff := now.Add(-window).UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for m.head < len(m.order) && m.order[m.head].at < cutoff {
		g := m.order[m.head]
		m.head++
		if at, ok := m.last[g.k]; ok && at == g.at {
			delete(m.last, g.k)
			n++
		}
	}
	// Grants arrive roughly in time order, not exactly: a late one
	// behind a newer one waits at most until the newer one expires.
	m.compact()
	return n
}

// Len returns how many vouchers the memory holds.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.last)
}

// Evicted returns how many entries were forgotten early because the
// memory was full.
func (m *Memory) Evicted() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.evicted
}
