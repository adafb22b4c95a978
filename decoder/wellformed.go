package decoder

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// The CBOR library converts declared lengths and counts to int before it
// compares them with the input; on 32-bit boards a head claiming 2^32
// bytes or 2^63 pairs wraps around and can pass as a short item. Every
// untrusted CBOR input is therefore walked here first, in uint64, before
// the library sees it.

// errHead is a CBOR head no input could satisfy.
var errHead = errors.New("malformed CBOR")

// maxWalkDepth bounds the walk's recursion; the decoding modes' nesting
// limits are lower, so this only stops a stack blow-up.
const maxWalkDepth = 64

// CheckHeads reports ErrCBOR if data is not exactly one CBOR data item
// whose every declared length and count fits in the bytes that follow,
// with every text string valid UTF-8 (header labels a format ignores
// included, which a decoder into a struct would skip unchecked).
func CheckHeads(data []byte) error {
	rest, err := walkItem(data, 0)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCBOR, err)
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d bytes after the item", ErrCBOR, len(rest))
	}
	return nil
}

// head reads an item's head: major type, additional info and argument.
func head(b []byte) (major byte, ai byte, arg uint64, rest []byte, err error) {
	if len(b) == 0 {
		return 0, 0, 0, nil, fmt.Errorf("%w: unexpected end", errHead)
	}
	major, ai = b[0]>>5, b[0]&0x1f
	b = b[1:]
	n := 0
	switch {
	case ai < 24:
		return major, ai, uint64(ai), b, nil
	case ai == 24:
		n = 1
	case ai == 25:
		n = 2
	case ai == 26:
		n = 4
	case ai == 27:
		n = 8
	case ai == 31:
		return major, ai, 0, b, nil
	default:
		return 0, 0, 0, nil, fmt.Errorf("%w: reserved additional information %d", errHead, ai)
	}
	if len(b) < n {
		return 0, 0, 0, nil, fmt.Errorf("%w: unexpected end", errHead)
	}
	for _, c := range b[:n] {
		arg = arg<<8 | uint64(c)
	}
	return major, ai, arg, b[n:], nil
}

// walkItem skips one data item and returns what follows it.
func walkItem(b []byte, depth int) ([]byte, error) {
	if depth > maxWalkDepth {
		return nil, fmt.Errorf("%w: nested over %d levels", errHead, maxWalkDepth)
	}
	major, ai, arg, b, err := head(b)
	if err != nil {
		return nil, err
	}
	if ai == 31 {
		return walkIndefinite(major, b, depth)
	}
	switch major {
	case 0, 1, 7:
		return b, nil
	case 2, 3:
		if arg > uint64(len(b)) {
			return nil, fmt.Errorf("%w: string of %d bytes with %d left", errHead, arg, len(b))
		}
		if major == 3 && !utf8.Valid(b[:arg]) {
			return nil, fmt.Errorf("%w: text string not valid UTF-8", errHead)
		}
		return b[arg:], nil
	case 4, 5:
		items := arg
		if major == 5 {
			if arg > uint64(len(b))/2 {
				return nil, fmt.Errorf("%w: map of %d pairs with %d bytes left", errHead, arg, len(b))
			}
			items = 2 * arg
		} else if arg > uint64(len(b)) {
			return nil, fmt.Errorf("%w: array of %d items with %d bytes left", errHead, arg, len(b))
		}
		for range items {
			if b, err = walkItem(b, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	default: // 6: a tag and its content
		return walkItem(b, depth+1)
	}
}

// walkIndefinite skips the body of an indefinite-length item up to and
// including its break byte.
func walkIndefinite(major byte, b []byte, depth int) ([]byte, error) {
	switch major {
	case 2, 3, 4, 5:
	default:
		return nil, fmt.Errorf("%w: indefinite length on major type %d", errHead, major)
	}
	for n := 0; ; n++ {
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: unexpected end", errHead)
		}
		if b[0] == 0xff {
			if major == 5 && n%2 != 0 {
				return nil, fmt.Errorf("%w: map with a key and no value", errHead)
			}
			return b[1:], nil
		}
		if (major == 2 || major == 3) && b[0]>>5 != major {
			return nil, fmt.Errorf("%w: chunk of another type in an indefinite string", errHead)
		}
		var err error
		if b, err = walkItem(b, depth+1); err != nil {
			return nil, err
		}
	}
}
