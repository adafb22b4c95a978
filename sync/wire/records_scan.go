package wire

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// scanRecords reads a records body without reflection: an object of
// "gate" and "records", each record an object of Record's JSON names,
// which is the form json.Marshal of Records writes. ok is false for
// anything else (a key it does not know or sees twice, null, a value of
// another type, a number that does not fit, a syntax error, text after
// the object), and DecodeRecords then parses the body with
// encoding/json; whatever scanRecords reads, encoding/json reads the
// same from the same bytes (FuzzDecodeRecords checks it).
//
// The body is copied once into a string that every string field of the
// result points into, instead of one allocation per field. A string
// with escapes, control characters or bytes that are not UTF-8, rare in
// records, is unquoted by encoding/json on its own, so it reads as it
// always did.
func scanRecords(body []byte) (r Records, ok bool) {
	d := recordScanner{b: body, s: string(body)}
	if !d.next('{') {
		return r, false
	}
	if d.next('}') {
		return r, d.end()
	}
	var seen uint8
	for {
		key, ok := d.key()
		if !ok || !d.next(':') {
			return r, false
		}
		var bit uint8
		switch key {
		case "gate":
			bit = 1
			r.Gate, ok = d.str()
		case "records":
			bit = 2
			r.Records, ok = d.records()
		default:
			return r, false
		}
		if !ok || seen&bit != 0 {
			return r, false
		}
		seen |= bit
		if d.next(',') {
			continue
		}
		return r, d.next('}') && d.end()
	}
}

// recordScanner is the position of scanRecords in a body, held both as
// the caller's bytes and as the string copy the fields point into.
type recordScanner struct {
	b []byte
	s string
	i int
}

// space skips JSON whitespace.
func (d *recordScanner) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next consumes c, after whitespace, if it comes next.
func (d *recordScanner) next(c byte) bool {
	d.space()
	if d.i < len(d.s) && d.s[d.i] == c {
		d.i++
		return true
	}
	return false
}

// end reports whether nothing but whitespace is left.
func (d *recordScanner) end() bool {
	d.space()
	return d.i == len(d.s)
}

// literal consumes a string literal and returns the offsets of its
// quotes; plain says that its bytes are its value: no escapes, no
// control characters, valid UTF-8.
func (d *recordScanner) literal() (open, close int, plain, ok bool) {
	d.space()
	if d.i >= len(d.s) || d.s[d.i] != '"' {
		return 0, 0, false, false
	}
	open = d.i
	if end := strings.IndexByte(d.s[open+1:], '"'); end >= 0 && plainASCII(d.b[open+1:open+1+end]) {
		d.i = open + 1 + end + 1
		return open, open + 1 + end, true, true
	}
	plain = true
	ascii := true
	for j := open + 1; j < len(d.s); j++ {
		switch c := d.s[j]; {
		case c == '"':
			if !ascii && plain {
				plain = utf8.ValidString(d.s[open+1 : j])
			}
			d.i = j + 1
			return open, j, plain, true
		case c == '\\':
			plain = false
			j++
		case c < 0x20:
			plain = false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return 0, 0, false, false
}

// plainASCII reports whether b is printable ASCII without a backslash
// (0x20 to 0x7f but '\\'), looking at 8 bytes at a time: none has its
// top bit set, none is below 0x20, none is a backslash.
func plainASCII(b []byte) bool {
	const ones, tops = 0x0101010101010101, 0x8080808080808080
	for ; len(b) >= 8; b = b[8:] {
		w := binary.LittleEndian.Uint64(b)
		bs := w ^ (ones * '\\')
		if (w|((w-ones*0x20)&^w)|((bs-ones)&^bs))&tops != 0 {
			return false
		}
	}
	for _, c := range b {
		if c < 0x20 || c >= utf8.RuneSelf || c == '\\' {
			return false
		}
	}
	return true
}

// key consumes an object key. A key with escapes is returned as written,
// so that it matches no field and scanRecords leaves it to
// encoding/json.
func (d *recordScanner) key() (string, bool) {
	open, close, _, ok := d.literal()
	if !ok {
		return "", false
	}
	return d.s[open+1 : close], true
}

// str consumes a string.
func (d *recordScanner) str() (string, bool) {
	open, close, plain, ok := d.literal()
	if !ok {
		return "", false
	}
	if plain {
		return d.s[open+1 : close], true
	}
	var v string
	if json.Unmarshal(d.b[open:close+1], &v) != nil {
		return "", false
	}
	return v, true
}

// boolean consumes true or false.
func (d *recordScanner) boolean() (v, ok bool) {
	d.space()
	switch {
	case strings.HasPrefix(d.s[d.i:], "true"):
		d.i += len("true")
		return true, true
	case strings.HasPrefix(d.s[d.i:], "false"):
		d.i += len("false")
		return false, true
	}
	return false, false
}

// unsigned consumes an integer in the range of uint64, written as JSON
// writes integers: no sign, no leading zero, no fraction or exponent
// (which the caller sees as the wrong byte after it).
func (d *recordScanner) unsigned() (uint64, bool) {
	d.space()
	start := d.i
	var n uint64
	for ; d.i < len(d.s) && '0' <= d.s[d.i] && d.s[d.i] <= '9'; d.i++ {
		c := uint64(d.s[d.i] - '0')
		if n > (math.MaxUint64-c)/10 {
			return 0, false
		}
		n = n*10 + c
	}
	if d.i == start || (d.s[start] == '0' && d.i-start > 1) {
		return 0, false
	}
	return n, true
}

// float consumes a JSON number and parses it as encoding/json does.
func (d *recordScanner) float() (float64, bool) {
	d.space()
	start := d.i
	digits := func() bool {
		from := d.i
		for d.i < len(d.s) && '0' <= d.s[d.i] && d.s[d.i] <= '9' {
			d.i++
		}
		return d.i > from
	}
	if d.i < len(d.s) && d.s[d.i] == '-' {
		d.i++
	}
	intStart := d.i
	if !digits() || (d.s[intStart] == '0' && d.i-intStart > 1) {
		return 0, false
	}
	if d.i < len(d.s) && d.s[d.i] == '.' {
		d.i++
		if !digits() {
			return 0, false
		}
	}
	if d.i < len(d.s) && (d.s[d.i] == 'e' || d.s[d.i] == 'E') {
		d.i++
		if d.i < len(d.s) && (d.s[d.i] == '+' || d.s[d.i] == '-') {
			d.i++
		}
		if !digits() {
			return 0, false
		}
	}
	v, err := strconv.ParseFloat(d.s[start:d.i], 64)
	return v, err == nil
}

// texts consumes an array of strings; [] is an empty slice, not nil,
// as encoding/json makes it.
func (d *recordScanner) texts() ([]string, bool) {
	if !d.next('[') {
		return nil, false
	}
	ss := []string{}
	if d.next(']') {
		return ss, true
	}
	for {
		s, ok := d.str()
		if !ok {
			return nil, false
		}
		ss = append(ss, s)
		if d.next(',') {
			continue
		}
		return ss, d.next(']')
	}
}

// records consumes the array of records.
func (d *recordScanner) records() ([]Record, bool) {
	if !d.next('[') {
		return nil, false
	}
	// Room for as many records as the body has seq keys, the first key
	// json.Marshal writes of each.
	n := min(strings.Count(d.s[d.i:], `{"seq":`), MaxRecordsPerBatch+1)
	rs := make([]Record, 0, n)
	if d.next(']') {
		return rs, true
	}
	for {
		rs = append(rs, Record{})
		if !d.record(&rs[len(rs)-1]) {
			return nil, false
		}
		if d.next(',') {
			continue
		}
		return rs, d.next(']')
	}
}

// record consumes one record into e, which is zero.
func (d *recordScanner) record(e *Record) bool {
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		return true
	}
	var seen uint32
	for {
		key, ok := d.key()
		if !ok || !d.next(':') {
			return false
		}
		var bit uint32
		switch key {
		case "seq":
			bit = 1 << 0
			e.Seq, ok = d.unsigned()
		case "type":
			bit = 1 << 1
			e.Type, ok = d.str()
		case "at":
			bit = 1 << 2
			ok = d.time(e)
		case "gate":
			bit = 1 << 3
			e.Gate, ok = d.str()
		case "venue":
			bit = 1 << 4
			e.Venue, ok = d.str()
		case "allow":
			bit = 1 << 5
			e.Allow, ok = d.boolean()
		case "reason":
			bit = 1 << 6
			e.Reason, ok = d.str()
		case "colour":
			bit = 1 << 7
			e.Colour, ok = d.str()
		case "kind":
			bit = 1 << 8
			e.Kind, ok = d.str()
		case "class":
			bit = 1 << 9
			e.Class, ok = d.str()
		case "issuer":
			bit = 1 << 10
			e.Issuer, ok = d.str()
		case "voucher":
			bit = 1 << 11
			e.Voucher, ok = d.str()
		case "subject":
			bit = 1 << 12
			e.Subject, ok = d.str()
		case "alert":
			bit = 1 << 13
			e.Alert, ok = d.boolean()
		case "attendant":
			bit = 1 << 14
			e.Attendant, ok = d.boolean()
		case "warnings":
			bit = 1 << 15
			e.Warnings, ok = d.texts()
		case "ref":
			bit = 1 << 16
			e.Ref, ok = d.unsigned()
		case "detail":
			bit = 1 << 17
			e.Detail, ok = d.str()
		case "temperature":
			bit = 1 << 18
			e.Temperature, ok = d.str()
		case "celsius":
			bit = 1 << 19
			e.Celsius, ok = d.float()
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		if d.next(',') {
			continue
		}
		return d.next('}')
	}
}

// time consumes the record's time, a plain string: the literal, quotes
// and all, goes to time.Time's UnmarshalJSON, as encoding/json hands it
// over.
func (d *recordScanner) time(e *Record) bool {
	open, close, plain, ok := d.literal()
	return ok && plain && e.At.UnmarshalJSON(d.b[open:close+1]) == nil
}
