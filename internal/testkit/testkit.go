// Package testkit holds small helpers that tests across Wicket share: a
// buffer that goroutines may write while a test reads it, and Eventually,
// the one way a test waits for another actor (a broker, a daemon, a
// device goroutine) to reach a state.
package testkit

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// Buffer is a bytes.Buffer safe for concurrent Write and String, for the
// io.Writer a test hands to code that writes from several goroutines (the
// simulated gate, a daemon's log).
type Buffer struct {
	// Max, if above 0, bounds what is kept: once the buffer holds more
	// than Max bytes, further writes are counted as written and dropped,
	// so a long soak's log cannot grow without bound.
	Max int

	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p, or drops it once the buffer holds more than Max bytes.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Max > 0 && b.b.Len() > b.Max {
		return len(p), nil
	}
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Eventually polls cond every 10 ms until it holds, and fails the test
// naming what it waited for if within passes first. It is for state that
// another actor reaches over real IO; logic under a fake clock should
// advance the clock instead.
func Eventually(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		<-tick.C
	}
}
