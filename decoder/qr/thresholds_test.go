package qr

import (
	"image"
	"math/rand/v2"
	"testing"
)

// levelFrame draws code (one pixel a module, quiet zone included) at ppm
// pixels a module with its top left at (x0, y0), dark and light modules
// at the given grey levels, on a 640×480 ground of grey level ground;
// then blurs it by sigma and adds sensor noise of σ 2.5.
func levelFrame(code *image.Gray, ppm, x0, y0, dark, light, ground, sigma float64, r *rand.Rand) *image.Gray {
	f := image.NewGray(image.Rect(0, 0, frameW, frameH))
	n := float64(code.Bounds().Dx())
	for y := range frameH {
		for x := range frameW {
			v := ground
			u, w := (float64(x)+0.5-x0)/ppm, (float64(y)+0.5-y0)/ppm
			if u >= 0 && w >= 0 && u < n && w < n {
				v = light
				if code.Pix[int(w)*code.Stride+int(u)] < 128 {
					v = dark
				}
			}
			f.Pix[y*f.Stride+x] = clamp8(v)
		}
	}
	gaussian(f, sigma)
	for k, v := range f.Pix {
		f.Pix[k] = clamp8(float64(v) + r.NormFloat64()*2.5)
	}
	return f
}

// cheapSearches reports whether the local-threshold search or the one at
// global's threshold reads img: the searches there were before the
// thresholds of moreThresholds.
func cheapSearches(t *testing.T, img *image.Gray) bool {
	t.Helper()
	var d Decoder
	d.setUp()
	p := view(img, img.Bounds())
	for _, global := range []bool{false, true} {
		m, err := d.binarize(p, global, false)
		if err != nil {
			continue
		}
		if _, _, _, err := d.search(m, d.hard); err == nil {
			return true
		}
	}
	return false
}

// TestMoreThresholds reads codes that neither the local thresholds nor
// the histogram's main valley separate: a dim code on a bright ground
// (its dark and light levels both below the valley) and a blurred code on
// a mid-grey ground (a frame of the benchmark's blur placement on the
// development seed, whose ground's peak fills the valley), and checks that
// those searches alone do not read them.
func TestMoreThresholds(t *testing.T) {
	text := voucherText(300)
	code, err := moduleMatrix(text)
	if err != nil {
		t.Fatal(err)
	}
	blurFrame, blurText := devFrame(t, "blur", 65)
	for _, tc := range []struct {
		name string
		img  *image.Gray
		text string
	}{
		{"dim code on bright ground", levelFrame(code, 4.2, 100, 30, 85, 130, 205, 0.6, rand.New(rand.NewPCG(3, 4))), text},
		{"blurred code on grey ground", blurFrame, blurText},
	} {
		if cheapSearches(t, tc.img) {
			t.Errorf("%s: read by the local or the main global threshold; the case tests nothing", tc.name)
		}
		var d Decoder
		got, err := d.DecodeGray(tc.img)
		if err != nil || string(got) != tc.text {
			t.Errorf("%s: DecodeGray = %q, %v; want the voucher", tc.name, got, err)
		}
	}
}

// TestMoreThresholdsLevels checks the black points moreThresholds picks
// on a plane of three grey levels: between the two darker ones when the
// main valley falls between them and the lightest, and none within a
// bucket of the main valley.
func TestMoreThresholdsLevels(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 200, 100))
	for y := range 100 {
		for x := range 200 {
			v := uint8(205)
			if x >= 50 && x < 150 {
				v = 130
				if (x/4+y/4)%2 == 0 {
					v = 85
				}
			}
			g.Pix[y*g.Stride+x] = v
		}
	}
	p := view(g, g.Bounds())
	h := histogram(p)
	main, ok := valley(h[:], 0)
	if !ok || main <= 130 || main > 205 {
		t.Fatalf("main valley %d, %v; want between 130 and 205", main, ok)
	}
	ts := moreThresholds(p)
	split := false
	for _, b := range ts {
		if abs(b-main) <= 8 {
			t.Errorf("threshold %d within a bucket of the main valley %d", b, main)
		}
		split = split || b > 85 && b <= 130
	}
	if !split {
		t.Errorf("moreThresholds = %v; want one between 85 and 130", ts)
	}
}
