package qr

import (
	"fmt"
	"image"
	"image/png"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// DefaultLevel is the error-correction level used when none is given: M
// restores about 15% of damaged modules, enough for a scuffed card or a
// cracked phone screen, and keeps a 400-character voucher at version 12.
const DefaultLevel = "M"

// Encode draws text as a size×size QR code: black modules on white, with a
// quiet zone of at least QuietZone modules. Each module is a whole number of
// pixels; what is left over widens the quiet zone.
//
// level is "L", "M", "Q" or "H" (any case); "" means DefaultLevel. A text
// made only of digits, upper-case letters and " $%*+-./:" (base45) is
// encoded in alphanumeric mode, the densest for it. Any other text goes in
// byte mode with an ECI designator for its character set (ISO-8859-1 when
// every byte is ASCII, else UTF-8), so readers return the same bytes.
//
// Errors: ErrLevel for an unknown level; ErrText for an empty, invalid
// UTF-8 or over-long text; ErrSize when size is outside [MinSize, MaxSize]
// or too small for the code. Encode is safe for concurrent use.
func Encode(text string, size int, level string) (*image.Gray, error) {
	if level == "" {
		level = DefaultLevel
	}
	level = strings.ToUpper(level)
	switch level {
	case "L", "M", "Q", "H":
	default:
		return nil, fmt.Errorf("qr encode: %w %q; use L, M, Q or H", ErrLevel, level)
	}
	switch {
	case text == "":
		return nil, fmt.Errorf("qr encode: %w: empty", ErrText)
	case len(text) > MaxTextLen:
		return nil, fmt.Errorf("qr encode: %w: %d bytes, at most %d", ErrText, len(text), MaxTextLen)
	case !utf8.ValidString(text):
		return nil, fmt.Errorf("qr encode: %w: not valid UTF-8", ErrText)
	}
	if size < MinSize || size > MaxSize {
		return nil, fmt.Errorf("qr encode: %w: %d pixels, want %d to %d", ErrSize, size, MinSize, MaxSize)
	}

	hints := map[gozxing.EncodeHintType]interface{}{
		gozxing.EncodeHintType_ERROR_CORRECTION: level,
		gozxing.EncodeHintType_MARGIN:           QuietZone,
		gozxing.EncodeHintType_CHARACTER_SET:    charset(text),
	}
	m, err := qrcode.NewQRCodeWriter().Encode(text, gozxing.BarcodeFormat_QR_CODE, size, size, hints)
	if err != nil {
		// Inputs are checked above, so what is left is a text that needs
		// more than version 40 at this level.
		return nil, fmt.Errorf("qr encode: %w: %v", ErrText, err)
	}
	if w := m.GetWidth(); w > size || m.GetHeight() > size {
		return nil, fmt.Errorf("qr encode: %w: the code needs at least %d pixels, got %d", ErrSize, w, size)
	}

	img := image.NewGray(image.Rect(0, 0, size, size))
	for y := 0; y < size; y++ {
		row := img.Pix[y*img.Stride : y*img.Stride+size]
		for x := range row {
			if m.Get(x, y) {
				row[x] = 0
			} else {
				row[x] = 0xff
			}
		}
	}
	return img, nil
}

// EncodePNG writes text as a size×size QR code PNG at DefaultLevel. Errors
// are those of Encode, or the writer's.
func EncodePNG(w io.Writer, text string, size int) error {
	img, err := Encode(text, size, DefaultLevel)
	if err != nil {
		return err
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("qr encode: write png: %w", err)
	}
	return nil
}

// charset names the character set announced for a byte-mode text. It is
// ignored for numeric and alphanumeric texts, which carry no ECI.
func charset(text string) string {
	for i := 0; i < len(text); i++ {
		if text[i] >= utf8.RuneSelf {
			return "UTF-8"
		}
	}
	return "ISO-8859-1"
}
