package twin

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// startWalker runs the passage sensor model in the guest for the rest of
// the boot: someone walks through 200 ms after each unlock (gpiowatch
// -passage drives sim_gpio27/pull up for 100 ms, then down).
func startWalker(b *board, chip string) {
	b.must(cmdTimeout, fmt.Sprintf("setsid /mnt/gpiowatch -chip %s -for 24h -passage %d=%c:%d </dev/null >/dev/null 2>/tmp/walker.err &",
		chip, relayLine, relayOn, passageLine))
}

// waitLine waits until the simulator's line reads v.
func waitLine(t *testing.T, b *board, chip string, line int, v byte, what string) time.Duration {
	t.Helper()
	start := time.Now()
	if out, rc := b.sh(2*time.Minute, fmt.Sprintf("timeout 100 sh -c 'until [ $(cat %s/sim_gpio%d/value) = %c ]; do sleep 0.05; done'", chip, line, v)); rc != 0 {
		t.Fatalf("%s: line %d never read %c in 100 s (%s)", what, line, v, out)
	}
	return time.Since(start)
}

// emergency drives the fire panel's input (GPIO22, active high): while it
// is active the turnstile is free and an acknowledge is refused; cleared,
// the gate stays free until wicketd ack-emergency, then locks.
func emergency(t *testing.T, b *board, chip string) {
	pull := fmt.Sprintf("%s/sim_gpio%d/pull", chip, emergencyLine)
	relay := func() string {
		return strings.TrimSpace(b.must(cmdTimeout, fmt.Sprintf("cat %s/sim_gpio%d/value", chip, relayLine)))
	}
	if v := relay(); v != string(relayOff) {
		t.Fatalf("emergency: relay %s before the alarm; want %c (locked)", v, relayOff)
	}
	b.must(cmdTimeout, "echo pull-up >"+pull)
	d := waitLine(t, b, chip, relayLine, relayOn, "emergency input active: the relay")
	t.Logf("emergency input active: relay on (turnstile free) after %v (host clock, through the control channel)", d.Round(time.Millisecond))
	if out, rc := b.sh(cmdTimeout, "wicketd ack-emergency -config "+config); rc != 1 || !strings.Contains(out, "still active") {
		t.Errorf("ack-emergency while the input is active: exit %d, %q; want exit 1, still active", rc, out)
	}
	if v := relay(); v != string(relayOn) {
		t.Errorf("after a refused acknowledge: relay %s; want %c (free)", v, relayOn)
	}
	b.must(cmdTimeout, "echo pull-down >"+pull)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if !b.waitJournal(ctx, `"state":"latched"`) {
		t.Fatalf("emergency input cleared: no latched state in the journal:\n%s", strings.Join(b.journalLines(), "\n"))
	}
	// Latched: free until someone acknowledges.
	time.Sleep(2 * time.Second)
	if v := relay(); v != string(relayOn) {
		t.Errorf("emergency cleared, not acknowledged: relay %s; want %c (free until acknowledged)", v, relayOn)
	}
	if out := b.must(cmdTimeout, "wicketd ack-emergency -config "+config); !strings.Contains(out, "locked again") {
		t.Errorf("ack-emergency after the alarm cleared: %q; want locked again", out)
	}
	waitLine(t, b, chip, relayLine, relayOff, "acknowledged: the relay")
}

// record is what the tests read of an access record (wire.Record).
type record struct {
	Seq    uint64    `json:"seq"`
	Type   string    `json:"type"`
	At     time.Time `json:"at"`
	Allow  bool      `json:"allow"`
	Reason string    `json:"reason"`
	Ref    uint64    `json:"ref"`
	Detail string    `json:"detail"`
}

// storeRecords stops wicketd, reads its store with the events tool and
// starts it again.
func storeRecords(t *testing.T, b *board) []record {
	t.Helper()
	b.must(cmdTimeout, "systemctl stop wicketd")
	out := b.must(cmdTimeout, "/mnt/events")
	b.must(2*time.Minute, "systemctl start wicketd")
	var rs []record
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("events: bad line %q: %v", l, err)
		}
		rs = append(rs, r)
	}
	return rs
}

// checkRecords: every grant has its passage record "passed" (the sensor
// fired, so the loop was not held for open_timeout), and the emergency
// left its states and the acknowledge in the access log.
func checkRecords(t *testing.T, rs []record) {
	passages := map[uint64]record{}
	var states []string
	ack := false
	for _, r := range rs {
		switch {
		case r.Type == "passage":
			passages[r.Ref] = r
		case r.Type == "emergency":
			states = append(states, r.Detail)
		case r.Type == "system" && r.Reason == "emergency_ack":
			ack = true
		}
	}
	grants := 0
	var took []time.Duration
	for _, r := range rs {
		if r.Type != "decision" || !r.Allow {
			continue
		}
		grants++
		p, ok := passages[r.Seq]
		if !ok || p.Detail != "passed" {
			t.Errorf("grant seq %d: passage record %+v (found %v); want detail passed", r.Seq, p, ok)
			continue
		}
		took = append(took, p.At.Sub(r.At))
	}
	if grants < 3 {
		t.Errorf("the store holds %d grants; want at least the 3 valid codes", grants)
	}
	t.Logf("store: %d records, %d grants, each with a passage record \"passed\", decision to passage record %v", len(rs), grants, took)
	if want := []string{"active", "latched", "normal"}; !slices.Equal(states, want) || !ack {
		t.Errorf("emergency records %v, acknowledge recorded %v; want %v and the acknowledge", states, ack, want)
	}
}
