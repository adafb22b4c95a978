package qr

import (
	"image"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode/detector"
)

// TestSlantedFindersSquashed draws a code squashed to 0.55 of its width
// in height, which gozxing's finder refuses (the column through a
// pattern's middle must be within 40% of the row), and finds its three
// finder patterns with slantedFinders, each within a module of its
// centre, and nothing else.
func TestSlantedFindersSquashed(t *testing.T) {
	text := randomVoucher(rand.New(rand.NewPCG(3, 4)), 300)
	code, err := moduleMatrix(text)
	if err != nil {
		t.Fatal(err)
	}
	const sx, sy = 5.0, 2.75 // pixels a module across and down
	n := code.Bounds().Dx()
	img := image.NewGray(image.Rect(0, 0, int(float64(n)*sx), int(float64(n)*sy)))
	for y := range img.Rect.Dy() {
		for x := range img.Rect.Dx() {
			img.Pix[y*img.Stride+x] = code.GrayAt(int(float64(x)/sx), int(float64(y)/sy)).Y
		}
	}
	var b binarizer
	m := b.hybrid(view(img, img.Bounds()))
	hard := map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_TRY_HARDER: true}
	finder := detector.NewFinderPatternFinder(m, nil)
	if _, err := finder.Find(hard); err == nil {
		t.Fatal("gozxing's finder found three finder patterns; the test needs a code it refuses")
	}
	var pre prescan
	got := pre.slantedFinders(m, 3, finder.GetPossibleCenters())
	q, dim := float64(QuietZone), float64(n-2*QuietZone)
	want := [][2]float64{{q + 3.5, q + 3.5}, {q + dim - 3.5, q + 3.5}, {q + 3.5, q + dim - 3.5}}
	for _, c := range finder.GetPossibleCenters() {
		for i, w := range want {
			if math.Abs(c.GetX()/sx-w[0]) < 1 && math.Abs(c.GetY()/sy-w[1]) < 1 {
				want = append(want[:i], want[i+1:]...)
				break
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("slantedFinders found %d candidates; want the %d finder patterns gozxing's finder missed", len(got), len(want))
	}
	for _, c := range got {
		near := false
		for _, w := range want {
			near = near || math.Abs(c.GetX()/sx-w[0]) < 1 && math.Abs(c.GetY()/sy-w[1]) < 1
		}
		if !near {
			t.Errorf("candidate at module (%.1f, %.1f); want one of %v", c.GetX()/sx, c.GetY()/sy, want)
		}
	}
}

// TestSlantedFindersReads draws fresh vouchers in the strong perspective
// placement (seed 11, not a benchmark seed) and decodes those frames
// where gozxing's finder sees only one or two finder pattern candidates:
// the case slantedFinders completes. Most must read.
func TestSlantedFindersReads(t *testing.T) {
	if testing.Short() {
		t.Skip("renders 160 frames")
	}
	const seed, n = 11, 160
	texts, err := freshVouchers(seed, n)
	if err != nil {
		t.Fatal(err)
	}
	pl := placementNamed(t, "strong perspective")
	hard := map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_TRY_HARDER: true}
	var d Decoder
	partial, read := 0, 0
	for v, text := range texts {
		img, _ := freshImage(t, seed, v, text, pl)
		var b binarizer
		finder := detector.NewFinderPatternFinder(b.hybrid(view(img, img.Bounds())), nil)
		finder.Find(hard)
		if k := len(finder.GetPossibleCenters()); k == 0 || k > 2 {
			continue
		}
		partial++
		if got, err := d.DecodeGray(img); err == nil && string(got) == text {
			read++
		}
	}
	if partial < 3 {
		t.Fatalf("%d frames with one or two finder candidates; want at least 3", partial)
	}
	if 4*read < 3*partial {
		t.Errorf("read %d of %d frames with one or two finder candidates; want at least three quarters", read, partial)
	}
	t.Logf("read %d of %d frames with one or two finder candidates", read, partial)
}
