package qr

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/draw"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const base45Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

// voucherText returns a deterministic "WK1:" text of n base45 characters.
func voucherText(n int) string {
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString("WK1:")
	for b.Len() < n {
		b.WriteByte(base45Alphabet[r.IntN(len(base45Alphabet))])
	}
	return b.String()
}

var roundTripTexts = []struct {
	name, text string
}{
	{"voucher", voucherText(300)},
	{"alphanumeric", "WK1:A B $%*+-./: 0123456789 XYZ"},
	{"utf8", "张*明 成人 – Fahrkarte für 2 €"},
	{"ascii lower case", "https://example.org/v?id=abc&x=~\\"},
	{"numeric", "0123456789"},
}

func TestRoundTrip(t *testing.T) {
	var d Decoder
	for _, tt := range roundTripTexts {
		for _, level := range []string{"", "L", "m", "Q", "H"} {
			img, err := Encode(tt.text, 400, level)
			if err != nil {
				t.Fatalf("%s: Encode(level %q) = %v", tt.name, level, err)
			}
			if got := img.Bounds(); got != image.Rect(0, 0, 400, 400) {
				t.Errorf("%s: bounds = %v; want 400x400", tt.name, got)
			}
			got, err := d.Decode(img)
			if err != nil {
				t.Fatalf("%s: Decode(level %q) = %v", tt.name, level, err)
			}
			if string(got) != tt.text {
				t.Errorf("%s: Decode(level %q) = %q; want %q", tt.name, level, got, tt.text)
			}
		}
	}
}

// A 300-character base45 text fits version 10 at level M (57 modules) only
// in alphanumeric mode; in byte mode it needs version 13.
func TestBase45UsesAlphanumericMode(t *testing.T) {
	text := voucherText(300)
	const v10 = 57 + 2*QuietZone
	if _, err := Encode(text, v10, "M"); err != nil {
		t.Fatalf("Encode(300 base45 chars, %d px) = %v; want a version-10 code", v10, err)
	}
	if _, err := Encode(strings.ToLower(text), v10, "M"); !errors.Is(err, ErrSize) {
		t.Fatalf("Encode(lower case, %d px) = %v; want ErrSize (byte mode is larger)", v10, err)
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name, text string
		size       int
		level      string
		want       error
	}{
		{"empty", "", 400, "", ErrText},
		{"invalid utf8", "WK1:\xff", 400, "", ErrText},
		{"too long", strings.Repeat("A", MaxTextLen+1), MaxSize, "L", ErrText},
		{"over version 40", strings.Repeat("a", 3000), MaxSize, "H", ErrText},
		{"level", "WK1:ABC", 400, "X", ErrLevel},
		{"size too small", "WK1:ABC", MinSize - 1, "", ErrSize},
		{"size too large", "WK1:ABC", MaxSize + 1, "", ErrSize},
		{"code larger than size", voucherText(300), 60, "", ErrSize},
	}
	for _, tt := range tests {
		if _, err := Encode(tt.text, tt.size, tt.level); !errors.Is(err, tt.want) {
			t.Errorf("%s: Encode(%d chars, %d, %q) = %v; want %v", tt.name, len(tt.text), tt.size, tt.level, err, tt.want)
		}
	}
}

func TestQuietZone(t *testing.T) {
	img, err := Encode(voucherText(300), 400, "M")
	if err != nil {
		t.Fatal(err)
	}
	// 65 modules in 400 px: 6 px a module, so at least 4*6 white px.
	for i := 0; i < 4*6; i++ {
		for j := 0; j < 400; j++ {
			for _, p := range [][2]int{{i, j}, {j, i}, {399 - i, j}, {j, 399 - i}} {
				if v := img.GrayAt(p[0], p[1]).Y; v != 0xff {
					t.Fatalf("pixel %v = %d; want white quiet zone", p, v)
				}
			}
		}
	}
}

func invert(src *image.Gray) *image.Gray {
	dst := image.NewGray(src.Bounds())
	for i, v := range src.Pix {
		dst.Pix[i] = 255 - v
	}
	return dst
}

func TestDecodeInverted(t *testing.T) {
	text := voucherText(300)
	img, err := Encode(text, 400, "M")
	if err != nil {
		t.Fatal(err)
	}
	var d Decoder
	got, err := d.Decode(invert(img))
	if err != nil || string(got) != text {
		t.Fatalf("Decode(inverted) = %q, %v; want %q", got, err, text)
	}

	// Dark mode on a phone: light grey modules on near-black, as RGBA,
	// placed off-centre in a larger frame whose bounds do not start at 0.
	frame := image.NewRGBA(image.Rect(-50, -30, 650, 530))
	draw.Draw(frame, frame.Bounds(), image.NewUniform(color.RGBA{0x12, 0x12, 0x12, 0xff}), image.Point{}, draw.Src)
	for y := 0; y < 400; y++ {
		for x := 0; x < 400; x++ {
			if img.GrayAt(x, y).Y == 0 {
				frame.Set(x+100, y+40, color.RGBA{0xe0, 0xe0, 0xe0, 0xff})
			}
		}
	}
	got, err = d.Decode(frame)
	if err != nil || string(got) != text {
		t.Fatalf("Decode(dark RGBA frame) = %q, %v; want %q", got, err, text)
	}
}

func TestDecodeImageTypes(t *testing.T) {
	text := "WK1:IMAGE TYPES"
	g, err := Encode(text, 200, "")
	if err != nil {
		t.Fatal(err)
	}
	b := g.Bounds()
	nrgba := image.NewNRGBA(b)
	draw.Draw(nrgba, b, g, b.Min, draw.Src)
	ycc := image.NewYCbCr(b, image.YCbCrSubsampleRatio420)
	copy(ycc.Y, g.Pix)
	for i := range ycc.Cb {
		ycc.Cb[i], ycc.Cr[i] = 128, 128
	}
	g16 := image.NewGray16(b)
	draw.Draw(g16, b, g, b.Min, draw.Src)
	sub := image.NewGray(image.Rect(0, 0, 300, 300))
	draw.Draw(sub, sub.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(sub, image.Rect(100, 100, 300, 300), g, b.Min, draw.Src)

	var d Decoder
	for name, img := range map[string]image.Image{
		"NRGBA":    nrgba,
		"YCbCr":    ycc,
		"Gray16":   g16,
		"SubImage": sub.SubImage(image.Rect(90, 90, 300, 300)),
	} {
		got, err := d.Decode(img)
		if err != nil || string(got) != text {
			t.Errorf("Decode(%s) = %q, %v; want %q", name, got, err, text)
		}
	}
}

func TestDecodeNotFound(t *testing.T) {
	white := image.NewGray(image.Rect(0, 0, 640, 480))
	draw.Draw(white, white.Bounds(), image.White, image.Point{}, draw.Src)
	noise := image.NewGray(image.Rect(0, 0, 320, 240))
	r := rand.New(rand.NewPCG(3, 4))
	for i := range noise.Pix {
		noise.Pix[i] = uint8(r.UintN(256))
	}
	var d Decoder
	for name, img := range map[string]image.Image{
		"nil":         nil,
		"white":       white,
		"black":       image.NewGray(image.Rect(0, 0, 640, 480)),
		"transparent": image.NewRGBA(image.Rect(0, 0, 100, 100)),
		"tiny":        image.NewGray(image.Rect(0, 0, 5, 5)),
		"empty":       image.NewGray(image.Rectangle{}),
		"noise":       noise,
	} {
		got, err := d.Decode(img)
		if err == nil {
			t.Errorf("Decode(%s) = %q; want an error", name, got)
		} else if name != "noise" && !errors.Is(err, ErrNotFound) {
			t.Errorf("Decode(%s) = %v; want ErrNotFound", name, err)
		}
	}
}

func TestDecodeTooLarge(t *testing.T) {
	// A uniform image claims its size without holding the pixels.
	img := &image.Uniform{C: color.White}
	var d Decoder
	if _, err := d.Decode(img); !errors.Is(err, ErrImageTooLarge) {
		t.Fatalf("Decode(huge uniform) = %v; want ErrImageTooLarge", err)
	}
}

// The decoder keeps buffers between calls: a large image then a small one
// must not see stale pixels.
func TestDecoderReuse(t *testing.T) {
	var d Decoder
	for i, size := range []int{600, 200, 400, 200} {
		text := voucherText(100 + 40*i)
		img, err := Encode(text, size, "")
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			img = invert(img)
		}
		got, err := d.Decode(img)
		if err != nil || string(got) != text {
			t.Fatalf("call %d: Decode = %q, %v; want %q", i, got, err, text)
		}
	}
}

// zbar is an independent reader: it proves the PNGs are standard QR codes.
func TestZbarReadsPNG(t *testing.T) {
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Skip("zbarimg not installed (Debian package zbar-tools)")
	}
	dir := t.TempDir()
	for _, tt := range roundTripTexts {
		var buf bytes.Buffer
		if err := EncodePNG(&buf, tt.text, 400); err != nil {
			t.Fatalf("%s: EncodePNG = %v", tt.name, err)
		}
		path := filepath.Join(dir, "code.png")
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(zbar, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", path).Output()
		if err != nil {
			t.Fatalf("%s: zbarimg: %v", tt.name, err)
		}
		if got := strings.TrimSuffix(string(out), "\n"); got != tt.text {
			t.Errorf("%s: zbarimg read %q; want %q", tt.name, got, tt.text)
		}
	}
}

func FuzzDecode(f *testing.F) {
	img, err := Encode("WK1:FUZZ", MinSize, "L")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(MinSize), img.Pix)
	f.Add(uint8(40), bytes.Repeat([]byte{0, 255, 255, 0}, 400))
	f.Add(uint8(21), []byte{})
	var d Decoder
	f.Fuzz(func(t *testing.T, width uint8, pix []byte) {
		w := int(width)%64 + 1
		h := len(pix)/w + 1
		g := image.NewGray(image.Rect(0, 0, w, h))
		copy(g.Pix, pix)
		text, err := d.Decode(g)
		if err == nil && len(text) == 0 {
			t.Skip("empty code")
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	text := voucherText(300)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(text, 400, "M"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	text := voucherText(300)
	img, err := Encode(text, 400, "M")
	if err != nil {
		b.Fatal(err)
	}
	frame := image.NewGray(image.Rect(0, 0, 640, 480))
	draw.Draw(frame, frame.Bounds(), image.White, image.Point{}, draw.Src)
	for name, img := range map[string]image.Image{
		"code":        img,
		"inverted":    invert(img),
		"empty frame": frame,
	} {
		b.Run(name, func(b *testing.B) {
			var d Decoder
			b.ReportAllocs()
			for b.Loop() {
				_, err := d.Decode(img)
				if name == "empty frame" {
					if !errors.Is(err, ErrNotFound) {
						b.Fatal(err)
					}
				} else if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
