package collector

import (
	"context"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"wicket/sync/wire"
	"wicket/sync/wire/wiretest"
)

// doneToken is an MQTT token that has completed, with err.
type doneToken struct {
	done chan struct{}
	err  error
}

func newDoneToken() doneToken {
	t := doneToken{done: make(chan struct{})}
	close(t.done)
	return t
}

func (t doneToken) Wait() bool                     { return true }
func (t doneToken) WaitTimeout(time.Duration) bool { return true }
func (t doneToken) Done() <-chan struct{}          { return t.done }
func (t doneToken) Error() error                   { return t.err }

// ackRecorder is a Client that only records the acks published.
type ackRecorder struct {
	Client
	topics wire.Topics
	mu     sync.Mutex
	acks   []wire.Ack
	t      testing.TB
}

func (a *ackRecorder) Publish(topic string, qos byte, _ bool, payload any) mqtt.Token {
	if qos != ackQoS {
		a.t.Errorf("ack on %s published at QoS %d; want %d", topic, qos, ackQoS)
	}
	ack, err := wiretest.OpenAck(a.topics.Fleet, payload.([]byte))
	if err != nil {
		a.t.Errorf("bad ack on %s: %v", topic, err)
	}
	a.mu.Lock()
	a.acks = append(a.acks, ack)
	a.mu.Unlock()
	return newDoneToken()
}

// A worker stores the messages queued together in one transaction. Mixed
// in with new batches: a batch stored already and sent again, one half of
// which is stored, the same batch twice, a refused and a malformed
// message. Every record is stored once, every stored batch is acked and
// PUBACKed, the refused and malformed ones only PUBACKed, and the counts
// add up.
func TestCollectorStoresQueuedTogether(t *testing.T) {
	pool := testPool(t)
	const fleet = "together"
	a, b := gateName("together-a"), gateName("together-b")
	w := NewWriter(pool, testLog(t))
	c, err := New(withIdentity(t, Config{Broker: "tcp://127.0.0.1:1", Fleet: fleet, ClientID: "together",
		Roster: wiretest.Roster(t, testRoot, 1, a, b)}), w, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := w.Write(context.Background(), batch(a, seqRange(1, 10)...)); err != nil || n != 10 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	var pubacks int
	msg := func(gate string, payload []byte) inbound {
		return inbound{topic: c.topics.Records(gate), payload: payload, ack: func() { pubacks++ }}
	}
	signed := func(gate string, seqs ...uint64) inbound {
		return msg(gate, wiretest.Records(fleet, gate, batch(gate, seqs...)))
	}
	ms := []inbound{
		signed(a, seqRange(11, 20)...),                                           // new
		signed(a, seqRange(1, 10)...),                                            // stored already: a resend
		signed(a, seqRange(6, 15)...),                                            // 6-10 stored before, 11-15 in this transaction
		signed(b, seqRange(1, 10)...),                                            // new
		signed(b, seqRange(1, 10)...),                                            // the same again
		msg(a, []byte(`{"gate":"`+a+`","records":[{"seq":21,"gate":"`+a+`"}]}`)), // unsigned: refused
		msg(b, wiretest.Records(fleet, b, &wire.Records{Gate: b})),               // no records: malformed
		signed(b, seqRange(11, 12)...),                                           // new
	}
	rec := &ackRecorder{topics: c.topics, t: t}
	c.handle(context.Background(), rec, ms)
	c.acking.Wait() // the broker's answers to the acks are counted beside the worker

	if pubacks != len(ms) {
		t.Errorf("%d PUBACKs; want one for each of the %d messages", pubacks, len(ms))
	}
	want := map[wire.Ack]bool{
		{Gate: a, From: 11, Through: 20}: true, {Gate: a, From: 1, Through: 10}: true, {Gate: a, From: 6, Through: 15}: true,
		{Gate: b, From: 1, Through: 10}: true, {Gate: b, From: 11, Through: 12}: true,
	}
	got := map[wire.Ack]int{}
	for _, ack := range rec.acks {
		got[wire.Ack{Gate: ack.Gate, From: ack.From, Through: ack.Through}]++
	}
	if len(rec.acks) != 6 || len(got) != len(want) || got[wire.Ack{Gate: b, From: 1, Through: 10}] != 2 {
		t.Errorf("acks %v; want %v, that of b 1-10 twice", got, want)
	}
	for k := range want {
		if got[k] == 0 {
			t.Errorf("no ack of %s %d-%d", k.Gate, k.From, k.Through)
		}
	}
	if n := countRows(t, pool, a, 1, 100); n != 20 {
		t.Errorf("gate a: %d rows; want 20", n)
	}
	if n := countRows(t, pool, b, 1, 100); n != 12 {
		t.Errorf("gate b: %d rows; want 12", n)
	}
	s := c.Stats()
	if s.Records != 10+10+10+10+10+2 || s.Inserted != 10+12 || s.Duplicates != 30 || s.Refused != 1 || s.Invalid != 1 || s.Acks != 6 {
		t.Errorf("Stats() = %+v; want 52 records, 22 inserted, 30 duplicates, 1 refused, 1 invalid, 6 acks", s)
	}
}

// When PostgreSQL refuses one of the batches stored together, the others
// are stored on their own and acked; only the refused one is dropped.
// (Text that is not UTF-8 does not come over the wire, whose JSON
// replaces it; it stands here for anything PostgreSQL may refuse.)
func TestCollectorIsolatesRefusedBatch(t *testing.T) {
	pool := testPool(t)
	const fleet = "isolate"
	a, b := gateName("isolate-a"), gateName("isolate-b")
	c, err := New(withIdentity(t, Config{Broker: "tcp://127.0.0.1:1", Fleet: fleet, ClientID: "isolate"}), NewWriter(pool, testLog(t)), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	bad := batch(b, 1, 2)
	bad.Records[1].Venue = "\xff\xfe"
	var pubacks int
	decoded := func(r *wire.Records) stored {
		return stored{inbound{topic: c.topics.Records(r.Gate), ack: func() { pubacks++ }}, r}
	}
	rec := &ackRecorder{topics: c.topics, t: t}
	c.storeAndAck(context.Background(), rec, []stored{decoded(batch(a, 1, 2, 3)), decoded(bad), decoded(batch(b, 5, 6))})
	if n := countRows(t, pool, a, 1, 100); n != 3 {
		t.Errorf("gate a: %d rows; want 3", n)
	}
	if n := countRows(t, pool, b, 1, 100); n != 2 {
		t.Errorf("gate b: %d rows; want the 2 of the good batch", n)
	}
	if s := c.Stats(); pubacks != 3 || len(rec.acks) != 2 || s.Invalid != 1 || s.Inserted != 5 {
		t.Errorf("%d PUBACKs, %d acks, Stats() = %+v; want 3, 2, 1 invalid, 5 inserted", pubacks, len(rec.acks), s)
	}
}

// heldAcks is an ackRecorder whose acks are not written until release
// is closed (a connection that does not drain).
type heldAcks struct {
	ackRecorder
	release chan struct{}
}

func (h *heldAcks) Publish(topic string, qos byte, retained bool, payload any) mqtt.Token {
	h.ackRecorder.Publish(topic, qos, retained, payload)
	return doneToken{done: h.release}
}

// A worker does not wait for its acks to be written before it takes the
// next messages, but no more than Workers writes' acks are awaited at
// once: past that the worker waits, and a connection that takes no ack
// holds the collector back.
func TestCollectorAcksBesideTheWorker(t *testing.T) {
	pool := testPool(t)
	const fleet = "beside"
	a := gateName("beside-a")
	c, err := New(withIdentity(t, Config{Broker: "tcp://127.0.0.1:1", Fleet: fleet, ClientID: "beside", Workers: 1}),
		NewWriter(pool, testLog(t)), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	decoded := func(r *wire.Records) []stored {
		return []stored{{inbound{topic: c.topics.Records(r.Gate)}, r}}
	}
	rec := &heldAcks{ackRecorder{topics: c.topics, t: t}, make(chan struct{})}
	ctx := context.Background()
	c.storeAndAck(ctx, rec, decoded(batch(a, 1, 2)))
	if s := c.Stats(); s.Inserted != 2 || s.Acks != 0 || len(rec.acks) != 1 {
		t.Fatalf("after the first write: Stats() = %+v, %d acks sent; want 2 inserted, 1 ack sent and not yet answered", s, len(rec.acks))
	}
	second := make(chan struct{})
	go func() {
		defer close(second)
		c.storeAndAck(ctx, rec, decoded(batch(a, 3, 4)))
	}()
	deadline := time.Now().Add(waitLimit)
	for c.Stats().Inserted != 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	select {
	case <-second:
		t.Fatal("a second write's acks were left to wait while the first's are unanswered, with 1 worker")
	case <-time.After(50 * time.Millisecond):
	}
	close(rec.release)
	<-second
	c.acking.Wait()
	if s := c.Stats(); s.Inserted != 4 || s.Acks != 2 || len(rec.acks) != 2 {
		t.Errorf("after the answers: Stats() = %+v, %d acks sent; want 4 inserted, 2 acks", s, len(rec.acks))
	}
}

// A message that finds no write of its collector under way is written at
// once, alone; messages that find one under way gather until it ends
// and are then written together, by one worker while the other waits
// for its turn.
func TestCollectorGathersWhileWriting(t *testing.T) {
	pool := testPool(t)
	const fleet = "gather"
	a := gateName("gather-a")
	c, err := New(withIdentity(t, Config{Broker: "tcp://127.0.0.1:1", Fleet: fleet, ClientID: "gather", Workers: 2,
		Roster: wiretest.Roster(t, testRoot, 1, a)}), NewWriter(pool, testLog(t)), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	spans := make(chan writeSpan, 4)
	c.traced = func(s writeSpan) { spans <- s }
	signed := func(seqs ...uint64) inbound {
		return inbound{topic: c.topics.Records(a), payload: wiretest.Records(fleet, a, batch(a, seqs...))}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 2 {
		go c.work(ctx, &ackRecorder{topics: c.topics, t: t})
	}

	wantWrite := func(what string, messages, rows int) {
		t.Helper()
		select {
		case s := <-spans:
			if s.messages != messages || s.rows != rows {
				t.Errorf("%s: a write of %d messages, %d rows; want %d, %d", what, s.messages, s.rows, messages, rows)
			}
		case <-time.After(waitLimit):
			t.Fatalf("%s: not written", what)
		}
	}

	c.queue <- signed(1, 2)
	wantWrite("a lone message", 1, 2)

	for c.writes.under() != nil { // the lone write's worker done with it
		time.Sleep(time.Millisecond)
	}
	c.writes.begin() // a write of another worker under way
	c.queue <- signed(3, 4)
	c.queue <- signed(5)
	c.queue <- signed(6, 7)
	select {
	case s := <-spans:
		t.Fatalf("a write of %d messages while another was under way and fewer than %d were queued", s.messages, MaxMessagesPerWrite)
	case <-time.After(100 * time.Millisecond):
	}
	c.writes.end()
	wantWrite("once the write under way ended", 3, 5)
	if n := countRows(t, pool, a, 1, 7); n != 7 {
		t.Errorf("%d rows; want 7", n)
	}
}
