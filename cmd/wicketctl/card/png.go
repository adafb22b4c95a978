package card

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image/png"
	"io"
)

// WritePNG renders c and writes it to w as a PNG that records 300 dpi, so
// card printers and viewers print it at its true size. Errors are Render's,
// or the writer's; the Result is returned only on success.
func WritePNG(w io.Writer, c Card) (*Result, error) {
	res, err := Render(c)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, res.Image); err != nil {
		return nil, fmt.Errorf("card: encode png: %w", err)
	}
	if _, err := w.Write(withDPI(buf.Bytes(), DPI)); err != nil {
		return nil, fmt.Errorf("card: write png: %w", err)
	}
	return res, nil
}

// withDPI inserts a pHYs chunk after the IHDR chunk of a PNG from
// image/png, which writes none. IHDR always comes first and is 25 bytes
// after the 8-byte signature.
func withDPI(p []byte, dpi int) []byte {
	const ihdrEnd = 8 + 25
	ppm := uint32(float64(dpi)/0.0254 + 0.5) // pixels per metre
	chunk := make([]byte, 0, 21)
	chunk = binary.BigEndian.AppendUint32(chunk, 9)
	chunk = append(chunk, "pHYs"...)
	chunk = binary.BigEndian.AppendUint32(chunk, ppm)
	chunk = binary.BigEndian.AppendUint32(chunk, ppm)
	chunk = append(chunk, 1) // unit: metre
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))

	out := make([]byte, 0, len(p)+len(chunk))
	out = append(out, p[:ihdrEnd]...)
	out = append(out, chunk...)
	return append(out, p[ihdrEnd:]...)
}
