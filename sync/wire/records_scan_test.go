package wire

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// jsonOnly makes decodeRecords read every body with encoding/json, as
// DecodeRecords did before scanRecords.
func jsonOnly([]byte) (Records, bool) { return Records{}, false }

// gateBatch is a batch as a busy gate sends it: every field of a record
// used somewhere, text with characters json.Marshal escapes and with
// characters beyond ASCII, times with and without fractions and zones.
func gateBatch(gate string, n int) *Records {
	r := &Records{Gate: gate}
	at := time.Date(2026, 12, 6, 7, 59, 58, 123456789, time.UTC)
	venues := []string{"central", "Zürich HB – Gleis 7", "Arts & Métiers <north>", `"quoted"\back`, "line\nbreak\u2028"}
	for i := range n {
		seq := uint64(1000 + 3*i)
		e := Record{
			Seq: seq, Type: []string{TypeDecision, TypePassage, TypeAlert}[i%3], At: at.Add(time.Duration(i) * 1234567 * time.Microsecond),
			Gate: gate, Venue: venues[i%len(venues)], Allow: i%2 == 0, Reason: "ok", Colour: "green", Kind: "single",
			Class: "adult", Issuer: "metro", Voucher: fmt.Sprintf("%032x", seq*7919), Subject: fmt.Sprintf("%032x", seq*104729),
			Alert: i%7 == 0, Attendant: i%5 == 0, Ref: seq / 2, Detail: "passed", Temperature: "normal", Celsius: 36.6 + float64(i%10)/10,
		}
		switch i % 4 {
		case 1:
			e.Warnings = []string{"clock_untrusted", "löw battery"}
		case 2:
			e.At = e.At.In(time.FixedZone("", 2*3600+30*60)).Truncate(time.Second)
			e.Celsius = 0
		case 3:
			e.Temperature, e.Celsius, e.Ref = "fever", -0.5e-3, 0
		}
		r.Records = append(r.Records, e)
	}
	return r
}

// oneRecord is a body of gate G1 with one record of seq 1 and fields.
func oneRecord(fields string) string {
	return `{"gate":"G1","records":[{"seq":1,"gate":"G1"` + fields + `}]}`
}

// seedRecords are records bodies of the forms gates write and of the
// forms scanRecords leaves to encoding/json: escapes, unicode, duplicate
// keys, nulls, numbers out of range, unknown fields, other spellings of
// keys, bad syntax.
func seedRecords(f *testing.F) {
	full, err := json.Marshal(gateBatch("G1", 8))
	if err != nil {
		f.Fatal(err)
	}
	indented, _ := json.MarshalIndent(gateBatch("G1", 3), " ", "\t")
	bodies := []string{
		string(full), string(indented), recordsJSON("G1", 1, 2, 3), `{}`, `{"records":[],"gate":"G1"}`, ` {"gate":"G1","records":[{}]} `,
		// Duplicate keys: encoding/json takes the last.
		`{"gate":"G1","gate":"G2","records":[{"seq":1,"gate":"G2"}]}`,
		`{"gate":"G1","records":[{"seq":1,"gate":"G1"}],"records":[{"seq":5,"gate":"G1","venue":"v"}]}`,
		oneRecord(`,"seq":2`), oneRecord(`,"venue":"a","venue":"b"`), oneRecord(`,"warnings":["a"],"warnings":[]`),
		// Nulls.
		`{"gate":null,"records":[{"seq":1,"gate":"G1"}]}`, `{"gate":"G1","records":null}`, `{"gate":"G1","records":[null]}`,
		oneRecord(`,"at":null`), oneRecord(`,"warnings":null`), oneRecord(`,"venue":null`), oneRecord(`,"celsius":null,"allow":null`),
		// Numbers.
		`{"gate":"G1","records":[{"seq":18446744073709551615,"gate":"G1"}]}`,
		`{"gate":"G1","records":[{"seq":18446744073709551616,"gate":"G1"}]}`,
		`{"gate":"G1","records":[{"seq":-1,"gate":"G1"}]}`, `{"gate":"G1","records":[{"seq":1.0,"gate":"G1"}]}`,
		`{"gate":"G1","records":[{"seq":1e2,"gate":"G1"}]}`, `{"gate":"G1","records":[{"seq":01,"gate":"G1"}]}`,
		`{"gate":"G1","records":[{"seq":0,"gate":"G1"}]}`, oneRecord(`,"ref":99999999999999999999`),
		oneRecord(`,"celsius":1e400`), oneRecord(`,"celsius":-0`), oneRecord(`,"celsius":1e-400`), oneRecord(`,"celsius":3.7E+1`),
		oneRecord(`,"celsius":-`), oneRecord(`,"celsius":.5`), oneRecord(`,"celsius":1.`), oneRecord(`,"celsius":"36.6"`),
		// Unknown fields and other spellings of known ones.
		`{"gate":"G1","extra":{"a":[1,{"b":null}]},"records":[{"seq":1,"gate":"G1"}]}`, oneRecord(`,"extra":true`),
		`{"Gate":"G1","records":[{"seq":1,"gate":"G1"}]}`, oneRecord(`,"SEQ":2`), `{"g\u0061te":"G1","records":[{"seq":1,"gate":"G1"}]}`,
		// Escapes and unicode.
		oneRecord(`,"venue":"a\u0026b\"\\\/\b\f\n\r\t"`), oneRecord(`,"venue":"\ud83d\ude00 Zürich"`),
		oneRecord(`,"venue":"\ud800"`), oneRecord(`,"venue":"\ud800\u0041"`), oneRecord(`,"venue":"\x"`),
		oneRecord(`,"venue":"\u00"`), oneRecord(",\"venue\":\"\xff\xfe\""), oneRecord(",\"venue\":\"a\x01\""),
		oneRecord(",\"venue\":\"\xed\xa0\x80\""), oneRecord(`,"warnings":["\u00e9",""]`), `{"gate":"G\u0031","records":[{"seq":1,"gate":"G1"}]}`,
		// Times.
		oneRecord(`,"at":"2025-03-01T08:00:01.123456789+02:00"`), oneRecord(`,"at":"2025-03-01T08:00:01Z"`),
		oneRecord(`,"at":"2025-03-01 08:00:01Z"`), oneRecord(`,"at":"2025-03-01t08:00:01z"`), oneRecord(`,"at":"2025-13-01T08:00:01Z"`),
		oneRecord(`,"at":"2025-03-01T08:00:01\u005a"`), oneRecord(`,"at":"2025-03-01T24:00:00Z"`), oneRecord(`,"at":"2025-03-01T08:00:01+24:00"`),
		oneRecord(`,"at":1`), oneRecord(",\"at\":\"2025-03-01T08:00:01\xffZ\""),
		// Other types and bad syntax.
		oneRecord(`,"allow":1`), oneRecord(`,"allow":"true"`), oneRecord(`,"allow":tru`), oneRecord(`,"alert":true,"attendant":false`),
		oneRecord(`,"warnings":[]`), oneRecord(`,"warnings":[""]`), oneRecord(`,"warnings":["a",1]`), oneRecord(`,"warnings":"a"`),
		oneRecord(`,"warnings":["a",]`), `{"gate":"G1","records":[{"seq":1,"gate":"G1"},]}`, `{"gate":"G1","records":{}}`,
		`{"gate":"G1","records":[{"seq":1,"gate":"G1"}]}x`, `{"gate":"G1","records":[{"seq":1,"gate":"G1"}]},`,
		`{"gate":"G1","records":[{"seq":1,"gate":"G1"}]`, `{"gate":"G1",}`, `{"gate":"G1" "records":[]}`, `{"gate" "G1"}`,
		`{"gate":"G1","records":[{"seq":1 "gate":"G1"}]}`, `[{"gate":"G1"}]`, `null`, ``, `"G1"`,
	}
	for _, b := range bodies {
		f.Add([]byte(b))
	}
}

// TestScanRecordsReadsGateBatches: batches as json.Marshal writes them,
// whatever their text, are read by scanRecords itself, not left to
// encoding/json, and read as encoding/json reads them.
func TestScanRecordsReadsGateBatches(t *testing.T) {
	for _, n := range []int{1, 2, 7, 100, MaxRecordsPerBatch} {
		body, err := json.Marshal(gateBatch("G1", n))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := scanRecords(body)
		if !ok {
			t.Fatalf("scanRecords left a batch of %d records as json.Marshal writes it to encoding/json: %s", n, body)
		}
		var want Records
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("scanRecords read %+v; encoding/json %+v", got, want)
		}
		if r, err := DecodeRecords(body); err != nil || len(r.Records) != n {
			t.Fatalf("DecodeRecords of %d records = %v", n, err)
		}
	}
}

// TestScanRecordsLeavesOddBodies: what scanRecords does not read as
// encoding/json would for sure (a key twice, null, a key spelt otherwise,
// an unknown key, a number that does not fit) it leaves to encoding/json.
func TestScanRecordsLeavesOddBodies(t *testing.T) {
	for _, body := range []string{
		`{"gate":"G1","gate":"G1","records":[{"seq":1,"gate":"G1"}]}`,
		oneRecord(`,"venue":"a","venue":"a"`),
		`{"gate":null,"records":[{"seq":1,"gate":"G1"}]}`,
		oneRecord(`,"at":null`),
		oneRecord(`,"Venue":"a"`),
		oneRecord(`,"v\u0065nue":"a"`),
		oneRecord(`,"extra":1`),
		oneRecord(`,"ref":18446744073709551616`),
		oneRecord(`,"celsius":1e400`),
		oneRecord(`,"at":"2025-03-01T08:00:01\u005a"`),
		oneRecord(`}`),
	} {
		if r, ok := scanRecords([]byte(body)); ok {
			t.Errorf("scanRecords(%s) = %+v; want it left to encoding/json", body, r)
		}
	}
	// Text with escapes is read too, a string at a time by encoding/json;
	// UTF-8 beyond ASCII is read as it is.
	body := oneRecord(`,"venue":"a\u0026b \ud83d\ude00 \ud800 Zürich","warnings":["\t"]`)
	r, ok := scanRecords([]byte(body))
	if !ok || r.Records[0].Venue != "a&b \U0001F600 \uFFFD Zürich" || r.Records[0].Warnings[0] != "\t" {
		t.Fatalf("scanRecords(%s) = %+v, %v", body, r, ok)
	}
}

// BenchmarkDecodeRecords: a 100-record batch of one venue, read by
// DecodeRecords and by encoding/json alone.
//
//	go test -run '^$' -bench DecodeRecords -benchmem ./sync/wire/
func BenchmarkDecodeRecords(b *testing.B) {
	r := gateBatch("G1", 100)
	for i := range r.Records {
		r.Records[i].Venue = "central"
	}
	body, err := json.Marshal(r)
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name string
		scan func([]byte) (Records, bool)
	}{{"scan", scanRecords}, {"json", jsonOnly}} {
		b.Run(v.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := decodeRecords(body, v.scan); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestPlainASCII: the 8-bytes-at-a-time test finds every byte that is
// not printable ASCII or is a backslash, wherever it sits.
func TestPlainASCII(t *testing.T) {
	for n := range 20 {
		for at := range n {
			for c := range 256 {
				b := []byte(strings.Repeat("a", n))
				b[at] = byte(c)
				want := c >= 0x20 && c < 0x80 && c != '\\'
				if got := plainASCII(b); got != want {
					t.Fatalf("plainASCII(%q) = %v", b, got)
				}
			}
		}
	}
	if !plainASCII(nil) || !plainASCII([]byte(" ~\x7f0123456789")) {
		t.Fatal("plainASCII refused printable ASCII")
	}
}
