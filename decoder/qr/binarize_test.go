package qr

import (
	"image"
	"math/rand/v2"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode/detector"
)

// TestHybridMatchesGozxing checks that binarizer.hybrid sets exactly the
// bits gozxing's HybridBinarizer sets, for sizes that are and are not
// multiples of the block size, on strided sub-images, and when the
// matrix is reused for a second image of the same size.
func TestHybridMatchesGozxing(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var b binarizer
	for _, sz := range [][2]int{{40, 40}, {64, 48}, {101, 67}, {640, 480}, {333, 250}, {333, 250}} {
		w, h := sz[0], sz[1]
		full := image.NewGray(image.Rect(0, 0, w+13, h+5))
		// Smooth shapes with texture, so that both flat and busy blocks occur.
		for y := range full.Rect.Dy() {
			for x := range full.Rect.Dx() {
				v := 128.0
				if (x/(3+r.IntN(2))+y/5)%2 == 0 && x < w/2 {
					v = 40
				}
				v += r.NormFloat64() * 10
				full.Pix[y*full.Stride+x] = clamp8(v)
			}
		}
		sub := full.SubImage(image.Rect(7, 3, 7+w, 3+h)).(*image.Gray)
		p := view(sub, sub.Bounds())
		got := b.hybrid(p)
		var src lumaSource
		src.reset(p)
		want, err := gozxing.NewHybridBinarizer(&src).GetBlackMatrix()
		if err != nil {
			t.Fatal(err)
		}
		for y := range h {
			for x := range w {
				if got.Get(x, y) != want.Get(x, y) {
					t.Fatalf("%dx%d: bit (%d, %d) = %v; gozxing says %v", w, h, x, y, got.Get(x, y), want.Get(x, y))
				}
			}
		}
	}
}

// TestGlobalMatchesGozxing checks binarizer.global against gozxing's
// GlobalHistogramBinarizer, including an image too flat to binarize.
func TestGlobalMatchesGozxing(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var b binarizer
	for _, tc := range []struct {
		w, h       int
		dark, span float64
	}{{64, 48, 30, 180}, {101, 67, 90, 60}, {640, 480, 20, 200}, {50, 50, 120, 4}} {
		g := image.NewGray(image.Rect(0, 0, tc.w, tc.h))
		for y := range tc.h {
			for x := range tc.w {
				v := tc.dark + tc.span
				if (x/4+y/6)%3 == 0 {
					v = tc.dark
				}
				g.Pix[y*g.Stride+x] = clamp8(v + r.NormFloat64()*3)
			}
		}
		p := view(g, g.Bounds())
		got, ok := b.global(p)
		var src lumaSource
		src.reset(p)
		want, err := gozxing.NewGlobalHistgramBinarizer(&src).GetBlackMatrix()
		if ok != (err == nil) {
			t.Fatalf("%dx%d span %v: global ok = %v; gozxing err = %v", tc.w, tc.h, tc.span, ok, err)
		}
		if !ok {
			continue
		}
		for y := range tc.h {
			for x := range tc.w {
				if got.Get(x, y) != want.Get(x, y) {
					t.Fatalf("%dx%d: bit (%d, %d) = %v; gozxing says %v", tc.w, tc.h, x, y, got.Get(x, y), want.Get(x, y))
				}
			}
		}
	}
}

// TestMidpointsKeepBlurredFinders reads a blurred voucher of the
// development seed whose finder patterns stand beside the white card: with
// block means (gozxing's) the light rings turn dark and the finder finds
// no three patterns; with the black points moved towards block midpoints
// it does, and the decoder reads the voucher.
func TestMidpointsKeepBlurredFinders(t *testing.T) {
	img, text := devFrame(t, "blur", 178)
	hard := map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_TRY_HARDER: true}
	var b binarizer
	p := view(img, img.Bounds())
	if _, err := detector.NewFinderPatternFinder(b.hybrid(p), nil).Find(hard); err == nil {
		t.Error("block means: three finder patterns found; the case tests nothing")
	}
	if _, err := detector.NewFinderPatternFinder(b.local(p, true), nil).Find(hard); err != nil {
		t.Errorf("black points towards block midpoints: %v, want three finder patterns", err)
	}
	var d Decoder
	if got, err := d.DecodeGray(img); err != nil || string(got) != text {
		t.Errorf("DecodeGray = %q, %v; want the voucher", got, err)
	}
}

// devFrame returns the first frame of voucher v of the development seed in
// the named placement, as the fresh-voucher benchmark draws it, and the
// voucher's text.
func devFrame(t *testing.T, place string, v int) (*image.Gray, string) {
	t.Helper()
	texts, err := freshVouchers(devSeed, v+1)
	if err != nil {
		t.Fatal(err)
	}
	code, err := moduleMatrix(texts[v])
	if err != nil {
		t.Fatal(err)
	}
	pl := placementNamed(t, place)
	img, err := freshFrame(code, pl, rand.New(rand.NewPCG(devSeed, frameSeed(v, pl.name, 0))))
	if err != nil {
		t.Fatal(err)
	}
	return img, texts[v]
}
