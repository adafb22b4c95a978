package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"wicket/device/internal/logtest"
	"wicket/internal/clock"
	"wicket/internal/testkit"
)

// jsonLogger returns a logger writing JSON lines to a buffer, scoped as a
// daemon scopes a source's logger.
func jsonLogger(component string) (*slog.Logger, *testkit.Buffer) {
	var buf testkit.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return log.With("component", component), &buf
}

// TestReconnector runs a script of sessions in a synctest bubble, where
// the real clock is the bubble's: the device is missing twice, opens,
// is lost, is missing once more, opens and runs until the context ends.
// Each change of state is one log line and one OnState call; each wait
// is what the line says and within the backoff's jitter.
func TestReconnector(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, buf := jsonLogger("scanner")
		errMissing := errors.New("no such device")
		errLost := fmt.Errorf("%w: read: i/o error", ErrDisconnected)
		var states []string
		r := NewReconnector(ReconnectConfig{
			RetryMin: 100 * time.Millisecond, RetryMax: time.Second, Logger: log,
			OnState: func(c bool, err error) { states = append(states, fmt.Sprint(c, err)) },
		})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		start := time.Now()
		var at []time.Duration // when each session started
		script := []func(ctx context.Context, opened func()) error{
			func(context.Context, func()) error { return errMissing },
			func(context.Context, func()) error { return errMissing },
			func(_ context.Context, opened func()) error {
				opened()
				if !r.Connected() {
					t.Error("Connected() = false in an open session")
				}
				time.Sleep(time.Minute) // the device works for a while
				return errLost
			},
			func(context.Context, func()) error { return errMissing },
			func(ctx context.Context, opened func()) error {
				opened()
				cancel()
				<-ctx.Done()
				return errLost // a session's error once ctx is done is no loss
			},
		}
		err := r.Run(ctx, func(ctx context.Context, opened func()) error {
			at = append(at, time.Since(start))
			return script[len(at)-1](ctx, opened)
		})
		if err != nil {
			t.Fatalf("Run() = %v; want nil", err)
		}
		if len(at) != len(script) {
			t.Fatalf("%d sessions; want %d", len(at), len(script))
		}
		if r.Connected() || r.Disconnects() != 1 {
			t.Errorf("after Run: Connected() = %v, Disconnects() = %d; want false, 1", r.Connected(), r.Disconnects())
		}
		// Missing after the loss is no new change: no call, a debug line.
		wantStates := []string{"false no such device", "true <nil>", fmt.Sprint(false, errLost), "true <nil>"}
		if !slices.Equal(states, wantStates) {
			t.Errorf("OnState calls = %q; want %q", states, wantStates)
		}

		lines := logtest.Lines(t, buf.String())
		wantMsgs := []string{
			"device unavailable; reconnecting", "device still unavailable", "device connected",
			"device lost; reconnecting", "device still unavailable", "device connected",
		}
		if got := logtest.Messages(lines); !slices.Equal(got, wantMsgs) {
			t.Fatalf("log = %q; want %q", got, wantMsgs)
		}
		// The waits: after the two misses 100 and 200 ms at most; after the
		// loss the backoff starts again at 100 ms; then 200 ms.
		var waits []time.Duration
		for _, l := range lines {
			if l["component"] != "scanner" {
				t.Errorf("log line %v: component %v; want scanner", l, l["component"])
			}
			if d, ok := l["retry_in"].(float64); ok {
				waits = append(waits, time.Duration(d))
			}
		}
		busy := []time.Duration{0, 0, time.Minute, 0}
		caps := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
		if len(waits) != len(caps) {
			t.Fatalf("retry_in logged %v; want %d waits", waits, len(caps))
		}
		for i, d := range waits {
			if d < caps[i]/2 || d > caps[i] {
				t.Errorf("wait %d = %v; want within [%v, %v]", i, d, caps[i]/2, caps[i])
			}
			if got := at[i+1] - at[i] - busy[i]; got != d {
				t.Errorf("session %d started %v after the last ended; the log said %v", i+2, got, d)
			}
		}
	})
}

// TestReconnectorCancelDuringWait: Run returns as soon as its context ends
// while it waits to retry.
func TestReconnectorCancelDuringWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewReconnector(ReconnectConfig{RetryMin: time.Hour, RetryMax: time.Hour})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() {
			done <- r.Run(ctx, func(context.Context, func()) error { return errors.New("missing") })
		}()
		synctest.Wait()
		start := time.Now()
		cancel()
		if err := <-done; err != nil || time.Since(start) != 0 {
			t.Errorf("Run() = %v after %v; want nil at once", err, time.Since(start))
		}
	})
}

// TestReconnectorBackoff checks the waits a Reconnector draws between
// attempts, at both ends of the jitter.
func TestReconnectorBackoff(t *testing.T) {
	for _, tt := range []struct {
		name string
		rand func(int64) int64
		want []time.Duration
	}{
		{"lowest jitter", func(int64) int64 { return 0 },
			[]time.Duration{50, 100, 200, 400, 500, 500}},
		{"highest jitter", func(n int64) int64 { return n - 1 },
			[]time.Duration{100, 200, 400, 800, 1000, 1000}},
	} {
		b := clock.Backoff{Min: 100 * time.Millisecond, Max: time.Second, Rand: tt.rand}
		for i, want := range tt.want {
			want *= time.Millisecond
			if got := b.Next(); got != want {
				t.Errorf("%s: Next() #%d = %v; want %v", tt.name, i, got, want)
			}
		}
		b.Reset()
		if got, want := b.Next(), tt.want[0]*time.Millisecond; got != want {
			t.Errorf("%s: Next() after Reset = %v; want %v", tt.name, got, want)
		}
	}
}
