package testkit

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBufferConcurrent(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := b.String(); got != strings.Repeat("x", 800) {
		t.Fatalf("got %d bytes; want 800", len(got))
	}
}

func TestBufferMax(t *testing.T) {
	b := Buffer{Max: 4}
	for range 3 {
		if n, err := b.Write([]byte("abc")); n != 3 || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if got := b.String(); got != "abcabc" {
		t.Fatalf("kept %q; want the writes up to the first past Max", got)
	}
}

func TestEventually(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 5 {
			n.Add(1)
		}
	}()
	Eventually(t, "five increments", 5*time.Second, func() bool { return n.Load() == 5 })

	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Eventually(ft, "a condition that never holds", 30*time.Millisecond, func() bool { return false })
	}()
	<-done
	if !strings.Contains(ft.msg, "a condition that never holds") {
		t.Fatalf("failure message %q does not name what was awaited", ft.msg)
	}
}

// fatalRecorder records Fatalf and ends its goroutine as t.Fatalf would.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestParseProcStat: a command name with spaces and parentheses, the
// fields after it counted from the last ')', and lines that are not a
// stat line refused.
func TestParseProcStat(t *testing.T) {
	line := "4242 (my (odd) name) S 17 4242 4242 0 -1 4194560 1200 0 3 0 250 75 0 0 20 0 9 0 1234 5678 90 18446744073709551615\n"
	st, ok := ParseProcStat([]byte(line))
	if !ok {
		t.Fatalf("ParseProcStat(%q) refused it", line)
	}
	if st.Comm != "my (odd) name" || st.PPID != 17 || st.CPU != 3250*time.Millisecond {
		t.Errorf("ParseProcStat = %+v; want comm %q, ppid 17, CPU 3.25s", st, "my (odd) name")
	}
	for _, bad := range []string{"", "4242 no parentheses S 1", "4242 (short) S 1 2 3", "4242 (x) S 1 1 1 0 -1 0 0 0 0 0 u 75"} {
		if st, ok := ParseProcStat([]byte(bad)); ok {
			t.Errorf("ParseProcStat(%q) = %+v; want refused", bad, st)
		}
	}
}
