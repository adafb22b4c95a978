package card

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"wicket/decoder/qr"
)

// photoColour fills the test photo: a colour nothing else on a card has.
var photoColour = color.RGBA{0x20, 0x40, 0xc0, 0xff}

// testPhoto is a w×h photo of photoColour with a red stripe down the
// middle, so a test can see that it was scaled and centred, not cropped
// to one side.
func testPhoto(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := photoColour
			if x >= w/2-w/20 && x < w/2+w/20 {
				c = color.RGBA{0xff, 0, 0, 0xff}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// near reports whether a and b differ by at most 8 in each channel (the
// scaling filter blends at edges).
func near(a, b color.RGBA) bool {
	d := func(x, y uint8) bool { return int(x)-int(y) <= 8 && int(y)-int(x) <= 8 }
	return d(a.R, b.R) && d(a.G, b.G) && d(a.B, b.B)
}

// countNear counts the pixels of r near c.
func countNear(img *image.RGBA, r image.Rectangle, c color.RGBA) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if near(img.RGBAAt(x, y), c) {
				n++
			}
		}
	}
	return n
}

// TestPhotoOnCard: a card with a photo prints it in the photo box, scaled
// to cover it with the middle of the picture kept; the QR code decodes to
// the same bytes as without a photo, and its pixels are the same.
func TestPhotoOnCard(t *testing.T) {
	var d qr.Decoder
	c := sample()
	plain := render(t, c)
	c.Photo = testPhoto(600, 600) // square: cut to 3:4 at the sides
	withPhoto := render(t, c)

	box := image.Rect(margin, photoTop, margin+photoW, photoTop+photoH)
	if n := countNear(withPhoto.Image, box, photoColour); n < box.Dx()*box.Dy()*3/4 {
		t.Errorf("photo box has %d of %d pixels in the photo's colour; want most", n, box.Dx()*box.Dy())
	}
	mid := image.Rect(box.Min.X+box.Dx()/2-2, box.Min.Y, box.Min.X+box.Dx()/2+2, box.Max.Y)
	if n := countNear(withPhoto.Image, mid, color.RGBA{0xff, 0, 0, 0xff}); n != mid.Dx()*mid.Dy() {
		t.Errorf("middle of the photo box: %d of %d pixels red; want the photo's middle stripe there", n, mid.Dx()*mid.Dy())
	}
	if n := countNear(plain.Image, box, photoColour); n != 0 {
		t.Errorf("card without a photo has %d pixels in the photo's colour", n)
	}

	a, err := d.Decode(plain.Image)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Decode(withPhoto.Image)
	if err != nil {
		t.Fatalf("Decode(card with photo) = %v", err)
	}
	if !bytes.Equal(a, b) || string(a) != c.Text {
		t.Errorf("QR payload with a photo = %q; without = %q; want both %q", b, a, c.Text)
	}
	qrX := Width - qrRight - qrSize
	qrY := bandH + (Height-stripH-bandH-qrSize)/2
	qrBox := image.Rect(qrX, qrY, qrX+qrSize, qrY+qrSize)
	for y := qrBox.Min.Y; y < qrBox.Max.Y; y++ {
		for x := qrBox.Min.X; x < qrBox.Max.X; x++ {
			if plain.Image.RGBAAt(x, y) != withPhoto.Image.RGBAAt(x, y) {
				t.Fatalf("QR pixel (%d, %d) differs with a photo", x, y)
			}
		}
	}
	if len(withPhoto.Warnings) != len(plain.Warnings) {
		t.Errorf("warnings with a photo %q; without %q", withPhoto.Warnings, plain.Warnings)
	}
}

// TestReadPhoto: JPEG and PNG are read; a missing file, a file that is
// not an image, another image format, a file too large and an image too
// large or too small are refused with ErrPhoto and a message saying why.
func TestReadPhoto(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	encode := func(f func(*bytes.Buffer, image.Image) error, img image.Image) []byte {
		var b bytes.Buffer
		if err := f(&b, img); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	pngOf := func(b *bytes.Buffer, img image.Image) error { return png.Encode(b, img) }
	jpegOf := func(b *bytes.Buffer, img image.Image) error { return jpeg.Encode(b, img, nil) }
	gifOf := func(b *bytes.Buffer, img image.Image) error { return gif.Encode(b, img, nil) }

	for _, ok := range []string{write("p.png", encode(pngOf, testPhoto(300, 400))), write("p.jpg", encode(jpegOf, testPhoto(300, 400)))} {
		img, err := ReadPhoto(ok)
		if err != nil || img.Bounds().Dx() != 300 || img.Bounds().Dy() != 400 {
			t.Errorf("ReadPhoto(%s) = %v, %v; want the 300 × 400 image", filepath.Base(ok), img, err)
		}
	}
	big := filepath.Join(dir, "big.jpg")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, MaxPhotoBytes+1); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "none.jpg"), "no such file"},
		{"a directory", dir, "not a regular file"},
		{"text", write("notes.jpg", []byte("holder: 张三\n")), "not a JPEG or PNG image"},
		{"gif", write("p.gif", encode(gifOf, testPhoto(200, 200))), "a gif image; convert it to JPEG or PNG"},
		{"file too large", big, "more than 8388608; scale the photo down"},
		{"too many pixels", write("wide.png", encode(pngOf, image.NewGray(image.Rect(0, 0, MaxPhotoSide+1, MinPhotoSide)))), "8001 × 120 pixels, more than"},
		{"thumbnail", write("tiny.png", encode(pngOf, testPhoto(64, 80))), "too coarse"},
	} {
		_, err := ReadPhoto(tc.path)
		if !errors.Is(err, ErrPhoto) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadPhoto(%s) = %v; want ErrPhoto saying %q", tc.name, err, tc.want)
		}
	}
}

// FuzzReadPhoto: no photo file makes ReadPhoto panic.
func FuzzReadPhoto(f *testing.F) {
	var b bytes.Buffer
	png.Encode(&b, testPhoto(MinPhotoSide, MinPhotoSide))
	f.Add(b.Bytes())
	b.Reset()
	jpeg.Encode(&b, testPhoto(MinPhotoSide, MinPhotoSide), nil)
	f.Add(b.Bytes())
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := decodePhoto("fuzz", data)
		if err == nil && img.Bounds().Empty() {
			t.Error("decodePhoto accepted an empty image")
		}
	})
}
