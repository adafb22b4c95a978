package device

import "strings"

// HexDump renders a frame for a person checking a scanner: printable ASCII
// as is, every other byte (and '<', so the output is unambiguous) as its
// hex value in angle brackets, like "ABC<0d><0a>".
func HexDump(frame []byte) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(frame))
	for _, c := range frame {
		if c >= 0x20 && c < 0x7f && c != '<' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('<')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0x0f])
		b.WriteByte('>')
	}
	return b.String()
}
