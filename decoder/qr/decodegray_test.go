package qr

import (
	"bytes"
	"errors"
	"image"
	"image/draw"
	"math/rand/v2"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// frameWith returns a white 640×480 frame with code drawn at (x, y).
func frameWith(code *image.Gray, x, y int) *image.Gray {
	f := image.NewGray(image.Rect(0, 0, frameW, frameH))
	draw.Draw(f, f.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(f, code.Bounds().Add(image.Pt(x, y)), code, image.Point{}, draw.Src)
	return f
}

func TestDecodeGray(t *testing.T) {
	text := voucherText(300)
	code, err := Encode(text, 260, "M") // 4 px a module
	if err != nil {
		t.Fatal(err)
	}
	frame := frameWith(code, 300, 180)
	darkFrame := invert(frame)
	big, err := Encode(text, 455, "M") // 7 px a module, for downscaling
	if err != nil {
		t.Fatal(err)
	}
	hd := image.NewGray(image.Rect(0, 0, 1280, 960))
	draw.Draw(hd, hd.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(hd, big.Bounds().Add(image.Pt(700, 400)), big, image.Point{}, draw.Src)
	// A frame whose bounds do not start at the origin, as a SubImage.
	sub := frame.SubImage(image.Rect(250, 100, 640, 480)).(*image.Gray)

	tests := []struct {
		name string
		img  *image.Gray
		opts Options
	}{
		{"frame", frame, DefaultOptions()},
		{"roi", frame, Options{ROI: image.Rect(280, 160, 580, 460), TryInverted: true}},
		{"roi partly outside", frame, Options{ROI: image.Rect(280, 160, 900, 900)}},
		{"downscale 2", hd, Options{Downscale: 2, TryInverted: true}},
		{"downscale 2 roi", hd, Options{Downscale: 2, ROI: image.Rect(640, 320, 1280, 960)}},
		{"inverted", darkFrame, DefaultOptions()},
		{"inverted try harder", darkFrame, Options{TryInverted: true, TryHarder: true}},
		{"subimage", sub, DefaultOptions()},
		{"subimage roi", sub, Options{ROI: image.Rect(290, 170, 570, 450)}},
	}
	var d Decoder
	for _, tt := range tests {
		if err := d.SetOptions(tt.opts); err != nil {
			t.Fatalf("%s: SetOptions = %v", tt.name, err)
		}
		got, err := d.DecodeGray(tt.img)
		if err != nil || string(got) != text {
			t.Errorf("%s: DecodeGray = %q, %v; want %q", tt.name, got, err, text)
		}
	}
}

func TestDecodeGrayNotFound(t *testing.T) {
	code, err := Encode(voucherText(300), 260, "M")
	if err != nil {
		t.Fatal(err)
	}
	frame := frameWith(code, 300, 180)
	tests := []struct {
		name string
		img  *image.Gray
		opts Options
	}{
		{"nil", nil, DefaultOptions()},
		{"roi beside the code", frame, Options{ROI: image.Rect(0, 0, 280, 480)}},
		{"roi outside the image", frame, Options{ROI: image.Rect(1000, 1000, 1200, 1200)}},
		{"inverted without retry", invert(frame), Options{}},
	}
	var d Decoder
	for _, tt := range tests {
		if err := d.SetOptions(tt.opts); err != nil {
			t.Fatal(err)
		}
		if got, err := d.DecodeGray(tt.img); !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrUnreadable) {
			t.Errorf("%s: DecodeGray = %q, %v; want ErrNotFound or ErrUnreadable", tt.name, got, err)
		}
		if d.LastText() != "" {
			t.Errorf("%s: LastText = %q after a failure; want \"\"", tt.name, d.LastText())
		}
	}
}

func TestSetOptions(t *testing.T) {
	var d Decoder
	if got := d.Options(); got != DefaultOptions() {
		t.Errorf("zero Decoder Options() = %+v; want %+v", got, DefaultOptions())
	}
	for _, n := range []int{-1, MaxDownscale + 1} {
		if err := d.SetOptions(Options{Downscale: n}); err == nil {
			t.Errorf("SetOptions(Downscale %d) = nil; want an error", n)
		}
	}
	if got := d.Options(); got != DefaultOptions() {
		t.Errorf("Options() after rejected SetOptions = %+v; want unchanged", got)
	}
}

// encodeBytes draws raw bytes in byte mode without an ECI designator, as
// many generators do: gozxing maps the runes U+0000–U+00FF of an
// ISO-8859-1 string onto single bytes.
func encodeBytes(t *testing.T, payload []byte) *image.Gray {
	t.Helper()
	r := make([]rune, len(payload))
	for i, b := range payload {
		r[i] = rune(b)
	}
	hints := map[gozxing.EncodeHintType]interface{}{
		gozxing.EncodeHintType_ERROR_CORRECTION: "M",
		gozxing.EncodeHintType_CHARACTER_SET:    "ISO-8859-1",
	}
	m, err := qrcode.NewQRCodeWriter().Encode(string(r), gozxing.BarcodeFormat_QR_CODE, 400, 400, hints)
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewGray(image.Rect(0, 0, 400, 400))
	for y := 0; y < 400; y++ {
		for x := 0; x < 400; x++ {
			if !m.Get(x, y) {
				img.Pix[y*img.Stride+x] = 0xff
			}
		}
	}
	return img
}

func TestBytePayloads(t *testing.T) {
	high := make([]byte, 0, 0x80)
	for b := 0x80; b <= 0xff; b++ {
		high = append(high, byte(b))
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	rnd := make([]byte, 120)
	r := rand.New(rand.NewPCG(5, 6))
	for i := range rnd {
		rnd[i] = byte(r.UintN(256))
	}
	// Bytes that gozxing would take for Shift_JIS (and convert).
	sjis := []byte{0x93, 0xfa, 0x96, 0x7b, 0x8c, 0xea}

	var d Decoder
	for name, payload := range map[string][]byte{
		"0x80-0xff":      high,
		"all bytes":      all,
		"random":         rnd,
		"shift_jis":      sjis,
		"ascii and 0xe9": []byte("WK1:caf\xe9"),
	} {
		got, err := d.DecodeGray(encodeBytes(t, payload))
		if err != nil || !bytes.Equal(got, payload) {
			t.Errorf("%s: DecodeGray = %x, %v; want %x", name, got, err, payload)
		}
	}

	// Encode marks non-ASCII texts as UTF-8: the payload is the UTF-8.
	for _, text := range []string{"张*明 成人", "票价：¥3.00 — 北京地铁", "caf\u00e9"} {
		code, err := Encode(text, 400, "M")
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.DecodeGray(code)
		if err != nil || string(got) != text || d.LastText() != text {
			t.Errorf("DecodeGray(Encode(%q)) = %q (text %q), %v; want the same bytes", text, got, d.LastText(), err)
		}
	}
}

// Random images must never panic, whatever the options.
func TestDecodeGrayRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var d Decoder
	for i := 0; i < 200; i++ {
		w, h := 1+r.IntN(120), 1+r.IntN(120)
		g := image.NewGray(image.Rect(0, 0, w, h))
		for k := range g.Pix {
			if r.IntN(3) == 0 {
				g.Pix[k] = uint8(r.UintN(256))
			} else if r.IntN(2) == 0 {
				g.Pix[k] = 255
			}
		}
		opts := Options{
			ROI:         image.Rect(r.IntN(40)-10, r.IntN(40)-10, r.IntN(200), r.IntN(200)),
			Downscale:   r.IntN(4),
			TryInverted: r.IntN(2) == 0,
			TryHarder:   r.IntN(2) == 0,
		}
		if err := d.SetOptions(opts); err != nil {
			t.Fatal(err)
		}
		_, _ = d.DecodeGray(g)
	}
}

func FuzzDecodeGray(f *testing.F) {
	img, err := Encode("WK1:FUZZ", MinSize, "L")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(MinSize), uint8(0), img.Pix)
	f.Add(uint8(40), uint8(1), bytes.Repeat([]byte{0, 255, 255, 0}, 400))
	f.Add(uint8(21), uint8(2), []byte{})
	var d Decoder
	f.Fuzz(func(t *testing.T, width, flags uint8, pix []byte) {
		w := int(width)%64 + 1
		h := len(pix)/w + 1
		g := image.NewGray(image.Rect(0, 0, w, h))
		copy(g.Pix, pix)
		opts := Options{
			Downscale:   int(flags & 3),
			TryInverted: flags&4 != 0,
			TryHarder:   flags&8 != 0,
		}
		if flags&16 != 0 {
			opts.ROI = image.Rect(1, 1, w-1, h-1)
		}
		if err := d.SetOptions(opts); err != nil {
			t.Fatal(err)
		}
		_, _ = d.DecodeGray(g)
	})
}

// BenchmarkDecodeGray640x480 decodes a voucher in a camera frame, and an
// empty frame, where nothing looks like a finder pattern: one
// binarization and a prescan, no search.
func BenchmarkDecodeGray640x480(b *testing.B) {
	code, err := Encode(voucherText(300), 260, "M")
	if err != nil {
		b.Fatal(err)
	}
	frame := frameWith(code, 300, 180)
	empty := frameWith(image.NewGray(image.Rect(0, 0, 0, 0)), 0, 0)
	rotated, _, err := renderFrame("rotation", 0)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		img  *image.Gray
		ok   bool
	}{
		{"code", frame, true},
		{"inverted", invert(frame), true},
		{"rotated", rotated, true},
		{"empty", empty, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var d Decoder
			b.ReportAllocs()
			for b.Loop() {
				_, err := d.DecodeGray(bc.img)
				if (err == nil) != bc.ok {
					b.Fatalf("DecodeGray = %v", err)
				}
			}
		})
	}
}
