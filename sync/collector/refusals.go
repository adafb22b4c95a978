package collector

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Reasons a records message is refused (wicket_refusals.reason).
const (
	RefusedUnsigned   = "unsigned"        // no version 2 envelope
	RefusedSigner     = "signer_not_gate" // signed by another than the gate of the topic
	RefusedUnenrolled = "not_enrolled"    // the gate is not in the roster (or no roster yet)
	RefusedSignature  = "bad_signature"   // the signature does not verify with the gate's key
	RefusedGate       = "wrong_gate"      // the batch names another gate than its signer
	RefusedShard      = "wrong_shard"     // published on a shard other than the gate's (wire.Shard)
)

// errRefused marks a message refused for who sent it rather than for its
// shape.
type errRefused struct {
	reason string
	err    error
}

func (e *errRefused) Error() string { return e.reason + ": " + e.err.Error() }
func (e *errRefused) Unwrap() error { return e.err }

func refused(reason string, err error) error { return &errRefused{reason, err} }

// refusalKey is one row of wicket_refusals.
type refusalKey struct{ gate, reason string }

// refusalCount is what is added to a row.
type refusalCount struct{ messages, records int64 }

// maxRefusalKeys bounds the refusals counted between two flushes: a
// publisher inventing gate ids by the million must not grow the
// collector's memory. Beyond it, refusals count under the gate "*".
const maxRefusalKeys = 4096

// refusals counts refused messages until they are written.
type refusals struct {
	mu sync.Mutex
	m  map[refusalKey]refusalCount
}

func (r *refusals) add(gate, reason string, records int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[refusalKey]refusalCount{}
	}
	k := refusalKey{gate, reason}
	if _, ok := r.m[k]; !ok && len(r.m) >= maxRefusalKeys {
		k.gate = "*"
	}
	c := r.m[k]
	c.messages++
	c.records += int64(records)
	r.m[k] = c
}

// take returns the counts so far and starts again.
func (r *refusals) take() map[refusalKey]refusalCount {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.m
	r.m = nil
	return m
}

// putBack adds counts that could not be written to the next flush.
func (r *refusals) putBack(m map[refusalKey]refusalCount) {
	for k, c := range m {
		r.mu.Lock()
		if r.m == nil {
			r.m = map[refusalKey]refusalCount{}
		}
		old := r.m[k]
		r.m[k] = refusalCount{old.messages + c.messages, old.records + c.records}
		r.mu.Unlock()
	}
}

// addRefusals adds counts of refused messages to wicket_refusals, one
// statement for all of them.
func (w *Writer) addRefusals(ctx context.Context, m map[refusalKey]refusalCount) error {
	if len(m) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("INSERT INTO wicket_refusals AS r (gate, reason, messages, records) VALUES ")
	args := make([]any, 0, 4*len(m))
	i := 0
	for k, c := range m {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "($%d, $%d, $%d, $%d)", 4*i+1, 4*i+2, 4*i+3, 4*i+4)
		args = append(args, k.gate, k.reason, c.messages, c.records)
		i++
	}
	b.WriteString(" ON CONFLICT (gate, reason) DO UPDATE SET messages = r.messages + EXCLUDED.messages," +
		" records = r.records + EXCLUDED.records, last_at = now()")
	if _, err := w.pool.Exec(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("count refused messages: %w", err)
	}
	return nil
}

// flushRefusals writes the refusals counted so far; on failure they are
// kept for the next flush.
func (c *Collector) flushRefusals(ctx context.Context) {
	m := c.refusals.take()
	if err := c.w.addRefusals(ctx, m); err != nil {
		c.refusals.putBack(m)
		if !errors.Is(err, context.Canceled) {
			c.complain(&c.writeLog, "cannot count refused messages in PostgreSQL; retrying", "err", err)
		}
	}
}
