// Package testkit holds small helpers that tests across Wicket share: a
// buffer that goroutines may write while a test reads it.
package testkit

import (
	"bytes"
	"sync"
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
