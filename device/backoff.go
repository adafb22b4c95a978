package device

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff yields exponentially growing waits with jitter: each wait is
// drawn from [d/2, d], where d doubles from min up to max.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
	// rand returns a value in [0, n); nil means math/rand/v2.
	rand func(n int64) int64
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	r := rand.Int64N
	if b.rand != nil {
		r = b.rand
	}
	half := b.cur / 2
	return half + time.Duration(r(int64(b.cur-half)+1))
}

func (b *backoff) reset() {
	b.cur = 0
}

// Sleep waits for d or until ctx is done, and reports whether the full
// time passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
