package qr

import (
	"image"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/common"
	"github.com/makiuchi-d/gozxing/qrcode/detector"
)

// blurredCode draws text's code square to the frame, ppm pixels a module,
// its top-left module corner at (off, off), 2×2 supersampled, blurred by
// a Gaussian of sigma pixels. It returns the frame, the transform from
// the code's module coordinates to it, and the code's modules (true
// dark), without the quiet zone.
func blurredCode(t *testing.T, text string, ppm, off, sigma float64) (*image.Gray, *common.PerspectiveTransform, [][]bool) {
	t.Helper()
	code, err := moduleMatrix(text)
	if err != nil {
		t.Fatal(err)
	}
	n := code.Bounds().Dx() // quiet zone (4 modules) included
	side := int(2*off + float64(n-8)*ppm)
	img := image.NewGray(image.Rect(0, 0, side, side))
	for y := range side {
		for x := range side {
			sum := 0.0
			for j := range 2 {
				for i := range 2 {
					u := (float64(x)+(float64(i)+0.5)/2-off)/ppm + 4
					w := (float64(y)+(float64(j)+0.5)/2-off)/ppm + 4
					v := 220.0
					if u >= 0 && w >= 0 && u < float64(n) && w < float64(n) && code.Pix[int(w)*code.Stride+int(u)] < 128 {
						v = 30
					}
					sum += v
				}
			}
			img.Pix[y*img.Stride+x] = uint8(sum / 4)
		}
	}
	gaussian(img, sigma)
	dim := n - 8
	end := off + float64(dim)*ppm
	tr := common.PerspectiveTransform_QuadrilateralToQuadrilateral(
		0, 0, float64(dim), 0, float64(dim), float64(dim), 0, float64(dim),
		off, off, end, off, end, end, off, end)
	truth := make([][]bool, dim)
	for y := range dim {
		truth[y] = make([]bool, dim)
		for x := range dim {
			truth[y][x] = code.Pix[(y+4)*code.Stride+x+4] < 128
		}
	}
	return img, tr, truth
}

// testVoucher issues one fresh voucher for the tests of greyGrid.
func testVoucher(t *testing.T) string {
	t.Helper()
	texts, err := freshVouchers(11, 1)
	if err != nil {
		t.Fatal(err)
	}
	return texts[0]
}

// gridErrors counts the modules of grid that differ from truth.
func gridErrors(grid *gozxing.BitMatrix, truth [][]bool) int {
	n := 0
	for y, row := range truth {
		for x, dark := range row {
			if grid.Get(x, y) != dark {
				n++
			}
		}
	}
	return n
}

// TestGreyGridBlur samples a blurred code with its exact transform: from
// the locally thresholded bit matrix, blur turns lone modules and the
// grid does not correct; from the grey levels with the neighbours' spill
// taken out, it reads, in either polarity.
func TestGreyGridBlur(t *testing.T) {
	text := testVoucher(t)
	img, tr, truth := blurredCode(t, text, 3.6, 24, 1.8)
	dim := len(truth)
	var d Decoder
	d.setUp()
	p := view(img, img.Bounds())
	bin, err := detector.Detector_sampleGrid(d.bin.local(p, true), tr, dim)
	if err != nil {
		t.Fatal(err)
	}
	binErrs := gridErrors(bin, truth)
	if _, err := d.reader.Decode(bin, nil); err == nil {
		t.Fatalf("the thresholded grid (%d modules wrong) read: blur too weak for this test", binErrs)
	}
	for _, inv := range []bool{false, true} {
		q := p
		if inv {
			neg := image.NewGray(img.Bounds())
			for i, v := range img.Pix {
				neg.Pix[i] = 255 - v
			}
			q = view(neg, neg.Bounds())
		}
		grey, ok := d.greyGrid(q, inv, tr, dim)
		if !ok {
			t.Fatalf("inverted %v: greyGrid found no timing pattern", inv)
		}
		greyErrs := gridErrors(grey, truth)
		t.Logf("inverted %v: modules wrong: thresholded %d, grey %d of %d", inv, binErrs, greyErrs, dim*dim)
		if 3*greyErrs > binErrs {
			t.Errorf("inverted %v: grey grid has %d modules wrong, thresholded %d; want under a third", inv, greyErrs, binErrs)
		}
		res, err := d.reader.Decode(grey, nil)
		if err != nil || string(payloadOf(res)) != text {
			t.Errorf("inverted %v: grey grid: %v", inv, err)
		}
	}
}

// TestDecodeBlurred reads a code blurred more than the thresholded grids
// of any search or retry correct (σ 2 pixels on 3.6-pixel modules).
func TestDecodeBlurred(t *testing.T) {
	text := testVoucher(t)
	img, _, _ := blurredCode(t, text, 3.6, 24, 2)
	var d Decoder
	if got, err := d.DecodeGray(img); err != nil || string(got) != text {
		t.Fatalf("DecodeGray = %.20q, %v; want the voucher", got, err)
	}
}

// TestGreyGridMisplaced: a transform a few modules off the code finds no
// timing pattern, and a frame without a code none either.
func TestGreyGridMisplaced(t *testing.T) {
	text := testVoucher(t)
	img, _, truth := blurredCode(t, text, 4, 24, 0.8)
	dim := len(truth)
	var d Decoder
	p := view(img, img.Bounds())
	shifted := common.PerspectiveTransform_QuadrilateralToQuadrilateral(
		0, 0, float64(dim), 0, float64(dim), float64(dim), 0, float64(dim),
		36, 30, 36+4*float64(dim), 30, 36+4*float64(dim), 30+4*float64(dim), 36, 30+4*float64(dim))
	if _, ok := d.greyGrid(p, false, shifted, dim); ok {
		t.Error("greyGrid read a timing pattern through a transform 3 modules off")
	}
	flat := image.NewGray(img.Bounds())
	for i := range flat.Pix {
		flat.Pix[i] = uint8(100 + i*7%50)
	}
	_, tr, _ := blurredCode(t, text, 4, 24, 0.5)
	if _, ok := d.greyGrid(view(flat, flat.Bounds()), false, tr, dim); ok {
		t.Error("greyGrid read a timing pattern in a frame without a code")
	}
	if _, ok := d.greyGrid(p, false, tr, dim+40); ok {
		t.Error("greyGrid sampled outside the frame")
	}
}
