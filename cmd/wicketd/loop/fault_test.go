package loop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"wicket/decoder"
	"wicket/device/gate"
	"wicket/device/gate/gatetest"
	"wicket/internal/testkit"
	"wicket/sync/store"
	"wicket/sync/store/storetest"
	"wicket/verifier"
)

// TestRelayFaultDuringAllowedCode: the relay's GPIO fails while the loop
// handles an allowed code. The decision is already durable; the turnstile
// fails secure (the relay never energised, or it is reported as not
// unlocked); the fault is logged and recorded as a passage "error" event
// (which goes to the outbox with the rest); and once the pin works again
// the next allowed code opens and relocks the gate normally.
func TestRelayFaultDuringAllowedCode(t *testing.T) {
	r := newRig(t, 10*time.Millisecond, 0)
	pin := gatetest.NewOut("RELAY", nil)
	logs := &testkit.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	ts, err := gate.NewTurnstile(gate.TurnstileConfig{RelayPin: "RELAY", Mode: gate.RelayPulse, PulseWidth: 10 * time.Millisecond, PassageTimeout: time.Second},
		gate.TurnstilePins{Relay: pin}, gate.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ts.Close() })
	l := New(Config{Gate: "G1", Venue: "V1"}, r.f.Verifier, r.st, ts, Options{Logger: log})
	n := 0
	code := func() string {
		n++
		c := r.f.Claims(decoder.KindPrinted)
		c.ID = fmt.Appendf(nil, "relay-fault-%d", n)
		return r.f.Issue(t, r.f.Ed, c)
	}
	passage := func(seq uint64) string {
		t.Helper()
		evs, err := r.st.Events(seq, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Type == "passage" && e.Ref == seq {
				return e.Detail
			}
		}
		t.Fatalf("no passage event for seq %d", seq)
		return ""
	}
	ctx := context.Background()

	// Dead before the code: the relay never energises.
	pin.SetDead(true)
	res := l.Handle(ctx, r.scan(code()))
	if !res.Decision.Allow || res.Seq == 0 || res.Passage != gate.PassageError {
		t.Fatalf("dead relay: allow %v seq %d passage %v; want the committed allow with a passage error", res.Decision.Allow, res.Seq, res.Passage)
	}
	if pin.Level() != gpio.Low || ts.Unlocked() {
		t.Errorf("dead relay: level %v, Unlocked %v; want locked", pin.Level(), ts.Unlocked())
	}
	if d := passage(res.Seq); d != "error" {
		t.Errorf("dead relay: passage event %q; want error", d)
	}

	// Dies between unlock and lock: the lock write and the safe-state
	// retry fail.
	pin.SetDead(false)
	pin.DieAfter(1)
	res = l.Handle(ctx, r.scan(code()))
	if !res.Decision.Allow || res.Passage != gate.PassageError {
		t.Fatalf("relay died in the pulse: allow %v passage %v; want allowed with a passage error", res.Decision.Allow, res.Passage)
	}
	if ts.Unlocked() {
		t.Error("relay died in the pulse: the turnstile claims to be unlocked")
	}
	if d := passage(res.Seq); d != "error" {
		t.Errorf("relay died in the pulse: passage event %q; want error", d)
	}
	if pin.Level() == gpio.High {
		t.Log("known: the relay is still energised after the failed lock; see device/gate TestTurnstileRelayDeadThenBack")
	}

	// Back: the next allowed code drives the relay and relocks it.
	pin.SetDead(false)
	res = l.Handle(ctx, r.scan(code()))
	if !res.Decision.Allow || res.Passage != gate.PassageUnknown {
		t.Fatalf("relay back: allow %v passage %v; want allowed, passage unknown", res.Decision.Allow, res.Passage)
	}
	if pin.Level() != gpio.Low || ts.Unlocked() {
		t.Errorf("relay back: level %v, Unlocked %v; want locked after the pulse", pin.Level(), ts.Unlocked())
	}
	if d := passage(res.Seq); d != "unknown" {
		t.Errorf("relay back: passage event %q; want unknown", d)
	}

	out := logs.String()
	for _, want := range []string{"relay stuck: cannot reach the safe state", "turnstile did not open normally"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	ob, err := r.st.Outbox(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	errs, alerts := 0, 0
	for _, o := range ob {
		if o.Type == "passage" && o.Detail == "error" {
			errs++
		}
		if o.Type == "alert" && o.Reason == "relay_fault" && o.Ref != 0 {
			alerts++
		}
	}
	if errs != 2 || alerts != 2 {
		t.Errorf("outbox holds %d passage error records and %d relay alerts; want 2 of each", errs, alerts)
	}
}

// TestRedCodeOnFullDisk: the disk under the store is full. A red code is
// denied internal_error (nothing unrecorded opens the gate), but the
// alert is not lost: it is logged as an ALERT at error level with the
// keyed hash, the observer is handed the event and an error it recognises
// as a full disk, and the outbox the alert from memory. Once space is
// freed the next scan commits.
func TestRedCodeOnFullDisk(t *testing.T) {
	disk := storetest.SmallDisk(t, 4<<20)
	r := newRigIn(t, disk.Dir, 10*time.Millisecond, 0)
	logs := &testkit.Buffer{}
	var failed []store.Event
	var failErr error
	out := &outbox{}
	l := New(Config{Gate: "G1", Venue: "V1"}, r.f.Verifier, r.st, r.ts, Options{Outbox: out,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), Observer: observer{recorded: func(ev store.Event, err error) {
			if err != nil {
				failed, failErr = append(failed, ev), err
			}
		}}})
	red := func(id string) string {
		c := r.f.Claims(decoder.KindDynamic)
		c.ID = []byte(id)
		c.Voucher.Colour = decoder.ColourRed
		return r.f.Issue(t, r.f.Ed, c)
	}
	disk.Fill(t)
	var res Result
	// The first commits may still fit in the file's free pages.
	for i := 0; i < 200 && len(failed) == 0; i++ {
		res = l.Handle(context.Background(), r.scan(red(fmt.Sprintf("red-code-%04d", i))))
	}
	if len(failed) == 0 {
		t.Fatal("no commit failed on a full disk")
	}
	if res.Decision.Allow || res.Decision.Reason != verifier.ReasonInternal || res.Seq != 0 {
		t.Errorf("red code on a full disk: %+v; want denied internal_error, not committed", res.Decision)
	}
	if ev := failed[0]; !ev.Alert || ev.Reason != string(verifier.ReasonColourRed) || ev.Voucher == "" {
		t.Errorf("uncommitted event %+v; want the red-code alert with its keyed hash", ev)
	}
	if !errors.Is(failErr, store.ErrDiskFull) {
		t.Errorf("Observer.Recorded err = %v; want store.ErrDiskFull", failErr)
	}
	if len(out.alerts) == 0 || out.alerts[len(out.alerts)-1].Voucher != failed[len(failed)-1].Voucher {
		t.Errorf("outbox alerts %+v; want the uncommitted red code handed over from memory", out.alerts)
	}
	var alert bool
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"msg":"ALERT"`) && strings.Contains(line, `"level":"ERROR"`) && strings.Contains(line, `"committed":false`) {
			alert = true
		}
	}
	if !alert {
		t.Errorf("no uncommitted ALERT at error level in the log:\n%s", logs.String())
	}
	disk.Free(t)
	res = l.Handle(context.Background(), r.scan(red("red-code-after")))
	if res.Seq == 0 || res.Decision.Reason != verifier.ReasonColourRed {
		t.Errorf("after freeing space: %+v seq %d; want the red code committed", res.Decision, res.Seq)
	}
	if h := r.st.CommitHealth(); h.Err != nil {
		t.Errorf("CommitHealth() after recovery = %v", h.Err)
	}
}

// TestCommitFailsAfterOpen: the disk fills while allowed codes are
// scanned. The scan whose commit fails has already opened the relay (the
// relay does not wait for the disk): it is reported to the observer,
// tried once more after the passage, and has no seq. From then on every
// scan commits before opening, so the next one is denied internal_error
// and the relay stays still; once space is freed a scan is allowed again,
// its record durable before the relay moves.
func TestCommitFailsAfterOpen(t *testing.T) {
	disk := storetest.SmallDisk(t, 4<<20)
	r := newRigIn(t, disk.Dir, 10*time.Millisecond, 0)
	var failed []store.Event
	r.rebuild(Options{Observer: observer{recorded: func(ev store.Event, err error) {
		if err == nil {
			return
		}
		if !errors.Is(err, store.ErrDiskFull) {
			t.Errorf("Observer.Recorded err = %v; want store.ErrDiskFull", err)
		}
		failed = append(failed, ev)
	}}})
	code := func(id string) string {
		c := r.f.Claims(decoder.KindPrinted)
		c.ID = []byte(id)
		return r.f.Issue(t, r.f.Ed, c)
	}
	disk.Fill(t)
	var res Result
	// The first commits may still fit in the file's free pages.
	for i := 0; i < 200 && len(failed) == 0; i++ {
		res = r.loop.Handle(context.Background(), r.scan(code(fmt.Sprintf("fill-%04d", i))))
	}
	if len(failed) == 0 {
		t.Fatal("no commit failed on a full disk")
	}
	if !res.Decision.Allow || res.Seq != 0 || res.Opened.IsZero() || !res.Committed.IsZero() {
		t.Fatalf("scan whose commit failed: allow %v seq %d opened %v committed %v; want opened, not committed",
			res.Decision.Allow, res.Seq, res.Opened, res.Committed)
	}
	if hi, ok := firstHighAfter(r.relay, res.ScanAt); !ok {
		t.Errorf("relay not energised for the scan whose commit failed (%v)", hi)
	}
	if len(failed) < 2 || failed[0].Type != "decision" || failed[1].Type != "decision" || failed[1].Voucher != failed[0].Voucher {
		t.Errorf("Observer.Recorded saw failures %+v; want the decision, then its second try", failed)
	}

	before := len(r.relay.Writes())
	den := r.loop.Handle(context.Background(), r.scan(code("next-on-full-disk")))
	if den.Decision.Allow || den.Decision.Reason != verifier.ReasonInternal || den.Seq != 0 {
		t.Errorf("next scan on the full disk: %+v seq %d; want denied internal_error", den.Decision, den.Seq)
	}
	if len(r.relay.Writes()) != before {
		t.Error("relay moved for a scan that could not be recorded")
	}

	disk.Free(t)
	ok := r.loop.Handle(context.Background(), r.scan(code("after-free")))
	if !ok.Decision.Allow || ok.Seq == 0 {
		t.Fatalf("after freeing space: %+v seq %d; want allowed and committed", ok.Decision, ok.Seq)
	}
	if hi, _ := firstHighAfter(r.relay, ok.ScanAt); hi.Before(ok.Committed) {
		t.Errorf("after a failure the relay was energised at %v, before the commit at %v", hi, ok.Committed)
	}
	if h := r.st.CommitHealth(); h.Err != nil {
		t.Errorf("CommitHealth() after recovery = %v", h.Err)
	}
}
