package camera

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
)

func TestYUYVToGray(t *testing.T) {
	tests := []struct {
		name string
		src  []byte
		w, h int
		want []byte
		err  error
	}{
		{"2x1", []byte{10, 128, 20, 128}, 2, 1, []byte{10, 20}, nil},
		{"4x2", []byte{
			1, 0xaa, 2, 0xbb, 3, 0xcc, 4, 0xdd,
			5, 0xaa, 6, 0xbb, 7, 0xcc, 8, 0xdd,
		}, 4, 2, []byte{1, 2, 3, 4, 5, 6, 7, 8}, nil},
		{"extra bytes ignored", []byte{0, 1, 255, 3, 9, 9}, 2, 1, []byte{0, 255}, nil},
		{"short", []byte{1, 2, 3}, 2, 1, nil, ErrBadFrame},
		{"odd width", []byte{1, 2, 3, 4, 5, 6}, 3, 1, nil, ErrBadFrame},
		{"zero", nil, 0, 0, nil, ErrBadFrame},
		{"too wide", nil, MaxFrameSide + 2, 1, nil, ErrBadFrame},
	}
	for _, tt := range tests {
		g, err := YUYVToGray(nil, tt.src, tt.w, tt.h)
		if !errors.Is(err, tt.err) {
			t.Errorf("%s: YUYVToGray(%v, %d, %d) error = %v; want %v", tt.name, tt.src, tt.w, tt.h, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		if !bytes.Equal(g.Pix, tt.want) || g.Rect != image.Rect(0, 0, tt.w, tt.h) || g.Stride != tt.w {
			t.Errorf("%s: YUYVToGray(%v, %d, %d) = %v %v; want %v", tt.name, tt.src, tt.w, tt.h, g.Pix, g.Rect, tt.want)
		}
	}
}

func TestYUYVToGrayReuses(t *testing.T) {
	dst := image.NewGray(image.Rect(0, 0, 4, 4))
	g, err := YUYVToGray(dst, []byte{7, 0, 8, 0}, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if &g.Pix[0] != &dst.Pix[0] {
		t.Error("YUYVToGray allocated although dst was large enough")
	}
	if !bytes.Equal(g.Pix, []byte{7, 8}) || g.Bounds().Dx() != 2 || g.Bounds().Dy() != 1 {
		t.Errorf("YUYVToGray = %v %v; want [7 8] 2x1", g.Pix, g.Bounds())
	}
}

// testPattern is a gray image with a diagonal gradient.
func testPattern(w, h int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			g.Pix[y*w+x] = uint8((x*255/w + y*255/h) / 2)
		}
	}
	return g
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// colour paints the gray pattern in a colour image with the same
// luminance, so its JPEG decodes as YCbCr.
func colour(g *image.Gray) *image.RGBA {
	c := image.NewRGBA(g.Bounds())
	for i, y := range g.Pix {
		c.Set(i%g.Stride, i/g.Stride, color.YCbCr{Y: y, Cb: 120, Cr: 136})
	}
	return c
}

func maxDiff(a, b *image.Gray) int {
	d := 0
	for i := range a.Pix {
		d = max(d, abs(int(a.Pix[i])-int(b.Pix[i])))
	}
	return d
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestJPEGToGray(t *testing.T) {
	want := testPattern(64, 48)
	for _, tt := range []struct {
		name string
		img  image.Image
	}{
		{"gray jpeg", want},
		{"ycbcr jpeg", colour(want)},
	} {
		data := encodeJPEG(t, tt.img)
		g, err := JPEGToGray(nil, data)
		if err != nil {
			t.Fatalf("%s: JPEGToGray: %v", tt.name, err)
		}
		if g.Bounds() != want.Bounds() {
			t.Fatalf("%s: JPEGToGray bounds %v; want %v", tt.name, g.Bounds(), want.Bounds())
		}
		if d := maxDiff(g, want); d > 8 {
			t.Errorf("%s: JPEGToGray differs from the original by up to %d; want <= 8", tt.name, d)
		}
	}
}

// stripDHT removes the DHT segments of a JPEG, as many cameras send it.
func stripDHT(t *testing.T, data []byte) []byte {
	t.Helper()
	out := []byte{0xff, 0xd8}
	i := 2
	for data[i+1] != 0xda {
		n := 2 + (int(data[i+2])<<8 | int(data[i+3]))
		if data[i+1] != 0xc4 {
			out = append(out, data[i:i+n]...)
		}
		i += n
	}
	return append(out, data[i:]...)
}

func TestJPEGToGrayWithoutHuffmanTables(t *testing.T) {
	data := encodeJPEG(t, colour(testPattern(64, 48)))
	bare := stripDHT(t, data)
	if len(bare) >= len(data) {
		t.Fatal("the test JPEG has no DHT segment")
	}
	if _, err := jpeg.Decode(bytes.NewReader(bare)); err == nil {
		t.Fatal("image/jpeg decoded a JPEG without Huffman tables; the test means nothing")
	}
	want, err := JPEGToGray(nil, data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := JPEGToGray(nil, bare)
	if err != nil {
		t.Fatalf("JPEGToGray without DHT: %v", err)
	}
	if !bytes.Equal(got.Pix, want.Pix) {
		t.Error("JPEGToGray without DHT differs from with the standard tables")
	}
}

func TestJPEGToGrayBad(t *testing.T) {
	data := encodeJPEG(t, testPattern(32, 32))
	for _, in := range [][]byte{nil, {0xff, 0xd8}, data[:len(data)/2], []byte("not a jpeg")} {
		if _, err := JPEGToGray(nil, in); !errors.Is(err, ErrBadFrame) {
			t.Errorf("JPEGToGray(%d bytes) error = %v; want ErrBadFrame", len(in), err)
		}
	}
}

func BenchmarkYUYVToGray640x480(b *testing.B) {
	src := make([]byte, 640*480*2)
	for i := range src {
		src[i] = byte(i)
	}
	var dst *image.Gray
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = YUYVToGray(dst, src, 640, 480); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJPEGToGray640x480(b *testing.B) {
	data := encodeJPEG(b, colour(testPattern(640, 480)))
	var dst *image.Gray
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var err error
		if dst, err = JPEGToGray(dst, data); err != nil {
			b.Fatal(err)
		}
	}
}
