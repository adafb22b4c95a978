package wire

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// seedMessages are genuine messages of every kind, for the fuzzers to
// start from.
func seedMessages(f *testing.F) {
	key := testKey(1)
	recs := &Records{Gate: "G1", Records: []Record{{Gate: "G1", Seq: 1}, {Gate: "G1", Seq: 2}}}
	for _, m := range []struct {
		kind string
		body any
	}{
		{KindAck, Ack{Gate: "G1", From: 3, Through: 9}},
		{KindRecords, recs},
		{KindStatus, Status{Gate: "G1", Online: true, KeySetVersion: 4, At: time.Unix(1700000000, 0).UTC()}},
	} {
		p, err := Sign(m.kind, "f1", "G1", key, m.body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
		raw, _ := json.Marshal(m.body)
		f.Add(raw)
	}
	f.Add([]byte(`{"v":2,"signer":"G1","body":{},"sig":"AAAA","sig":"BBBB"}`))
	f.Add([]byte(`{"v":2,"signer":"G\u0031","body":{"gate":"G1"},"sig":""}`))
	f.Add([]byte(`{"records":[{"seq":2},{"seq":1}],"gate":"G1"}`))
}

// FuzzOpenQuickPath: what Open accepts is a checked envelope, and its
// quick path for the form Sign writes reads exactly what a full JSON
// parse of the same bytes reads whenever the body it found is JSON.
func FuzzOpenQuickPath(f *testing.F) {
	seedMessages(f)
	f.Fuzz(func(t *testing.T, p []byte) {
		s, err := Open(p)
		if err != nil {
			return
		}
		if s.V != SignedVersion || len(s.Body) == 0 || len(s.Sig) != ed25519.SignatureSize || ValidName(s.Signer) != nil {
			t.Fatalf("Open accepted an envelope it should refuse: %+v", s)
		}
		if q, ok := openAsSigned(p); ok && json.Valid(q.Body) {
			var full Signed
			if json.Unmarshal(p, &full) == nil {
				if full.Signer != q.Signer || !bytes.Equal(full.Sig, q.Sig) || !bytes.Equal(bytes.TrimSpace(full.Body), q.Body) {
					t.Fatalf("quick path read %q/%x/%q, JSON read %q/%x/%q", q.Signer, q.Sig, q.Body, full.Signer, full.Sig, full.Body)
				}
			}
		}
	})
}

// FuzzDecodeRecords: DecodeRecords gives what encoding/json alone gives
// (the same records, or the same refusal), scanRecords reads nothing
// encoding/json refuses or reads otherwise, and whatever DecodeRecords
// accepts keeps its promises.
func FuzzDecodeRecords(f *testing.F) {
	seedMessages(f)
	seedRecords(f)
	f.Fuzz(func(t *testing.T, p []byte) {
		if got, ok := scanRecords(p); ok {
			var want Records
			if err := json.Unmarshal(p, &want); err != nil {
				t.Fatalf("scanRecords read %q, which encoding/json refuses: %v", p, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("scanRecords read %q as %+v, encoding/json as %+v", p, got, want)
			}
		}
		r, err := DecodeRecords(p)
		want, wantErr := decodeRecords(p, jsonOnly)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(r, want) {
			t.Fatalf("DecodeRecords(%q) = %+v, %v; encoding/json alone gives %+v, %v", p, r, err, want, wantErr)
		}
		if err != nil {
			return
		}
		if ValidName(r.Gate) != nil || len(r.Records) == 0 || len(r.Records) > MaxRecordsPerBatch {
			t.Fatalf("accepted batch of gate %q with %d records", r.Gate, len(r.Records))
		}
		var last uint64
		for _, e := range r.Records {
			if e.Seq <= last || e.Gate != r.Gate {
				t.Fatalf("accepted record %d of gate %q after seq %d in a batch of %q", e.Seq, e.Gate, last, r.Gate)
			}
			last = e.Seq
		}
	})
}

// FuzzDecodeAck and the status reader: no panic, and an accepted ack
// names a range.
func FuzzDecodeAck(f *testing.F) {
	seedMessages(f)
	f.Fuzz(func(t *testing.T, p []byte) {
		if a, err := DecodeAck(p); err == nil && (a.From == 0 || a.Through < a.From || len(p) > MaxAckMessage) {
			t.Fatalf("accepted ack %+v", a)
		}
		if _, sm, err := OpenStatus(p); err == nil && sm != nil && sm.V != SignedVersion {
			t.Fatalf("status envelope version %d", sm.V)
		}
	})
}
