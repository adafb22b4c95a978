package station

import (
	"fmt"
	"testing"
	"time"
)

func hashOf(i int) string { return fmt.Sprintf("%032x", i) }

// TestMemory: the latest grant of a voucher is kept, the window forgets
// old ones, and a full memory forgets the oldest first.
func TestMemory(t *testing.T) {
	t0 := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	m := NewMemory(3)
	m.Put(hashOf(1), t0)
	m.Put(hashOf(1), t0.Add(2*time.Second))
	m.Put(hashOf(1), t0.Add(time.Second)) // older: ignored
	if at, ok := m.LastAllowed(hashOf(1)); !ok || !at.Equal(t0.Add(2*time.Second)) {
		t.Errorf("LastAllowed(1) = %v, %v; want t0+2s", at, ok)
	}
	if _, ok := m.LastAllowed("not a hash"); ok {
		t.Error("LastAllowed(not a hash) = true")
	}
	m.Put(hashOf(2), t0.Add(3*time.Second))
	m.Put(hashOf(3), t0.Add(4*time.Second))
	m.Put(hashOf(4), t0.Add(5*time.Second)) // full: 1 goes
	if _, ok := m.LastAllowed(hashOf(1)); ok || m.Len() != 3 || m.Evicted() != 1 {
		t.Errorf("full memory: 1 remembered %v, len %d, evicted %d; want forgotten, 3, 1", ok, m.Len(), m.Evicted())
	}
	if n := m.Forget(t0.Add(4*time.Second+time.Minute), time.Minute); n != 1 {
		t.Errorf("Forget = %d; want 1 (2, the only grant before t0+4s)", n)
	}
	for i, want := range map[int]bool{2: false, 3: true, 4: true} {
		if _, ok := m.LastAllowed(hashOf(i)); ok != want {
			t.Errorf("after Forget, LastAllowed(%d) = %v; want %v", i, ok, want)
		}
	}
	for i := range 5000 {
		m.Put(hashOf(100+i), t0.Add(time.Hour+time.Duration(i)))
	}
	if m.Len() != 3 || len(m.order)-m.head > 3+1 {
		t.Errorf("after 5000 puts: len %d, queue %d; want 3 and the queue bounded", m.Len(), len(m.order)-m.head)
	}
}
