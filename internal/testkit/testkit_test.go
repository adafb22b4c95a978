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
