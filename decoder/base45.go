package decoder

import "fmt"

// base45 per RFC 9285: every 2 bytes become 3 characters (low digit first),
// a final odd byte becomes 2.
const base45Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

// base45Value maps a character to its value, or 0xff if it is not in the
// alphabet.
var base45Value = func() [256]byte {
	var t [256]byte
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(base45Alphabet); i++ {
		t[base45Alphabet[i]] = byte(i)
	}
	return t
}()

// Base45DecodedLen returns how many bytes n base45 characters decode to,
// or -1 if n is not a valid length.
func Base45DecodedLen(n int) int {
	if n%3 == 1 {
		return -1
	}
	return n/3*2 + n%3/2
}

// base45Group holds, for each character, its value as the first, second
// and third character of a group (times 1, 45 and 45*45), or base45Bad if
// it is not in the alphabet: a group's sum is then over 0xffff whatever
// the other two are, so one comparison finds both a bad character and a
// group out of range.
var base45Group = func() (t [3][256]uint32) {
	for i := range 256 {
		for k, w := range [3]uint32{1, 45, 45 * 45} {
			t[k][i] = base45Bad
			if v := base45Value[i]; v <= 44 {
				t[k][i] = uint32(v) * w
			}
		}
	}
	return t
}()

// base45Bad is over any group's value (three of it still fit a uint32).
const base45Bad = 1 << 20

// AppendBase45Decode decodes src and appends the bytes to dst. It rejects
// characters outside the alphabet, lengths with remainder 1 modulo 3, and
// groups over 65535 (three characters) or 255 (two characters): RFC 9285
// section 4.2 requires a decoder to reject them, and accepting them would make
// two texts decode to the same bytes.
func AppendBase45Decode(dst []byte, src []byte) ([]byte, error) {
	if Base45DecodedLen(len(src)) < 0 {
		return dst, fmt.Errorf("%w: length %d leaves a single character", ErrBase45, len(src))
	}
	i := 0
	for ; i+3 <= len(src); i += 3 {
		g := src[i : i+3 : i+3]
		n := base45Group[0][g[0]] + base45Group[1][g[1]] + base45Group[2][g[2]]
		if n > 0xffff {
			if n >= base45Bad {
				return dst, fmt.Errorf("%w: character outside alphabet at offset %d", ErrBase45, i+firstBad(g))
			}
			return dst, fmt.Errorf("%w: group at offset %d is %d, over 65535", ErrBase45, i, n)
		}
		dst = append(dst, byte(n>>8), byte(n))
	}
	if i+2 == len(src) {
		n := base45Group[0][src[i]] + base45Group[1][src[i+1]]
		if n > 0xff {
			if n >= base45Bad {
				return dst, fmt.Errorf("%w: character outside alphabet at offset %d", ErrBase45, i+firstBad(src[i:i+2]))
			}
			return dst, fmt.Errorf("%w: final group at offset %d is %d, over 255", ErrBase45, i, n)
		}
		dst = append(dst, byte(n))
	}
	return dst, nil
}

func firstBad(b []byte) int {
	for i, c := range b {
		if base45Value[c] == 0xff {
			return i
		}
	}
	return 0
}

// Base45Decode decodes a base45 string.
func Base45Decode(s string) ([]byte, error) {
	n := Base45DecodedLen(len(s))
	if n < 0 {
		n = 0
	}
	return AppendBase45Decode(make([]byte, 0, n), []byte(s))
}

// Base45Encode encodes b as base45.
func Base45Encode(b []byte) string {
	out := make([]byte, 0, len(b)/2*3+2)
	i := 0
	for ; i+2 <= len(b); i += 2 {
		n := uint32(b[i])<<8 | uint32(b[i+1])
		out = append(out, base45Alphabet[n%45], base45Alphabet[n/45%45], base45Alphabet[n/(45*45)])
	}
	if i < len(b) {
		n := uint32(b[i])
		out = append(out, base45Alphabet[n%45], base45Alphabet[n/45])
	}
	return string(out)
}
