package qr

import (
	"math"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/common"
)

// A grid sampled from the bit matrix takes each module's colour from the
// pixel under its centre, thresholded against the blocks around it. Blur
// spreads each module into its neighbours: a light module between dark
// ones (and a dark one between light ones) keeps under half its own
// level at its centre, and turns. On the blurred frames of the
// development seeds, grids whose finder patterns, size and format
// information were right lost four in ten of such lone modules and
// almost no others, too many for the error correction. greyGrid samples
// the grey plane instead, at the same module centres, takes out of each
// centre the share its four neighbours spread into it (blurSpill), and
// thresholds the result against the mean of the modules around it.

// blurSpill is the share of a module centre's level that greyGrid takes
// to come from its four neighbours: a 4-pixel module under a Gaussian
// blur of σ 1.4 pixels keeps about 70% of its own level at its centre, a
// 3.6-pixel one under σ 1.8 less than half. Where blur put in less, the
// excess mostly pushes a level further from the threshold, on the side
// it is already on.
const blurSpill = 0.4

// greyWindow is the half-width, in modules, of the window whose mean is a
// module's threshold in greyGrid: masked data is about half dark, and so
// is a finder pattern with its separator.
const greyWindow = 4

// minGreyTiming is the share of timing modules a grid from greyGrid must
// read right to be decoded: a misplaced grid reads about half.
const minGreyTiming = 0.8

// greyGrid samples the code of dim modules that t maps onto p from p's
// grey levels (dark modules light if inv), as described above, into a
// bit matrix (set bits dark). It reports false when a module centre or
// the ring of quiet zone around the code lies outside p, or when the
// timing patterns do not show in the result.
func (d *Decoder) greyGrid(p plane, inv bool, t *common.PerspectiveTransform, dim int) (*gozxing.BitMatrix, bool) {
	if p.pix == nil || dim < 21 {
		return nil, false
	}
	// v holds the ring of quiet zone around the code too: the modules
	// of the code's edge have neighbours there.
	n := dim + 2
	if cap(d.greyVals) < 2*n*n {
		d.greyVals = make([]float64, 2*n*n)
	}
	v, c := d.greyVals[:n*n], d.greyVals[n*n:2*n*n]
	pts := make([]float64, 2*n)
	for y := range n {
		for x := range n {
			pts[2*x], pts[2*x+1] = float64(x)-0.5, float64(y)-0.5
		}
		t.TransformPoints(pts)
		for x := range n {
			g, ok := sampleLevel(p, pts[2*x], pts[2*x+1])
			if !ok {
				return nil, false
			}
			if inv {
				g = 255 - g
			}
			v[y*n+x] = g
		}
	}
	for y := range n {
		for x := range n {
			sum, k := 0.0, 0
			for _, o := range [4][2]int{{1, 0}, {-1, 0}, {0, 1}, {0, -1}} {
				if xx, yy := x+o[0], y+o[1]; xx >= 0 && yy >= 0 && xx < n && yy < n {
					sum += v[yy*n+xx]
					k++
				}
			}
			c[y*n+x] = (v[y*n+x] - blurSpill*sum/float64(k)) / (1 - blurSpill)
		}
	}
	// sat[y*(n+1)+x] sums c over the modules above and left of (x, y):
	// each window's mean in four lookups.
	m := n + 1
	if cap(d.greySums) < m*m {
		d.greySums = make([]float64, m*m)
	}
	sat := d.greySums[:m*m]
	for x := range m {
		sat[x] = 0
	}
	for y := range n {
		row := 0.0
		sat[(y+1)*m] = 0
		for x := range n {
			row += c[y*n+x]
			sat[(y+1)*m+x+1] = sat[y*m+x+1] + row
		}
	}
	// dark reports whether module (x, y) of the code is darker than
	// the mean of the window around it.
	dark := func(x, y int) bool {
		x0, y0 := max(x+1-greyWindow, 0), max(y+1-greyWindow, 0)
		x1, y1 := min(x+1+greyWindow, n-1)+1, min(y+1+greyWindow, n-1)+1
		sum := sat[y1*m+x1] - sat[y0*m+x1] - sat[y1*m+x0] + sat[y0*m+x0]
		return c[(y+1)*n+x+1]*float64((x1-x0)*(y1-y0)) < sum
	}
	// The timing patterns first: a grid that misses them is not read.
	right := 0
	for i := 8; i < dim-8; i++ {
		if dark(i, 6) == (i%2 == 0) {
			right++
		}
		if dark(6, i) == (i%2 == 0) {
			right++
		}
	}
	if float64(right) < minGreyTiming*float64(2*(dim-16)) {
		return nil, false
	}
	bits, err := gozxing.NewSquareBitMatrix(dim)
	if err != nil {
		return nil, false
	}
	for y := range dim {
		for x := range dim {
			if dark(x, y) {
				bits.Set(x, y)
			}
		}
	}
	return bits, true
}

// sampleLevel returns p's level at (x, y), pixel centres at half-integers,
// interpolated between the four nearest pixels; false outside p.
func sampleLevel(p plane, x, y float64) (float64, bool) {
	fx, fy := x-0.5, y-0.5
	if math.IsNaN(fx) || math.IsNaN(fy) || fx < 0 || fy < 0 || fx > float64(p.w-1) || fy > float64(p.h-1) {
		return 0, false
	}
	x0, y0 := int(fx), int(fy)
	x1, y1 := min(x0+1, p.w-1), min(y0+1, p.h-1)
	ax, ay := fx-float64(x0), fy-float64(y0)
	at := func(x, y int) float64 { return float64(p.pix[y*p.stride+x]) }
	top := at(x0, y0)*(1-ax) + at(x1, y0)*ax
	bot := at(x0, y1)*(1-ax) + at(x1, y1)*ax
	return top*(1-ay) + bot*ay, true
}
