package loop

import (
	"context"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/verifier"
)

// TestPassbackRule: the anti-passback rule on the store's memory of the
// last allowed passage.
func TestPassbackRule(t *testing.T) {
	const window = time.Minute
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		last time.Duration // after t0
		at   time.Duration
		want bool // denied
	}{
		{"inside window denied", 0, 30 * time.Second, true},
		{"at window edge denied", 0, window, true},
		{"outside window allowed", 0, window + time.Nanosecond, false},
		{"same instant denied", 0, 0, true},
		{"clock stepped back denied", time.Hour, 0, true},
	} {
		if got := passedWithin(t0.Add(tc.last), t0.Add(tc.at), window); got != tc.want {
			t.Errorf("%s: passedWithin(t0+%v, t0+%v, %v) = %v; want %v", tc.name, tc.last, tc.at, window, got, tc.want)
		}
	}
}

// TestAntiPassbackScopes: the loop's anti-passback denies the same
// voucher at its venue only: a denial is not remembered (a later pass is
// judged against the last allowed one), another voucher passes, and with
// no window nothing is remembered.
func TestAntiPassbackScopes(t *testing.T) {
	r := newRig(t, time.Millisecond, 0)
	p := r.f.Policy
	p.AntiPassback = 10 * time.Minute
	r.f.SetPolicy(t, p)
	issue := func(id string) string {
		c := r.f.Claims(decoder.KindPrinted)
		c.ID = []byte(id)
		return r.f.Issue(t, r.f.Ed, c)
	}
	ctx := context.Background()
	a, b := issue("passback-a"), issue("passback-b")
	for i, step := range []struct {
		code   string
		reason verifier.Reason
	}{
		{a, verifier.ReasonOK},
		{a, verifier.ReasonAntiPassback},
		{b, verifier.ReasonOK},
		{a, verifier.ReasonAntiPassback},
	} {
		res := r.loop.Handle(ctx, r.scan(step.code))
		if res.Decision.Reason != step.reason || res.Decision.Allow != (step.reason == verifier.ReasonOK) || res.Seq == 0 {
			t.Fatalf("step %d: %v %s seq %d; want %s, recorded", i, res.Decision.Allow, res.Decision.Reason, res.Seq, step.reason)
		}
		if step.reason == verifier.ReasonAntiPassback {
			evs, _ := r.st.Events(res.Seq-1, 1)
			if len(evs) != 1 || evs[0].Allow || evs[0].Reason != string(verifier.ReasonAntiPassback) {
				t.Errorf("step %d: recorded %+v; want the anti-passback denial", i, evs)
			}
		}
	}
	other := New(Config{Gate: "G2", Venue: "V2"}, r.f.Verifier, r.st, r.ts, Options{})
	if res := other.Handle(ctx, r.scan(a)); !res.Decision.Allow {
		t.Errorf("voucher at another venue: %s; want allowed", res.Decision.Reason)
	}
	p.AntiPassback = 0
	r.f.SetPolicy(t, p)
	c := issue("passback-c")
	for i := range 2 {
		if res := r.loop.Handle(ctx, r.scan(c)); !res.Decision.Allow {
			t.Errorf("no window, pass %d: %s; want allowed", i, res.Decision.Reason)
		}
	}
	p.AntiPassback = 10 * time.Minute
	r.f.SetPolicy(t, p)
	if res := r.loop.Handle(ctx, r.scan(c)); !res.Decision.Allow {
		t.Errorf("passes with no window are not remembered: %s; want allowed", res.Decision.Reason)
	}
}

// TestPassbackWindow: a kind's own window replaces the policy's, and the
// longest is what the memories keep.
func TestPassbackWindow(t *testing.T) {
	pol := verifier.DefaultPolicy()
	pol.AntiPassback = time.Minute
	pol.Kinds.Printed.AntiPassback = 2 * time.Hour
	for _, tc := range []struct {
		kind decoder.Kind
		want time.Duration
	}{
		{decoder.KindPrinted, 2 * time.Hour},
		{decoder.KindDynamic, time.Minute},
		{decoder.KindWatch, time.Minute},
	} {
		d := verifier.Decision{Voucher: &verifier.VoucherInfo{Kind: tc.kind}}
		if got := PassbackWindow(pol, d); got != tc.want {
			t.Errorf("PassbackWindow(%v) = %v; want %v", tc.kind, got, tc.want)
		}
	}
	if got := PassbackWindow(pol, verifier.Decision{}); got != 0 {
		t.Errorf("PassbackWindow(no voucher) = %v; want 0", got)
	}
	if got := LongestPassback(pol); got != 2*time.Hour {
		t.Errorf("LongestPassback = %v; want 2h", got)
	}
	pol.Kinds.Printed.AntiPassback = 0
	if got := LongestPassback(pol); got != time.Minute {
		t.Errorf("LongestPassback with no kind window = %v; want 1m", got)
	}
}
