package clock

import (
	"context"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

func TestBackoffGrowsWithinJitterAndCaps(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		w *= time.Millisecond
		got := b.Next()
		if got < w/2 || got > w {
			t.Fatalf("wait %d = %v, want in [%v, %v]", i, got, w/2, w)
		}
	}
	b.Reset()
	if got := b.Next(); got > 100*time.Millisecond {
		t.Fatalf("after Reset wait = %v, want ≤ 100ms", got)
	}
}

func TestBackoffBounds(t *testing.T) {
	lo := Backoff{Min: time.Second, Max: time.Second, Rand: func(int64) int64 { return 0 }}
	if got := lo.Next(); got != 500*time.Millisecond {
		t.Fatalf("lowest draw = %v, want 500ms", got)
	}
	hi := Backoff{Min: time.Second, Max: time.Second, Rand: func(n int64) int64 { return n - 1 }}
	if got := hi.Next(); got != time.Second {
		t.Fatalf("highest draw = %v, want 1s", got)
	}
	huge := Backoff{Min: time.Hour, Max: 2 * time.Hour}
	for range 100 {
		if got := huge.Next(); got <= 0 || got > 2*time.Hour {
			t.Fatalf("wait %v escapes (0, 2h] after many failures", got)
		}
	}
}

func TestSleepFollowsTheClock(t *testing.T) {
	fc := clockwork.NewFakeClock()
	done := make(chan bool)
	go func() { done <- Sleep(context.Background(), fc, time.Minute) }()
	if err := fc.BlockUntilContext(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	fc.Advance(time.Minute)
	if !<-done {
		t.Fatal("Sleep reported cancelled after the clock passed d")
	}
}

func TestSleepCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() { done <- Sleep(ctx, clockwork.NewFakeClock(), time.Hour) }()
	cancel()
	if <-done {
		t.Fatal("Sleep reported the full wait after cancel")
	}
	if Sleep(ctx, nil, 0) {
		t.Fatal("zero sleep on a done context reported true")
	}
	if !Sleep(context.Background(), nil, 0) {
		t.Fatal("zero sleep on a live context reported false")
	}
}
