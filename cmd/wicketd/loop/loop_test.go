package loop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"wicket/decoder"
	"wicket/device"
	"wicket/device/gate"
	"wicket/device/gate/gatetest"
	"wicket/internal/testkit"
	"wicket/sync/store"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// firstHighAfter returns when relay was first energised at or after t.
func firstHighAfter(relay *gatetest.Out, t time.Time) (time.Time, bool) {
	for _, w := range relay.Writes() {
		if w.L == gpio.High && !w.At.Before(t) {
			return w.At, true
		}
	}
	return time.Time{}, false
}

type rig struct {
	f     *verifiertest.Fixture
	st    *store.Store
	relay *gatetest.Out
	ts    *gate.Turnstile
	loop  *Loop
}

func newRig(t testing.TB, pulse time.Duration, holdOff time.Duration) *rig {
	t.Helper()
	return newRigIn(t, t.TempDir(), pulse, holdOff)
}

// newRigIn is newRig with the store in dir.
func newRigIn(t testing.TB, dir string, pulse time.Duration, holdOff time.Duration) *rig {
	t.Helper()
	return newRigKeyed(t, dir, pulse, holdOff, nil)
}

// newRigKeyed is newRigIn with the store's record key (nil: a random one),
// for gates that must hash vouchers alike, as a fleet's gates do.
func newRigKeyed(t testing.TB, dir string, pulse time.Duration, holdOff time.Duration, recordKey []byte) *rig {
	t.Helper()
	f := verifiertest.New(t)
	st, err := store.Open(store.Options{Path: filepath.Join(dir, "wicket.db"), LockTimeout: time.Second,
		MaxEvents: 100000, MaxOutbox: 100000, RecordKey: recordKey, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.ApplyBatch(&verifier.Batch{Version: 1, IssuedAt: verifiertest.Epoch.Add(-time.Hour)}, verifiertest.Epoch); err != nil {
		t.Fatal(err)
	}
	v, err := verifier.New(f.TClock, st, &f.Policy)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.InstallKeySet(f.KeySet); err != nil {
		t.Fatal(err)
	}
	relay := gatetest.NewOut("RELAY", nil)
	ts, err := gate.NewTurnstile(gate.TurnstileConfig{RelayPin: "RELAY", Mode: gate.RelayPulse, PulseWidth: pulse, PassageTimeout: time.Second},
		gate.TurnstilePins{Relay: relay}, gate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.Close() })
	l := New(Config{Gate: "G1", Venue: "V1", HoldOff: holdOff}, v, st, ts, Options{})
	f.Verifier = v
	return &rig{f: f, st: st, relay: relay, ts: ts, loop: l}
}

// rebuild replaces the rig's loop with one on the same verifier, store and
// turnstile, with opts (no hold-off).
func (r *rig) rebuild(opts Options) *Loop {
	r.loop = New(Config{Gate: "G1", Venue: "V1"}, r.f.Verifier, r.st, r.ts, opts)
	return r.loop
}

// observer is an Observer whose set fields see each call.
type observer struct {
	decided, finished func(Result)
	recorded          func(store.Event, error)
}

var _ Observer = observer{}

func (o observer) Decided(r Result) {
	if o.decided != nil {
		o.decided(r)
	}
}

func (o observer) Finished(r Result) {
	if o.finished != nil {
		o.finished(r)
	}
}

func (o observer) Recorded(ev store.Event, err error) {
	if o.recorded != nil {
		o.recorded(ev, err)
	}
}

// outbox is an Outbox that counts wake-ups and keeps the alerts.
type outbox struct {
	mu       sync.Mutex
	notifies int
	alerts   []store.Event
}

var _ Outbox = (*outbox)(nil)

func (o *outbox) Notify() {
	o.mu.Lock()
	o.notifies++
	o.mu.Unlock()
}

func (o *outbox) Alert(ev store.Event) {
	o.mu.Lock()
	o.alerts = append(o.alerts, ev)
	o.mu.Unlock()
}

func (r *rig) scan(text string) device.Scan {
	return device.Scan{Payload: []byte(text), Source: "test", At: time.Now()}
}

// TestLoop drives the whole loop: scan → decision → relay pulse on a
// gpiotest pin → events in bbolt, for an allowed, a denied and a repeated
// code.
func TestLoop(t *testing.T) {
	r := newRig(t, 20*time.Millisecond, time.Minute)
	ctx := context.Background()
	good := r.f.Issue(t, r.f.Ed, r.f.Claims(decoder.KindPrinted))

	res := r.loop.Handle(ctx, r.scan(good))
	if !res.Decision.Allow || res.Seq == 0 {
		t.Fatalf("good voucher: %+v", res.Decision)
	}
	w := r.relay.Writes()
	if len(w) < 3 || w[len(w)-2].L != gpio.High || w[len(w)-1].L != gpio.Low {
		t.Fatalf("relay writes = %v; want a pulse High then Low", w)
	}
	if width := w[len(w)-1].At.Sub(w[len(w)-2].At); width < 20*time.Millisecond {
		t.Errorf("pulse width %v; want at least 20ms", width)
	}
	if _, ok := firstHighAfter(r.relay, res.ScanAt); !ok || res.Committed.IsZero() {
		t.Errorf("relay energised %v, event committed at %v: want both before Handle returns", ok, res.Committed)
	}
	if r.ts.Unlocked() {
		t.Error("turnstile left unlocked")
	}

	held := r.loop.Handle(ctx, r.scan(good))
	if !held.Skipped {
		t.Errorf("same code again within hold-off: %+v; want skipped", held)
	}
	bad := r.f.Issue(t, r.f.Ed, func() *decoder.Claims {
		c := r.f.Claims(decoder.KindDynamic)
		c.Voucher.Colour = decoder.ColourRed
		return c
	}())
	writes := len(r.relay.Writes())
	den := r.loop.Handle(ctx, r.scan(bad))
	if den.Decision.Allow || den.Decision.Reason != verifier.ReasonColourRed || !den.Decision.Alert {
		t.Errorf("red voucher: %+v", den.Decision)
	}
	if len(r.relay.Writes()) != writes {
		t.Error("relay moved for a denied code")
	}

	evs, err := r.st.Events(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs {
		types = append(types, e.Type+":"+e.Reason+e.Detail)
		if e.Voucher != "" && len(e.Voucher) != 32 {
			t.Errorf("voucher field %q is not a 16-byte hash", e.Voucher)
		}
	}
	want := []string{"decision:ok", "passage:unknown", "decision:colour_red"}
	if len(types) != len(want) {
		t.Fatalf("events = %v; want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Errorf("event %d = %s; want %s", i, types[i], want[i])
		}
	}
	out, err := r.st.Outbox(0, 100)
	if err != nil || len(out) != len(evs) {
		t.Errorf("outbox has %d rows, %v; want %d", len(out), err, len(evs))
	}
}

// TestCommitBeforeOpen: with Config.CommitBeforeOpen the record of an
// allowed scan is durable before the relay is energised.
func TestCommitBeforeOpen(t *testing.T) {
	r := newRig(t, 10*time.Millisecond, 0)
	l := New(Config{Gate: "G1", Venue: "V1", CommitBeforeOpen: true}, r.f.Verifier, r.st, r.ts, Options{})
	good := r.f.Issue(t, r.f.Ed, r.f.Claims(decoder.KindPrinted))
	res := l.Handle(context.Background(), r.scan(good))
	if !res.Decision.Allow || res.Seq == 0 {
		t.Fatalf("good voucher: %+v", res)
	}
	if hi, ok := firstHighAfter(r.relay, res.ScanAt); !ok || hi.Before(res.Committed) {
		t.Errorf("relay energised at %v, event committed at %v: the event must be durable first", hi, res.Committed)
	}
}

// TestRecordDurableOnReturn: the relay opens before the record of an
// allowed scan is committed, but Handle returns only once it is durable,
// the observer has seen it recorded and the outbox was woken for it, and
// the passage event refers to it. Observer.Decided saw no seq (the
// record gets one after the relay edge), Observer.Finished the seq the
// record got.
func TestRecordDurableOnReturn(t *testing.T) {
	r := newRig(t, 10*time.Millisecond, 0)
	var shown, finished, committed []uint64
	out := &outbox{}
	r.rebuild(Options{Outbox: out, Observer: observer{
		decided:  func(res Result) { shown = append(shown, res.Seq) },
		finished: func(res Result) { finished = append(finished, res.Seq) },
		recorded: func(ev store.Event, err error) {
			if err == nil {
				committed = append(committed, ev.Seq)
			}
		},
	}})
	for i := range 5 {
		c := r.f.Claims(decoder.KindPrinted)
		c.ID = fmt.Appendf(nil, "durable-%d", i)
		res := r.loop.Handle(context.Background(), r.scan(r.f.Issue(t, r.f.Ed, c)))
		if !res.Decision.Allow || res.Seq == 0 || res.Committed.IsZero() || res.Committed.Before(res.Opened) {
			t.Fatalf("scan %d: allow %v seq %d opened %v committed %v; want allowed, committed after the relay was told to open",
				i, res.Decision.Allow, res.Seq, res.Opened, res.Committed)
		}
		evs, err := r.st.Events(res.Seq-1, 2)
		if err != nil || len(evs) != 2 || evs[0].Seq != res.Seq || evs[0].Type != "decision" || evs[1].Type != "passage" || evs[1].Ref != res.Seq {
			t.Fatalf("scan %d: events %+v, %v; want the decision %d and its passage", i, evs, err, res.Seq)
		}
	}
	if want := []uint64{0, 0, 0, 0, 0}; !slices.Equal(shown, want) {
		t.Errorf("Observer.Decided saw seqs %v; want %v", shown, want)
	}
	if want := []uint64{1, 3, 5, 7, 9}; !slices.Equal(finished, want) {
		t.Errorf("Observer.Finished saw seqs %v; want %v", finished, want)
	}
	if !slices.Equal(committed, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) {
		t.Errorf("Observer.Recorded saw seqs %v; want 1..10", committed)
	}
	if out.notifies != 10 || len(out.alerts) != 0 {
		t.Errorf("outbox woken %d times with alerts %v; want once per record, no alerts", out.notifies, out.alerts)
	}
}

// TestAntiPassback: a voucher that passed cannot pass again at the venue
// within the window, even after the hold-off.
func TestAntiPassback(t *testing.T) {
	r := newRig(t, 10*time.Millisecond, 0)
	p := verifier.DefaultPolicy()
	p.AntiPassback = 10 * time.Minute
	r.f.SetPolicy(t, p)
	text := r.f.Issue(t, r.f.Ed, r.f.Claims(decoder.KindPrinted))
	if res := r.loop.Handle(context.Background(), r.scan(text)); !res.Decision.Allow {
		t.Fatalf("first pass denied: %v", res.Decision.Reason)
	}
	res := r.loop.Handle(context.Background(), r.scan(text))
	if res.Decision.Allow || res.Decision.Reason != verifier.ReasonAntiPassback {
		t.Fatalf("second pass: %v %v; want anti_passback", res.Decision.Allow, res.Decision.Reason)
	}
}

// TestStoreFailureDenies: when the store can't commit, the gate denies
// and the relay does not move.
func TestStoreFailureDenies(t *testing.T) {
	r := newRig(t, 10*time.Millisecond, 0)
	text := r.f.Issue(t, r.f.Ed, r.f.Claims(decoder.KindPrinted))
	r.st.Close()
	before := len(r.relay.Writes())
	res := r.loop.Handle(context.Background(), r.scan(text))
	if res.Decision.Allow || res.Decision.Reason != verifier.ReasonInternal {
		t.Fatalf("store closed: %v %v; want internal_error", res.Decision.Allow, res.Decision.Reason)
	}
	if len(r.relay.Writes()) != before {
		t.Error("relay moved without a committed event")
	}
}

// BenchmarkScanToRelay measures frame complete → relay output set, with
// the verification and the building of the record in between (its
// commit ends before the next scan). WICKET_LOOP_ACKS (a duration, e.g.
// 400ms) adds another writer of the store, as the sync's acks are: after
// a delay drawn uniformly from 0 to it, again and again, it acks the
// outbox through its last record (one write transaction each).
func BenchmarkScanToRelay(b *testing.B) {
	r := newRig(b, time.Microsecond, 0)
	p := verifier.DefaultPolicy()
	p.MaxStatusAge = 0
	r.f.SetPolicy(b, p)
	text := r.f.Issue(b, r.f.Ed, r.f.Claims(decoder.KindPrinted))
	if v := os.Getenv("WICKET_LOOP_ACKS"); v != "" {
		most, err := time.ParseDuration(v)
		if err != nil || most < 0 {
			b.Fatalf("WICKET_LOOP_ACKS=%q: want a duration such as 400ms", v)
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				case <-time.After(rand.N(most + 1)):
				}
				if evs, err := r.st.Outbox(0, store.MaxPage); err == nil && len(evs) > 0 {
					r.st.Ack(evs[len(evs)-1].Seq)
				}
			}
		}()
		b.Cleanup(func() { close(stop); <-done })
	}
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		s := r.scan(text)
		res := r.loop.Handle(context.Background(), s)
		if !res.Decision.Allow {
			b.Fatal(res.Decision.Reason)
		}
		hi, ok := firstHighAfter(r.relay, s.At)
		if !ok {
			b.Fatal("relay not energised")
		}
		lat = append(lat, hi.Sub(s.At))
	}
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*90/100].Microseconds()), "p90-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}

// TestAdmit: an attendant's confirmation (an event committed outside
// the loop) is handed to Run, which opens the turnstile and logs the
// passage referring to it.
func TestAdmit(t *testing.T) {
	r := newRig(t, 10*time.Millisecond, 0)
	ev := store.Event{Type: "attendant", At: time.Now(), Gate: "G1", Venue: "V1", Detail: "confirmed", Allow: true}
	seq, err := r.st.Append(&ev, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.loop.Run(ctx, make(chan device.Scan)) }()
	defer func() {
		cancel()
		<-done
	}()
	before := len(r.relay.Writes())
	if err := r.loop.Admit(seq); err != nil {
		t.Fatalf("Admit = %v", err)
	}
	var evs []store.Event
	testkit.Eventually(t, "the passage event", 5*time.Second, func() bool {
		evs, _ = r.st.Events(seq, 10)
		return len(evs) > 0
	})
	if len(evs) != 1 || evs[0].Type != "passage" || evs[0].Ref != seq || evs[0].Detail != "unknown" {
		t.Fatalf("events after Admit = %+v; want one passage referring to %d, outcome unknown (no passage sensor)", evs, seq)
	}
	if w := r.relay.Writes()[before:]; len(w) < 2 || w[0].L != gpio.High || w[len(w)-1].L != gpio.Low {
		t.Errorf("relay writes after Admit = %v; want a pulse", w)
	}
}

// TestAdmitBusy: confirmations beyond admitQueue are refused while Run is
// not taking them, not queued without bound.
func TestAdmitBusy(t *testing.T) {
	r := newRig(t, 10*time.Millisecond, 0)
	for i := range admitQueue {
		if err := r.loop.Admit(uint64(i + 1)); err != nil {
			t.Fatalf("Admit %d = %v", i+1, err)
		}
	}
	if err := r.loop.Admit(99); !errors.Is(err, ErrAdmitBusy) {
		t.Fatalf("Admit beyond the queue = %v; want ErrAdmitBusy", err)
	}
}
