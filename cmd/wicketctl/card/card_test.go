package card

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"

	"wicket/decoder/qr"
)

// voucherText is a plausible 300-character voucher text.
func voucherText() string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
	var b strings.Builder
	b.WriteString("WK1:")
	for i := 0; b.Len() < 300; i++ {
		b.WriteByte(alphabet[(i*17+5)%len(alphabet)])
	}
	return b.String()
}

func sample() Card {
	return Card{
		Text:       voucherText(),
		Colour:     "green",
		MaskedName: "张*明",
		Class:      "adult",
		Issuer:     "上海地铁 Shanghai Metro",
		Kind:       "月票 Monthly",
		Expires:    time.Date(2026, 12, 31, 23, 59, 0, 0, time.FixedZone("CST", 8*3600)),
		VoucherID:  "7f3a91c20b1d2e3f405162738495a6b7",
	}
}

// noSystemFonts makes Render fall back to the built-in fonts.
func noSystemFonts(t *testing.T) {
	saved := fontSearchPaths
	fontSearchPaths = nil
	t.Cleanup(func() { fontSearchPaths = saved })
}

func render(t *testing.T, c Card) *Result {
	t.Helper()
	res, err := Render(c)
	if err != nil {
		t.Fatalf("Render(%+v) = %v", c, err)
	}
	return res
}

func TestRenderSize(t *testing.T) {
	res := render(t, sample())
	if got, want := res.Image.Bounds(), image.Rect(0, 0, 1011, 638); got != want {
		t.Fatalf("Render().Image.Bounds() = %v; want %v", got, want)
	}
}

func TestQRDecodes(t *testing.T) {
	var d qr.Decoder
	for _, colour := range []string{"green", "yellow", "red"} {
		for _, fallback := range []bool{false, true} {
			name := colour
			if fallback {
				name += "/builtin font"
			}
			t.Run(name, func(t *testing.T) {
				if fallback {
					noSystemFonts(t)
				}
				c := sample()
				c.Colour = colour
				res := render(t, c)
				got, err := d.Decode(res.Image)
				if err != nil || string(got) != c.Text {
					t.Fatalf("Decode(card) = %q, %v; want %q", got, err, c.Text)
				}
			})
		}
	}
}

func TestBandColour(t *testing.T) {
	want := map[string]color.RGBA{
		"green":  {0x1a, 0x9e, 0x4b, 0xff},
		"yellow": {0xf2, 0xc2, 0x00, 0xff},
		"red":    {0xd7, 0x26, 0x3d, 0xff},
	}
	for colour, rgba := range want {
		c := sample()
		c.Colour = colour
		img := render(t, c).Image
		for _, p := range []image.Point{{2, 2}, {Width - 3, 2}, {Width / 2, 4}, {Width - 3, bandH - 3}, {2, Height - 3}, {Width - 3, Height - 3}} {
			if got := img.RGBAAt(p.X, p.Y); got != rgba {
				t.Errorf("Render(%s) pixel %v = %v; want %v", colour, p, got, rgba)
			}
		}
		if got := img.RGBAAt(10, Height/2); got != (color.RGBA{0xff, 0xff, 0xff, 0xff}) {
			t.Errorf("Render(%s) body pixel = %v; want white", colour, got)
		}
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Card)
	}{
		{"unknown colour", func(c *Card) { c.Colour = "blue" }},
		{"colour case", func(c *Card) { c.Colour = "Green" }},
		{"no colour", func(c *Card) { c.Colour = "" }},
		{"unknown class", func(c *Card) { c.Class = "student" }},
		{"no text", func(c *Card) { c.Text = "" }},
		{"no expiry", func(c *Card) { c.Expires = time.Time{} }},
		{"no name", func(c *Card) { c.MaskedName = "" }},
		{"long issuer", func(c *Card) { c.Issuer = strings.Repeat("x", maxFieldLen+1) }},
		{"invalid utf8", func(c *Card) { c.Kind = "\xff" }},
		{"no voucher id", func(c *Card) { c.VoucherID = "" }},
		{"voucher id not hex", func(c *Card) { c.VoucherID = "7F3A-91C2" }},
		{"voucher id too long to print whole", func(c *Card) { c.VoucherID = strings.Repeat("ab", maxIDBytes+1) }},
	}
	for _, tt := range tests {
		c := sample()
		tt.edit(&c)
		if res, err := Render(c); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Render = %v, %v; want ErrInvalid", tt.name, res, err)
		}
	}
	var buf bytes.Buffer
	c := sample()
	c.Colour = "blue"
	if _, err := WritePNG(&buf, c); !errors.Is(err, ErrInvalid) || buf.Len() != 0 {
		t.Errorf("WritePNG(blue) = %v, wrote %d bytes; want ErrInvalid and nothing", err, buf.Len())
	}
}

func TestTextTooLong(t *testing.T) {
	c := sample()
	c.Text = strings.Repeat("a", 1500) // fits a QR code, with 2-pixel modules
	if _, err := Render(c); !errors.Is(err, ErrInvalid) {
		t.Errorf("Render(1500-byte text) = %v; want ErrInvalid (modules too small)", err)
	}
	c.Text = strings.Repeat("a", 3000) // fits no QR code at level M
	if _, err := Render(c); !errors.Is(err, qr.ErrText) {
		t.Errorf("Render(3000-byte text) = %v; want qr.ErrText", err)
	}
	c.Text = "WK1:" + strings.Repeat("A", 400)
	res := render(t, c)
	// Version 12 at level M: 65 modules and the quiet zone in 500 px.
	if m := modulePixels(res.Image.SubImage(image.Rect(Width-qrRight-qrSize, bandH, Width, Height-stripH))); m != 6 {
		t.Errorf("modules of a 404-character voucher are %d px; want 6", m)
	}
}

func TestFallbackFont(t *testing.T) {
	noSystemFonts(t)
	res := render(t, sample())
	if !res.Fallback || res.Font != BuiltinFont {
		t.Fatalf("Render without system fonts: Fallback = %v, Font = %q; want true, %q", res.Fallback, res.Font, BuiltinFont)
	}
	if len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "fonts-wqy-microhei") {
		t.Fatalf("Render without system fonts: Warnings = %q; want the font hint", res.Warnings)
	}
}

// inkIn counts non-white pixels in r.
func inkIn(img *image.RGBA, r image.Rectangle) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if img.RGBAAt(x, y) != (color.RGBA{0xff, 0xff, 0xff, 0xff}) {
				n++
			}
		}
	}
	return n
}

func TestCJKGlyphs(t *testing.T) {
	c := sample()
	c.MaskedName = "张明明"
	res := render(t, c)
	if res.Fallback {
		t.Skip("no CJK font installed (Debian: fonts-wqy-microhei)")
	}
	for _, w := range res.Warnings {
		t.Errorf("Render with %s: warning %q", res.Font, w)
	}
	noSystemFonts(t)
	stars := render(t, c)
	nameBox := image.Rect(margin, bandH, Width-qrRight-qrSize, bandH+100)
	if got, min := inkIn(res.Image, nameBox), 3*inkIn(stars.Image, nameBox); got < min {
		t.Errorf("name drawn with %s has %d ink pixels; want at least %d (three times the '*' placeholders)", res.Font, got, min)
	}
}

func TestFontPath(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.ttf")
	if err := os.WriteFile(junk, []byte("not a font at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "missing.ttc"), junk} {
		c := sample()
		c.FontPath = p
		if _, err := Render(c); !errors.Is(err, ErrFont) {
			t.Errorf("Render(FontPath %s) = %v; want ErrFont", p, err)
		}
	}

	// A Latin-only font is used as asked, with the fallback reported.
	latin := filepath.Join(dir, "goregular.ttf")
	if err := os.WriteFile(latin, goregular.TTF, 0o600); err != nil {
		t.Fatal(err)
	}
	c := sample()
	c.FontPath = latin
	res := render(t, c)
	if !res.Fallback || !strings.HasPrefix(res.Font, latin) {
		t.Errorf("Render(FontPath %s): Fallback = %v, Font = %q; want true and that path", latin, res.Fallback, res.Font)
	}
}

// misalign rewrites a single font so that every table after the first starts
// one byte past a 4-byte boundary, as in WenQuanYi's files.
func misalign(t *testing.T, ttf []byte) []byte {
	numTables := int(binary.BigEndian.Uint16(ttf[4:]))
	dirLen := 12 + 16*numTables
	out := append([]byte(nil), ttf[:dirLen]...)
	for i := 0; i < numTables; i++ {
		rec := out[12+16*i:]
		o, n := binary.BigEndian.Uint32(rec[8:]), binary.BigEndian.Uint32(rec[12:])
		for len(out)%4 != 1 {
			out = append(out, 0)
		}
		binary.BigEndian.PutUint32(rec[8:], uint32(len(out)))
		out = append(out, ttf[o:o+n]...)
	}
	if _, err := opentype.Parse(out); err == nil {
		t.Fatal("misaligned font parsed directly; the test no longer exercises alignFont")
	}
	return out
}

func TestMisalignedFont(t *testing.T) {
	bad := misalign(t, goregular.TTF)
	// As a collection too: "ttcf", version 1.0, one font at offset 16,
	// whose table offsets count from the start of the file.
	ttc := append([]byte("ttcf\x00\x01\x00\x00\x00\x00\x00\x01\x00\x00\x00\x10"), bad...)
	for i := 0; i < int(binary.BigEndian.Uint16(bad[4:])); i++ {
		rec := ttc[16+12+16*i:]
		binary.BigEndian.PutUint32(rec[8:], binary.BigEndian.Uint32(rec[8:])+16)
	}
	for name, data := range map[string][]byte{"ttf": bad, "ttc": ttc} {
		fonts, err := parseFonts(data)
		if err != nil || len(fonts) != 1 {
			t.Fatalf("parseFonts(misaligned %s) = %d fonts, %v; want 1", name, len(fonts), err)
		}
		if !hasAll(fonts[0], latinProbe) {
			t.Errorf("parseFonts(misaligned %s): font lacks %q", name, string(latinProbe))
		}
	}
}

func TestWritePNG(t *testing.T) {
	var buf bytes.Buffer
	if _, err := WritePNG(&buf, sample()); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("png.Decode(WritePNG output) = %v", err)
	}
	if got := img.Bounds(); got != image.Rect(0, 0, Width, Height) {
		t.Errorf("PNG bounds = %v; want %dx%d", got, Width, Height)
	}
	// 300 dpi = 11811 pixels a metre, in a pHYs chunk after IHDR.
	phys := buf.Bytes()[33:54]
	want := []byte{0, 0, 0, 9, 'p', 'H', 'Y', 's', 0, 0, 0x2e, 0x23, 0, 0, 0x2e, 0x23, 1}
	if !bytes.Equal(phys[:17], want) {
		t.Errorf("chunk after IHDR = % x; want pHYs % x", phys[:17], want)
	}
}

func TestLongFieldIsCut(t *testing.T) {
	c := sample()
	c.Issuer = strings.Repeat("Metropolitan Transit Authority ", 5)
	res := render(t, c)
	found := false
	for _, w := range res.Warnings {
		found = found || strings.HasPrefix(w, "Issuer: too long")
	}
	if !found {
		t.Errorf("Render(long Issuer) warnings = %q; want one for Issuer", res.Warnings)
	}
}

// TestWholeVoucherIDFits: a 16-byte id is printed whole, in groups of
// four, without cutting, above the bottom strip.
func TestWholeVoucherIDFits(t *testing.T) {
	noSystemFonts(t)
	c := sample()
	res := render(t, c)
	for _, w := range res.Warnings {
		if strings.HasPrefix(w, "VoucherID") {
			t.Errorf("Render warnings = %q; want the voucher id uncut", res.Warnings)
		}
	}
	if got, want := idLines(c.VoucherID), []string{"7f3a 91c2 0b1d 2e3f", "4051 6273 8495 a6b7"}; !slices.Equal(got, want) {
		t.Errorf("idLines(%q) = %q; want %q", c.VoucherID, got, want)
	}
	// Nothing dark is drawn into the white rows above the bottom strip.
	for y := Height - stripH - 6; y < Height-stripH; y++ {
		for x := 0; x < margin+500; x++ {
			if r, _, _, _ := res.Image.At(x, y).RGBA(); r < 0x8000 {
				t.Fatalf("dark pixel at (%d, %d): the text column runs into the bottom strip", x, y)
			}
		}
	}
}

func FuzzParseFonts(f *testing.F) {
	f.Add(goregular.TTF[:512])
	f.Add([]byte("ttcf\x00\x01\x00\x00\x00\x00\x00\x02\x00\x00\x00\x14\xff\xff\xff\xff"))
	f.Add([]byte("\x00\x01\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00cmap\x00\x00\x00\x00\x00\x00\x00\x21\x00\x00\x00\x04"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fonts, _ := parseFonts(data)
		for _, fnt := range fonts {
			hasAll(fnt, cjkProbe)
		}
	})
}

func BenchmarkRender(b *testing.B) {
	c := sample()
	for b.Loop() {
		if _, err := Render(c); err != nil {
			b.Fatal(err)
		}
	}
}
