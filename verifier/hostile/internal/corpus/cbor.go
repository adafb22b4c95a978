package corpus

import (
	"encoding/binary"
	"math"
)

// A small CBOR writer that produces exactly the bytes asked for: hostile
// inputs need duplicate keys, indefinite lengths, lying length headers and
// other things no well-behaved encoder writes.

// head is the initial byte and argument of an item of a major type, in its
// shortest form.
func head(major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return []byte{m | byte(n)}
	case n <= math.MaxUint8:
		return []byte{m | 24, byte(n)}
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16([]byte{m | 25}, uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32([]byte{m | 26}, uint32(n))
	}
	return binary.BigEndian.AppendUint64([]byte{m | 27}, n)
}

// uint8Head is the non-shortest one-byte-argument form of a small unsigned
// integer (0x18 n).
func uint8Head(major byte, n byte) []byte { return []byte{major<<5 | 24, n} }

// cint encodes an integer (major type 0 or 1).
func cint(n int64) []byte {
	if n >= 0 {
		return head(0, uint64(n))
	}
	return head(1, uint64(-1-n))
}

// cuint encodes an unsigned integer of any size.
func cuint(n uint64) []byte { return head(0, n) }

func bstr(b []byte) []byte             { return append(head(2, uint64(len(b))), b...) }
func tstr(s string) []byte             { return append(head(3, uint64(len(s))), s...) }
func tag(n uint64, item []byte) []byte { return append(head(6, n), item...) }

func arr(items ...[]byte) []byte {
	return cat(append([][]byte{head(4, uint64(len(items)))}, items...)...)
}

// cmapRaw encodes a map from alternating keys and values.
func cmapRaw(kv ...[]byte) []byte {
	if len(kv)%2 != 0 {
		panic("cmapRaw: odd number of items")
	}
	return cat(append([][]byte{head(5, uint64(len(kv)/2))}, kv...)...)
}

// Indefinite-length forms: the item, its chunks or elements, a break.
func indefArr(items ...[]byte) []byte {
	return cat(append(append([][]byte{{0x9f}}, items...), []byte{0xff})...)
}
func indefMap(kv ...[]byte) []byte {
	return cat(append(append([][]byte{{0xbf}}, kv...), []byte{0xff})...)
}
func indefBstr(chunks ...[]byte) []byte {
	out := []byte{0x5f}
	for _, c := range chunks {
		out = append(out, bstr(c)...)
	}
	return append(out, 0xff)
}
func indefTstr(chunks ...string) []byte {
	out := []byte{0x7f}
	for _, c := range chunks {
		out = append(out, tstr(c)...)
	}
	return append(out, 0xff)
}

// Floats in each width.
func f16(bits uint16) []byte { return binary.BigEndian.AppendUint16([]byte{0xf9}, bits) }
func f32(v float32) []byte   { return binary.BigEndian.AppendUint32([]byte{0xfa}, math.Float32bits(v)) }
func f64(v float64) []byte   { return binary.BigEndian.AppendUint64([]byte{0xfb}, math.Float64bits(v)) }

var (
	cnull  = []byte{0xf6}
	cfalse = []byte{0xf4}
	ctrue  = []byte{0xf5}
	cundef = []byte{0xf7}
)

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// nest wraps item in depth one-element arrays.
func nest(depth int, item []byte) []byte {
	out := make([]byte, 0, depth+len(item))
	for range depth {
		out = append(out, 0x81)
	}
	return append(out, item...)
}

// nestMaps wraps item in depth one-pair maps {0: ...}.
func nestMaps(depth int, item []byte) []byte {
	out := make([]byte, 0, 2*depth+len(item))
	for range depth {
		out = append(out, 0xa1, 0x00)
	}
	return append(out, item...)
}

// nestTags wraps item in depth tags of number 100.
func nestTags(depth int, item []byte) []byte {
	out := make([]byte, 0, 2*depth+len(item))
	for range depth {
		out = append(out, 0xd8, 100)
	}
	return append(out, item...)
}

// field is one key and value of a map whose keys keep their order.
type field struct{ k, v []byte }

// omap is a CBOR map written in the order given, duplicates and all.
type omap []field

func (m omap) enc() []byte {
	out := head(5, uint64(len(m)))
	for _, f := range m {
		out = append(out, f.k...)
		out = append(out, f.v...)
	}
	return out
}

// set replaces the value of integer key k (or appends it).
func (m omap) set(k int64, v []byte) omap {
	key := cint(k)
	out := make(omap, 0, len(m)+1)
	found := false
	for _, f := range m {
		if string(f.k) == string(key) {
			out = append(out, field{key, v})
			found = true
			continue
		}
		out = append(out, f)
	}
	if !found {
		out = append(out, field{key, v})
	}
	return out
}

// del removes integer key k.
func (m omap) del(k int64) omap {
	key := cint(k)
	out := make(omap, 0, len(m))
	for _, f := range m {
		if string(f.k) != string(key) {
			out = append(out, f)
		}
	}
	return out
}

// plus appends a pair as given (a duplicate or an unknown key).
func (m omap) plus(k, v []byte) omap {
	return append(append(omap{}, m...), field{k, v})
}
