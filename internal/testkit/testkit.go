// Package testkit holds small helpers that tests across Wicket share: a
// buffer that goroutines may write while a test reads it, Eventually,
// the one way a test waits for another actor (a broker, a daemon, a
// device goroutine) to reach a state, and ParseProcStat for the CPU time
// of processes the benchmarks measure.
package testkit

import (
	"bytes"
	"strconv"
	"strings"
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

// ProcStat is what the benchmarks read of a /proc/PID/stat line (Linux).
type ProcStat struct {
	Comm string        // the command name, without its parentheses
	PPID int           // the parent's pid
	CPU  time.Duration // user and system time used so far
}

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ,
// 100 a second on Linux).
const clockTick = 10 * time.Millisecond

// ParseProcStat parses the content of a /proc/PID/stat file. The command
// name (field 2) is in parentheses and may hold spaces and parentheses
// itself, so the fields after it are counted from the last ')': state,
// ppid, ... utime (field 14 of the line) and stime (15). It reports
// false for anything else.
func ParseProcStat(b []byte) (ProcStat, bool) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return ProcStat{}, false
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 13 {
		return ProcStat{}, false
	}
	ppid, err0 := strconv.Atoi(f[1])
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err0 != nil || err1 != nil || err2 != nil {
		return ProcStat{}, false
	}
	return ProcStat{Comm: string(b[open+1 : end]), PPID: ppid, CPU: time.Duration(ut+st) * clockTick}, true
}
