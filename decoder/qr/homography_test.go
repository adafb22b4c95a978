package qr

import (
	"math"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/common"
)

// TestFitHomography recovers a known perspective transform from points
// it maps, and refuses too few points.
func TestFitHomography(t *testing.T) {
	const dim = 57
	want := common.PerspectiveTransform_QuadrilateralToQuadrilateral(0, 0, dim, 0, dim, dim, 0, dim,
		110, 131, 300, 120, 320, 410, 60, 350)
	var ms []match
	for _, uv := range [][2]float64{{3.5, 3.5}, {53.5, 3.5}, {3.5, 53.5}, {50.5, 50.5}, {20, 6.5}, {6.5, 30}, {40, 6.5}, {6.5, 12}} {
		p := []float64{uv[0], uv[1]}
		want.TransformPoints(p)
		ms = append(ms, match{uv[0], uv[1], p[0], p[1]})
	}
	got := fitHomography(ms, dim)
	if got == nil {
		t.Fatal("no fit")
	}
	for _, uv := range [][2]float64{{0, 0}, {28.5, 28.5}, {56, 10}, {12, 56}} {
		a, b := []float64{uv[0], uv[1]}, []float64{uv[0], uv[1]}
		want.TransformPoints(a)
		got.TransformPoints(b)
		if d := math.Hypot(a[0]-b[0], a[1]-b[1]); d > 1e-6 {
			t.Errorf("module %v: fitted %.3f,%.3f, want %.3f,%.3f", uv, b[0], b[1], a[0], a[1])
		}
	}
	if fitHomography(ms[:4], dim) != nil {
		t.Error("fit from 4 points: want nil (too few to check)")
	}
}

// TestTimingDimension counts the size of fresh vouchers along their
// timing patterns in frames under perspective and at 45°, where the
// finder patterns' own module sizes mislead: a count is never a wrong
// size (0, no count, leaves the size to the estimates), and most legs
// count. It also checks the module size measured along the top leg
// against the one the true size implies, within a fifth.
func TestTimingDimension(t *testing.T) {
	const seed = 7
	texts, err := freshVouchers(seed, 4)
	if err != nil {
		t.Fatal(err)
	}
	legs, counted := 0, 0
	for _, pl := range placements {
		switch pl.name {
		case "perspective", "strong perspective", "perspective + 40°", "rotation 45°":
		default:
			continue
		}
		for v, text := range texts {
			m, want, bl, tl, tr, ok := freshTriple(t, seed, v, text, pl)
			if !ok {
				continue // the finder's choice is not what is tested here
			}
			across, _ := timingDimension(m, tl, tr, bl, legSize(m, tl, tr))
			down, _ := timingDimension(m, tl, bl, tr, legSize(m, tl, bl))
			for _, got := range [2]int{across, down} {
				legs++
				switch got {
				case want:
					counted++
				case 0:
				default:
					t.Errorf("%s, voucher %d: counted %d modules, want %d", pl.name, v, got, want)
				}
			}
			if ms, leg := gozxing.ResultPoint_Distance(tl, tr)/float64(want-7), legSize(m, tl, tr); math.Abs(leg-ms) > ms/5 {
				t.Errorf("%s, voucher %d: module %.2f px along the top, want about %.2f", pl.name, v, leg, ms)
			}
		}
	}
	if legs == 0 || 2*counted < legs {
		t.Errorf("counted %d of %d legs; want at least half", counted, legs)
	}
	t.Logf("counted %d of %d legs", counted, legs)
}
