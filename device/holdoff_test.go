package device

import (
	"fmt"
	"testing"
	"time"
)

// fakeClock is a settable clock for HoldOff callers.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time                  { return c.now }
func (c *fakeClock) Advance(d time.Duration)         { c.now = c.now.Add(d) }
func (c *fakeClock) allow(h *HoldOff, p string) bool { return h.Allow([]byte(p), c.Now()) }

func TestHoldOff(t *testing.T) {
	type step struct {
		after   time.Duration // advance the clock first
		payload string
		want    bool
	}
	tests := []struct {
		name  string
		size  int
		steps []step
	}{
		{"same code suppressed within window", 0, []step{
			{0, "A", true},
			{time.Second, "A", false},
			{1500 * time.Millisecond, "A", false}, // window restarts at each sighting
			{2100 * time.Millisecond, "A", true},
		}},
		{"exactly the window passes", 0, []step{
			{0, "A", true},
			{2 * time.Second, "A", true},
		}},
		{"different code passes at once", 0, []step{
			{0, "A", true},
			{100 * time.Millisecond, "B", true},
			{100 * time.Millisecond, "A", false},
			{100 * time.Millisecond, "B", false},
		}},
		{"memory is bounded", 2, []step{
			{0, "A", true},
			{10 * time.Millisecond, "B", true},
			{10 * time.Millisecond, "C", true}, // evicts A, the oldest
			{10 * time.Millisecond, "A", true},
			{10 * time.Millisecond, "C", false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{now: t0}
			h := NewHoldOff(2*time.Second, tt.size)
			for i, s := range tt.steps {
				clk.Advance(s.after)
				if got := clk.allow(h, s.payload); got != s.want {
					t.Errorf("step %d: Allow(%q) at +%v = %v; want %v", i, s.payload, clk.now.Sub(t0), got, s.want)
				}
			}
		})
	}
}

func TestHoldOffHeldCode(t *testing.T) {
	// A code held in front of the reader for 10 s, re-read every 300 ms,
	// gives one decision.
	clk := &fakeClock{now: t0}
	h := NewHoldOff(2*time.Second, 0)
	allowed := 0
	for range 34 {
		if clk.allow(h, "HC1:HELD") {
			allowed++
		}
		clk.Advance(300 * time.Millisecond)
	}
	if allowed != 1 {
		t.Errorf("held code allowed %d times; want 1", allowed)
	}
	clk.Advance(2 * time.Second)
	if !clk.allow(h, "HC1:HELD") {
		t.Errorf("Allow after the code was away for the window = false; want true")
	}
}

func TestHoldOffClockBackwards(t *testing.T) {
	clk := &fakeClock{now: t0}
	h := NewHoldOff(time.Second, 0)
	clk.allow(h, "A")
	clk.Advance(-time.Hour)
	if clk.allow(h, "A") {
		t.Errorf("Allow with time going backwards = true; want false")
	}
}

func TestHoldOffDisabledAndReset(t *testing.T) {
	h := NewHoldOff(-1, 0)
	for i := range 3 {
		if !h.Allow([]byte("A"), t0) {
			t.Errorf("disabled HoldOff: Allow #%d = false; want true", i)
		}
	}
	h = NewHoldOff(time.Minute, 0)
	h.Allow([]byte("A"), t0)
	h.Reset()
	if !h.Allow([]byte("A"), t0) {
		t.Errorf("Allow after Reset = false; want true")
	}
}

func TestHoldOffConcurrent(t *testing.T) {
	h := NewHoldOff(time.Minute, 4)
	done := make(chan int)
	for g := range 4 {
		go func() {
			n := 0
			for i := range 100 {
				if h.Allow(fmt.Appendf(nil, "%d-%d", g, i%3), t0) {
					n++
				}
			}
			done <- n
		}()
	}
	for range 4 {
		<-done
	}
}

func TestHexDump(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"HC1:ABC", "HC1:ABC"},
		{"AB\r\n", "AB<0d><0a>"},
		{"\x00\x7f\xff", "<00><7f><ff>"},
		{"a<0d>", "a<3c>0d>"},
		{" ~", " ~"},
	}
	for _, tt := range tests {
		if got := HexDump([]byte(tt.in)); got != tt.want {
			t.Errorf("HexDump(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestLogLimiter(t *testing.T) {
	l := NewLogLimiter(time.Second)
	type step struct {
		at   time.Duration
		ok   bool
		held int
	}
	for i, s := range []step{{0, true, 0}, {100 * time.Millisecond, false, 0}, {500 * time.Millisecond, false, 0}, {time.Second, true, 2}, {1500 * time.Millisecond, false, 0}} {
		ok, held := l.Allow("k", t0.Add(s.at))
		if ok != s.ok || held != s.held {
			t.Errorf("step %d: allow at +%v = %v, %d; want %v, %d", i, s.at, ok, held, s.ok, s.held)
		}
	}
	if ok, _ := l.Allow("other", t0.Add(1500*time.Millisecond)); !ok {
		t.Errorf("allow of another kind = false; want true")
	}
}
