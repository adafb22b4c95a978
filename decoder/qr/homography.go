package qr

import (
	"math"

	"github.com/makiuchi-d/gozxing/common"
)

// A perspective transform through three finder patterns and one alignment
// pattern is only as good as the guess of where that alignment pattern
// is, and under strong perspective a parallelogram guess is modules off.
// fitHomography instead fits the transform by least squares to many
// points: the finder pattern centres and every module edge along both
// timing patterns (timingDimension), which fix how the module size
// changes along each leg, and so the perspective.

// match is one point of the code, in module coordinates, and where it is
// in the image.
type match struct{ u, v, x, y float64 }

// fitHomography returns the perspective transform from module coordinates
// of a code of dim modules to the image that fits ms best (least squares
// on the linearised equations), or nil when ms are too few or degenerate.
func fitHomography(ms []match, dim int) *common.PerspectiveTransform {
	if len(ms) < 5 {
		return nil
	}
	// Normalise both sides for a well-conditioned system.
	var cx, cy float64
	for _, p := range ms {
		cx += p.x
		cy += p.y
	}
	cx /= float64(len(ms))
	cy /= float64(len(ms))
	s, su := float64(dim), float64(dim)
	var a [8][9]float64 // normal equations, augmented
	for _, p := range ms {
		u, v := p.u/su, p.v/su
		x, y := (p.x-cx)/s, (p.y-cy)/s
		rows := [2][9]float64{
			{u, v, 1, 0, 0, 0, -u * x, -v * x, x},
			{0, 0, 0, u, v, 1, -u * y, -v * y, y},
		}
		for _, r := range rows {
			for i := 0; i < 8; i++ {
				for j := 0; j < 9; j++ {
					a[i][j] += r[i] * r[j]
				}
			}
		}
	}
	h, ok := solve8(&a)
	if !ok {
		return nil
	}
	// The transform through the code's four corners, mapped with h.
	at := func(u, v float64) (float64, float64) {
		u, v = u/su, v/su
		w := h[6]*u + h[7]*v + 1
		return (h[0]*u+h[1]*v+h[2])/w*s + cx, (h[3]*u+h[4]*v+h[5])/w*s + cy
	}
	d := float64(dim)
	x0, y0 := at(0, 0)
	x1, y1 := at(d, 0)
	x2, y2 := at(d, d)
	x3, y3 := at(0, d)
	for _, v := range [8]float64{x0, y0, x1, y1, x2, y2, x3, y3} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
	}
	return common.PerspectiveTransform_QuadrilateralToQuadrilateral(0, 0, d, 0, d, d, 0, d, x0, y0, x1, y1, x2, y2, x3, y3)
}

// solve8 solves the augmented 8×8 system a by Gaussian elimination with
// partial pivoting; it reports false for a singular system.
func solve8(a *[8][9]float64) ([8]float64, bool) {
	var x [8]float64
	for c := 0; c < 8; c++ {
		p := c
		for r := c + 1; r < 8; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[p][c]) {
				p = r
			}
		}
		if math.Abs(a[p][c]) < 1e-12 {
			return x, false
		}
		a[c], a[p] = a[p], a[c]
		for r := c + 1; r < 8; r++ {
			f := a[r][c] / a[c][c]
			for j := c; j < 9; j++ {
				a[r][j] -= f * a[c][j]
			}
		}
	}
	for r := 7; r >= 0; r-- {
		v := a[r][8]
		for j := r + 1; j < 8; j++ {
			v -= a[r][j] * x[j]
		}
		x[r] = v / a[r][r]
	}
	return x, true
}
