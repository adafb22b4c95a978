package qr

import (
	"math"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/common"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	"github.com/makiuchi-d/gozxing/qrcode/detector"
)

// Codes of version 7 and up carry a grid of alignment patterns. gozxing
// samples the whole code with one perspective transform through the three
// finder patterns and one alignment pattern, which is off by a module or
// more on a bent sheet, a curved phone screen or a steep slant. sampleLocal
// locates every alignment pattern, each predicted from its neighbours
// already found and matched as a template (align.go), and samples each
// cell of the grid with its own transform.

// alignSearch is the half-width of the window searched around a predicted
// alignment pattern, in modules.
const alignSearch = 4

// sampleLocal samples the code of dimension dim with global the transform
// through its finder patterns (and alignment pattern, if found). It returns false for versions with fewer
// than three alignment coordinates, when the version information read with
// global is not that of dim, and when most alignment patterns are missing:
// the size is then wrong or there is no code.
func sampleLocal(m *gozxing.BitMatrix, global *common.PerspectiveTransform, version *decoder.Version, dim int) (*gozxing.BitMatrix, bool) {
	cs := version.GetAlignmentPatternCenters()
	n := len(cs)
	if n < 3 || !versionAgrees(m, global, version, dim) {
		return nil, false
	}
	// pts[j*n+i] is the centre of the alignment pattern at module
	// (cs[i], cs[j]) in the image. The three grid corners under the finder
	// patterns hold no pattern; the global transform is accurate there.
	pts := make([]float64, 2*n*n)
	missing := 0
	for d := 0; d <= 2*(n-1); d++ {
		for j := 0; j < n; j++ {
			i := d - j
			if i < 0 || i >= n {
				continue
			}
			x, y := predict(pts, global, cs, n, i, j)
			corner := (i == 0 || i == n-1) && j == 0 || i == 0 && j == n-1
			if !corner {
				if ax, ay, ok := matchAlignment(m, global, float64(cs[i])+0.5, float64(cs[j])+0.5, x, y, alignSearch); ok {
					x, y = ax, ay
				} else if missing++; 2*missing > n*n-3 {
					return nil, false
				}
			}
			pts[2*(j*n+i)], pts[2*(j*n+i)+1] = x, y
		}
	}

	bits, err := gozxing.NewSquareBitMatrix(dim)
	if err != nil {
		return nil, false
	}
	cell := make([]*common.PerspectiveTransform, (n-1)*(n-1))
	pt := make([]float64, 2)
	for y := 0; y < dim; y++ {
		cj := cellOf(cs, y)
		for x := 0; x < dim; x++ {
			ci := cellOf(cs, x)
			t := cell[cj*(n-1)+ci]
			if t == nil {
				t = cellTransform(pts, cs, n, ci, cj)
				cell[cj*(n-1)+ci] = t
			}
			pt[0], pt[1] = float64(x)+0.5, float64(y)+0.5
			t.TransformPoints(pt)
			px, py := int(pt[0]), int(pt[1])
			if px < 0 || py < 0 || px >= m.GetWidth() || py >= m.GetHeight() || math.IsNaN(pt[0]) || math.IsNaN(pt[1]) {
				return nil, false
			}
			if m.Get(px, py) {
				bits.Set(x, y)
			}
		}
	}
	return bits, true
}

// predict returns where the alignment pattern (i, j) should be: from its
// three neighbours towards the top left when they are known (a
// parallelogram), else from the global transform.
func predict(pts []float64, global *common.PerspectiveTransform, cs []int, n, i, j int) (float64, float64) {
	at := func(i, j int) (float64, float64) { return pts[2*(j*n+i)], pts[2*(j*n+i)+1] }
	if i > 0 && j > 0 {
		ax, ay := at(i-1, j)
		bx, by := at(i, j-1)
		cx, cy := at(i-1, j-1)
		return ax + bx - cx, ay + by - cy
	}
	p := []float64{float64(cs[i]) + 0.5, float64(cs[j]) + 0.5}
	global.TransformPoints(p)
	return p[0], p[1]
}

// alignmentNear looks for an alignment pattern of module size ms within
// radius modules of (x, y).
func alignmentNear(m *gozxing.BitMatrix, x, y, ms, radius float64) *detector.AlignmentPattern {
	r := radius * ms
	left, top := int(math.Max(0, x-r)), int(math.Max(0, y-r))
	right := int(math.Min(float64(m.GetWidth()-1), x+r))
	bottom := int(math.Min(float64(m.GetHeight()-1), y+r))
	if float64(right-left) < 3*ms || float64(bottom-top) < 3*ms {
		return nil
	}
	ap, err := detector.NewAlignmentPatternFinder(m, left, top, right-left, bottom-top, ms, nil).Find()
	if err != nil {
		return nil
	}
	return ap
}

// cellOf returns the grid cell holding module v: cells run between
// adjacent alignment coordinates, and the first and last extend to the
// edge.
func cellOf(cs []int, v int) int {
	for k := 1; k < len(cs)-1; k++ {
		if v < cs[k] {
			return k - 1
		}
	}
	return len(cs) - 2
}

// cellTransform maps module coordinates to the image inside cell (ci, cj).
func cellTransform(pts []float64, cs []int, n, ci, cj int) *common.PerspectiveTransform {
	at := func(i, j int) (float64, float64) { return pts[2*(j*n+i)], pts[2*(j*n+i)+1] }
	x0, y0 := float64(cs[ci])+0.5, float64(cs[cj])+0.5
	x1, y1 := float64(cs[ci+1])+0.5, float64(cs[cj+1])+0.5
	ax, ay := at(ci, cj)
	bx, by := at(ci+1, cj)
	cx, cy := at(ci+1, cj+1)
	dx, dy := at(ci, cj+1)
	return common.PerspectiveTransform_QuadrilateralToQuadrilateral(
		x0, y0, x1, y0, x1, y1, x0, y1,
		ax, ay, bx, by, cx, cy, dx, dy)
}
