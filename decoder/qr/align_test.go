package qr

import (
	"math"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/common"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
)

// alignFixture draws a version-10 code (57 modules) at 4 pixels a module
// with a quiet zone of 4 modules, so module (u, v) has its centre at
// pixel (18+4u, 18+4v), and returns it as a bit matrix.
func alignFixture(t *testing.T) *gozxing.BitMatrix {
	t.Helper()
	img, err := Encode(voucherText(300), 260, "M")
	if err != nil {
		t.Fatal(err)
	}
	m, err := gozxing.NewBitMatrix(260, 260)
	if err != nil {
		t.Fatal(err)
	}
	for y := 0; y < 260; y++ {
		for x := 0; x < 260; x++ {
			if img.GrayAt(x, y).Y < 128 {
				m.Set(x, y)
			}
		}
	}
	return m
}

// moduleTransform maps a code of dim modules onto the pixels of the 57
// modules of alignFixture.
func moduleTransform(dim int) *common.PerspectiveTransform {
	d := float64(dim)
	return common.PerspectiveTransform_QuadrilateralToQuadrilateral(
		0, 0, d, 0, d, d, 0, d,
		16, 16, 244, 16, 244, 244, 16, 244)
}

func TestMatchAlignment(t *testing.T) {
	m := alignFixture(t)
	tr := moduleTransform(57)
	// Version 10 has alignment patterns at modules 6, 28 and 50, except
	// in the corners of the finder patterns.
	for _, at := range [][2]int{{28, 6}, {6, 28}, {28, 28}, {50, 28}, {28, 50}, {50, 50}} {
		u, v := float64(at[0]), float64(at[1])
		wantX, wantY := 18+4*u, 18+4*v
		// Start a module and a half off to the right and above.
		x, y, ok := matchAlignment(m, tr, u+0.5, v+0.5, wantX+6, wantY-5, alignSearch)
		if !ok || math.Hypot(x-wantX, y-wantY) > 0.75 {
			t.Errorf("alignment pattern %v: got (%.2f, %.2f) %v; want (%.0f, %.0f) true", at, x, y, ok, wantX, wantY)
		}
	}
	// The quiet zone holds no pattern.
	if x, y, ok := matchAlignment(m, tr, 0.5, 0.5, 8, 130, 1.5); ok {
		t.Errorf("quiet zone: got (%.2f, %.2f) true; want false", x, y)
	}
}

func TestVersionAgrees(t *testing.T) {
	m := alignFixture(t)
	for _, c := range []struct {
		version int
		want    bool
	}{
		{9, false},
		{10, true},
		{11, false},
	} {
		v, err := decoder.Version_GetVersionForNumber(c.version)
		if err != nil {
			t.Fatal(err)
		}
		dim := v.GetDimensionForVersion()
		if got := versionAgrees(m, moduleTransform(dim), v, dim); got != c.want {
			t.Errorf("versionAgrees(version %d on a version-10 code) = %v; want %v", c.version, got, c.want)
		}
	}
}
