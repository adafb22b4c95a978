package wire

import (
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"
)

// recordsJSON is a records message body of gate with the given seqs.
func recordsJSON(gate string, seqs ...uint64) string {
	var recs []string
	for _, s := range seqs {
		recs = append(recs, fmt.Sprintf(`{"gate":%q,"seq":%d}`, gate, s))
	}
	return fmt.Sprintf(`{"gate":%q,"records":[%s]}`, gate, strings.Join(recs, ","))
}

// TestDecodeRecordsMalformed: every malformed, truncated or out-of-bounds
// records body is an error, never a batch; a well-formed one decodes.
func TestDecodeRecordsMalformed(t *testing.T) {
	good := recordsJSON("G1", 1, 2, 5)
	many := make([]uint64, MaxRecordsPerBatch+1)
	for i := range many {
		many[i] = uint64(i + 1)
	}
	for _, tc := range []struct {
		name, in, wantErr string
	}{
		{"empty", ``, "records message"},
		{"null", `null`, "gate"},
		{"empty object", `{}`, "gate"},
		{"not JSON", `records`, "records message"},
		{"array", `[1,2]`, "records message"},
		{"gate a number", `{"gate":1,"records":[]}`, "records message"},
		{"records an object", `{"gate":"G1","records":{}}`, "records message"},
		{"seq a string", `{"gate":"G1","records":[{"gate":"G1","seq":"1"}]}`, "records message"},
		{"seq negative", `{"gate":"G1","records":[{"gate":"G1","seq":-1}]}`, "records message"},
		{"seq over uint64", `{"gate":"G1","records":[{"gate":"G1","seq":18446744073709551616}]}`, "records message"},
		{"gate with a slash", recordsJSON("G/1", 1), "gate"},
		{"gate a wildcard", recordsJSON("+", 1), "gate"},
		{"gate too long", recordsJSON(strings.Repeat("g", 65), 1), "gate"},
		{"no records", recordsJSON("G1"), "0 records"},
		{"too many records", recordsJSON("G1", many...), fmt.Sprintf("%d records", MaxRecordsPerBatch+1)},
		{"seq zero", recordsJSON("G1", 0), "strictly increasing"},
		{"seq repeated", recordsJSON("G1", 1, 1), "strictly increasing"},
		{"seq going back", recordsJSON("G1", 2, 1), "strictly increasing"},
		{"record of another gate", `{"gate":"G1","records":[{"gate":"G2","seq":1}]}`, `record of gate "G2"`},
		{"record without a gate", `{"gate":"G1","records":[{"seq":1}]}`, `record of gate ""`},
		{"trailing junk", good + `x`, "records message"},
		{"over MaxMessage", `{"gate":"G1","records":[],"pad":"` + strings.Repeat("x", MaxMessage) + `"}`, "over"},
	} {
		r, err := DecodeRecords([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("DecodeRecords(%s) = %+v, %v; want an error containing %q", tc.name, r, err, tc.wantErr)
		}
	}
	for i := range len(good) {
		if r, err := DecodeRecords([]byte(good[:i])); err == nil {
			t.Errorf("DecodeRecords(%q), truncated at %d, = %+v; want an error", good[:i], i, r)
		}
	}
	r, err := DecodeRecords([]byte(good))
	if err != nil || r.Gate != "G1" || len(r.Records) != 3 || r.Records[2].Seq != 5 {
		t.Fatalf("DecodeRecords(%s) = %+v, %v; want 3 records of G1", good, r, err)
	}
}

// TestDecodeAckMalformed: an ack that does not name a range is refused,
// as is anything that is not an ack or is too long to be one.
func TestDecodeAckMalformed(t *testing.T) {
	good := `{"gate":"G1","from":3,"through":9}`
	for _, tc := range []struct {
		name, in, wantErr string
	}{
		{"empty", ``, "ack message"},
		{"not JSON", `ack`, "ack message"},
		{"null", `null`, "range 0..0"},
		{"empty object", `{}`, "range 0..0"},
		{"from zero", `{"gate":"G1","from":0,"through":9}`, "range 0..9"},
		{"through below from", `{"gate":"G1","from":9,"through":3}`, "range 9..3"},
		{"negative", `{"gate":"G1","from":-1,"through":9}`, "ack message"},
		{"from a string", `{"gate":"G1","from":"3","through":9}`, "ack message"},
		{"too long", `{"gate":"G1","from":3,"through":9,"pad":"` + strings.Repeat("x", MaxAckMessage) + `"}`, "too long"},
		{"trailing junk", good + `}`, "ack message"},
	} {
		a, err := DecodeAck([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("DecodeAck(%s) = %+v, %v; want an error containing %q", tc.name, a, err, tc.wantErr)
		}
	}
	for i := range len(good) {
		if a, err := DecodeAck([]byte(good[:i])); err == nil {
			t.Errorf("DecodeAck(%q), truncated at %d, = %+v; want an error", good[:i], i, a)
		}
	}
	if a, err := DecodeAck([]byte(good)); err != nil || a != (Ack{Gate: "G1", From: 3, Through: 9}) {
		t.Fatalf("DecodeAck(%s) = %+v, %v", good, a, err)
	}
}

// TestTruncatedSignedMessages: no proper prefix of a signed message of
// any kind opens and verifies, and none makes a decoder panic or accept
// a body.
func TestTruncatedSignedMessages(t *testing.T) {
	key := testKey(2)
	pub := key.Public().(ed25519.PublicKey)
	for _, m := range []struct {
		kind string
		body any
	}{
		{KindRecords, Records{Gate: "G1", Records: []Record{{Gate: "G1", Seq: 1}, {Gate: "G1", Seq: 2}}}},
		{KindAck, Ack{Gate: "G1", From: 1, Through: 2}},
		{KindStatus, Status{Gate: "G1", Online: true, At: time.Unix(1_700_000_000, 0).UTC()}},
	} {
		msg, err := Sign(m.kind, "f1", "G1", key, m.body)
		if err != nil {
			t.Fatal(err)
		}
		if s, err := Open(msg); err != nil || s.Verify(m.kind, "f1", pub) != nil {
			t.Fatalf("%s: the whole message does not open and verify: %v", m.kind, err)
		}
		for i := range len(msg) {
			p := msg[:i]
			if s, err := Open(p); err == nil && s.Verify(m.kind, "f1", pub) == nil {
				t.Errorf("%s truncated at %d of %d bytes opened and verified", m.kind, i, len(msg))
			}
			if _, err := DecodeRecords(p); err == nil {
				t.Errorf("%s truncated at %d: DecodeRecords accepted %q", m.kind, i, p)
			}
			if _, err := DecodeAck(p); err == nil {
				t.Errorf("%s truncated at %d: DecodeAck accepted %q", m.kind, i, p)
			}
			if _, sm, err := OpenStatus(p); err == nil {
				t.Errorf("%s truncated at %d: OpenStatus accepted %q (envelope %v)", m.kind, i, p, sm != nil)
			}
		}
	}
}

// TestOpenStatusMalformed: a status is read signed or plain; anything
// else is an error, and an oversized message is refused unparsed.
func TestOpenStatusMalformed(t *testing.T) {
	plain := `{"gate":"G1","online":true,"at":"2023-11-14T22:13:20Z"}`
	st, sm, err := OpenStatus([]byte(plain))
	if err != nil || sm != nil || st.Gate != "G1" || !st.Online {
		t.Fatalf("OpenStatus(plain) = %+v, %v, %v; want the status without an envelope", st, sm, err)
	}
	for _, tc := range []struct{ name, in string }{
		{"empty", ``},
		{"not JSON", `status`},
		{"array", `[]`},
		{"time not a time", `{"gate":"G1","at":"yesterday"}`},
		{"online a string", `{"gate":"G1","online":"yes"}`},
		{"signed with a body that is no status", `{"v":2,"signer":"G1","body":[1],"sig":"` + strings.Repeat("A", 86) + `=="}`},
		{"over MaxMessage", `{"gate":"` + strings.Repeat("g", MaxMessage) + `"}`},
	} {
		if st, sm, err := OpenStatus([]byte(tc.in)); err == nil {
			t.Errorf("OpenStatus(%s) = %+v, %v, nil; want an error", tc.name, st, sm)
		}
	}
}

// TestTopicParsersMalformed: the topic readers refuse topics of other
// fleets and kinds, and numbers that do not parse or overflow.
func TestTopicParsersMalformed(t *testing.T) {
	tp := Topics{Fleet: "f1"}
	for _, topic := range []string{
		"", "wicket/f1/trust/status/part/", "wicket/f1/trust/status/part/x", "wicket/f1/trust/status/part/-1",
		"wicket/f1/trust/status/part/4294967296", "wicket/f2/trust/status/part/1", "wicket/f1/trust/status/part/1/2",
	} {
		if n, err := tp.PartNumber(topic); err == nil {
			t.Errorf("PartNumber(%q) = %d; want an error", topic, n)
		}
	}
	if n, err := tp.PartNumber(tp.SnapshotPart(4294967295)); err != nil || n != 4294967295 {
		t.Errorf("PartNumber(last part) = %d, %v", n, err)
	}
	for _, topic := range []string{
		"", "wicket/f1/trust/status/delta/", "wicket/f1/trust/status/delta/v1", "wicket/f1/trust/status/delta/18446744073709551616",
		"wicket/f2/trust/status/delta/1", "wicket/f1/trust/status/delta/+",
	} {
		if v, err := tp.DeltaVersion(topic); err == nil {
			t.Errorf("DeltaVersion(%q) = %d; want an error", topic, v)
		}
	}
	if v, err := tp.DeltaVersion(tp.Delta(7)); err != nil || v != 7 {
		t.Errorf("DeltaVersion(delta 7) = %d, %v", v, err)
	}
	for _, topic := range []string{
		"", "wicket/f1/gate/", "wicket/f1/gate/G1", "wicket/f1/gate//ack", "wicket/f1/gate/+/ack",
		"wicket/f1/gate/" + strings.Repeat("g", 65) + "/ack", "wicket/f2/gate/G1/ack", "wicket/f1/trust/keyset",
	} {
		if g, err := tp.GateOf(topic); err == nil {
			t.Errorf("GateOf(%q) = %q; want an error", topic, g)
		}
	}
	if g, err := tp.GateOf(tp.Ack("G1")); err != nil || g != "G1" {
		t.Errorf("GateOf(ack of G1) = %q, %v", g, err)
	}
}
