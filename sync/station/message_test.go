package station

import (
	"strings"
	"testing"
	"time"

	"wicket/sync/station/stationtest"
	"wicket/sync/wire"
)

const testFleet = "metro"

var (
	gateA = stationtest.NewGate("S1-G1", "S1", 60)
	gateB = stationtest.NewGate("S1-G2", "S1", 61)
	gateC = stationtest.NewGate("S2-G1", "S2", 62)
	// stranger is not enrolled.
	stranger = stationtest.NewGate("S1-G9", "S1", 63)
)

const voucherHash = "00112233445566778899aabbccddeeff"

func sign(t *testing.T, g stationtest.Gate, body Grant) []byte {
	t.Helper()
	b, err := wire.Sign(Kind, testFleet, g.ID, g.Key, body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheck: a receiver at station S1 takes a grant of another S1 gate
// and refuses every other message with its reason.
func TestCheck(t *testing.T) {
	now := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	roster := stationtest.Roster(t, gateA, gateB, gateC)
	grant := func(g stationtest.Gate, at time.Time, seq uint64) Grant {
		return Grant{Station: g.Station, Gate: g.ID, Voucher: voucherHash, At: at.UnixNano(), Seq: seq}
	}
	c := checker{fleet: testFleet, station: "S1", roster: roster, now: now, window: 10 * time.Minute, skew: DefaultMaxSkew,
		lastSeq: func(g string) uint64 {
			if g == gateA.ID {
				return 7
			}
			return 0
		}}
	good := grant(gateA, now.Add(-time.Second), 8)
	forged := sign(t, gateB, good) // B's key, A's name
	forged = []byte(strings.Replace(string(forged), `"signer":"S1-G2"`, `"signer":"S1-G1"`, 1))
	wrongStation := good
	wrongStation.Station = "S2"
	badHash := good
	badHash.Voucher = "V12345"
	notSigner := grant(gateB, now, 1)
	notSigner.Gate = gateA.ID
	for _, tc := range []struct {
		name    string
		payload []byte
		want    string // refusal reason, "" accepted
	}{
		{"grant of another gate of the station", sign(t, gateA, good), ""},
		{"signed with another gate's key", forged, RefusedForged},
		{"signer not enrolled", sign(t, stranger, grant(stranger, now, 1)), RefusedUnknownGate},
		{"gate of another station", sign(t, gateC, grant(gateC, now, 1)), RefusedOtherStation},
		{"enrolled gate naming another station", sign(t, gateA, wrongStation), RefusedOtherStation},
		{"replayed seq", sign(t, gateA, grant(gateA, now, 7)), RefusedReplayed},
		{"older seq", sign(t, gateA, grant(gateA, now, 3)), RefusedReplayed},
		{"older than the window", sign(t, gateA, grant(gateA, now.Add(-11*time.Minute), 9)), RefusedTooOld},
		{"dated ahead beyond the skew", sign(t, gateA, grant(gateA, now.Add(time.Minute), 9)), RefusedFuture},
		{"dated ahead within the skew", sign(t, gateA, grant(gateA, now.Add(10*time.Second), 9)), ""},
		{"not a voucher hash", sign(t, gateA, badHash), RefusedMalformed},
		{"gate field not the signer", sign(t, gateB, notSigner), RefusedMalformed},
		{"unsigned", []byte(`{"station":"S1","gate":"S1-G1"}`), RefusedMalformed},
		{"not JSON", []byte("\x00\xff"), RefusedMalformed},
		{"oversized", make([]byte, MaxMessage+1), RefusedMalformed},
		{"records kind signature", func() []byte {
			b, _ := wire.Sign(wire.KindRecords, testFleet, gateA.ID, gateA.Key, good)
			return b
		}(), RefusedForged},
	} {
		g, err := c.check(tc.payload)
		if got := ReasonOf(err); got != tc.want || (tc.want != "") != (err != nil) {
			t.Errorf("check(%s) = %q (%v); want %q", tc.name, got, err, tc.want)
		}
		if err == nil && (g.Gate != gateA.ID || g.Voucher != voucherHash) {
			t.Errorf("check(%s) = %+v; want A's grant", tc.name, g)
		}
	}
	c.roster = nil
	if _, err := c.check(sign(t, gateA, good)); ReasonOf(err) != RefusedUnknownGate {
		t.Errorf("check with no roster = %v; want %s", err, RefusedUnknownGate)
	}
}

// FuzzCheck: no message makes the receiver panic, and whatever it
// accepts is a well-formed grant of its station.
func FuzzCheck(f *testing.F) {
	now := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	good, _ := wire.Sign(Kind, testFleet, gateA.ID, gateA.Key, Grant{Station: "S1", Gate: gateA.ID, Voucher: voucherHash, At: now.UnixNano(), Seq: 1})
	f.Add(good)
	f.Add([]byte(`{"v":2,"signer":"S1-G1","body":{},"sig":""}`))
	f.Add([]byte("{}"))
	roster := stationtest.Roster(f, gateA, gateB, gateC)
	f.Fuzz(func(t *testing.T, payload []byte) {
		c := checker{fleet: testFleet, station: "S1", roster: roster, now: now, window: time.Hour, skew: DefaultMaxSkew,
			lastSeq: func(string) uint64 { return 0 }}
		g, err := c.check(payload)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("refusal without a reason: %v", err)
			}
			return
		}
		if g.Station != "S1" || len(g.Voucher) != hashLen || g.Seq == 0 {
			t.Fatalf("accepted %+v", g)
		}
	})
}
