package qr

import (
	"math"
	"math/bits"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/common"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
)

// gozxing's AlignmentPatternFinder looks for runs of one module dark,
// light, dark along rows and columns of the bit matrix, and misses a
// pattern whose modules touch dark data modules or whose module size
// differs from the finder patterns' (a steep slant). matchAlignment
// instead matches the whole 5×5 pattern as a template, sampled with the
// module axes of the code at that point: it finds patterns the run
// scanner misses, and picks the right one when several are in the window.
const (
	// alignCoarse and alignFine are the steps of the template search, in
	// modules: every alignCoarse across the window, then every alignFine
	// around the best coarse match. A step of half a module keeps each
	// sample within a quarter module of a module centre at the best coarse
	// offset.
	alignCoarse = 0.5
	alignFine   = 0.125
	// alignMinScore is how many of the 25 modules must match for a
	// pattern to be taken.
	alignMinScore = 21
	// alignNear is the half-width, in coarse steps, of the window searched
	// first.
	alignNear = 3
)

// alignModules lists the 25 modules of an alignment pattern, the centre
// and the inner ring first, so that alignScore rejects most wrong offsets
// after a few samples.
var alignModules = func() (ms [25]struct {
	i, j float64
	dark bool
}) {
	k := 0
	for r := 0; r <= 2; r++ {
		for j := -r; j <= r; j++ {
			for i := -r; i <= r; i++ {
				if max(i, -i, j, -j) == r {
					ms[k].i, ms[k].j, ms[k].dark = float64(i), float64(j), r != 1
					k++
				}
			}
		}
	}
	return ms
}()

// matchAlignment looks for the alignment pattern whose centre t maps
// module (u, v) to, within radius modules of (x, y). It returns the centre
// of the best match, the mean of the offsets that score best, and whether
// at least alignMinScore modules match there.
func matchAlignment(m *gozxing.BitMatrix, t *common.PerspectiveTransform, u, v, x, y, radius float64) (float64, float64, bool) {
	p := [6]float64{u, v, u + 1, v, u, v + 1}
	t.TransformPoints(p[:])
	ax, ay, bx, by := p[2]-p[0], p[3]-p[1], p[4]-p[0], p[5]-p[1]
	if math.IsNaN(ax+ay+bx+by) || math.IsInf(ax+ay+bx+by, 0) {
		return 0, 0, false
	}
	var off [25][2]float64
	for k, am := range alignModules {
		off[k] = [2]float64{am.i*ax + am.j*bx, am.i*ay + am.j*by}
	}

	// Near the prediction first, where the pattern nearly always is; the
	// rest of the window only when nothing matches there.
	best, bu, bv := alignMinScore-3, 0.0, 0.0
	n := int(radius / alignCoarse)
	for _, r := range [2][2]int{{0, alignNear}, {alignNear + 1, n}} {
		for j := -r[1]; j <= r[1]; j++ {
			for i := -r[1]; i <= r[1]; i++ {
				if max(i, -i, j, -j) < r[0] {
					continue
				}
				du, dv := float64(i)*alignCoarse, float64(j)*alignCoarse
				if s := alignScore(m, x+du*ax+dv*bx, y+du*ay+dv*by, &off, best+1); s > best {
					best, bu, bv = s, du, dv
				}
			}
		}
		if best >= alignMinScore-2 {
			break
		}
	}
	if best < alignMinScore-2 {
		return 0, 0, false
	}

	best = alignMinScore - 1
	var su, sv float64
	var count int
	k := int(alignCoarse / alignFine)
	for j := -k; j <= k; j++ {
		for i := -k; i <= k; i++ {
			du, dv := bu+float64(i)*alignFine, bv+float64(j)*alignFine
			s := alignScore(m, x+du*ax+dv*bx, y+du*ay+dv*by, &off, best)
			switch {
			case s > best:
				best, su, sv, count = s, du, dv, 1
			case s == best:
				su, sv, count = su+du, sv+dv, count+1
			}
		}
	}
	if count == 0 || best < alignMinScore {
		return 0, 0, false
	}
	du, dv := su/float64(count), sv/float64(count)
	return x + du*ax + dv*bx, y + du*ay + dv*by, true
}

// alignScore counts the modules of an alignment pattern centred at (x, y)
// that the bit matrix matches, off holding each module's offset from the
// centre in the order of alignModules. It gives up, returning less than
// atLeast, as soon as atLeast can no longer be reached.
func alignScore(m *gozxing.BitMatrix, x, y float64, off *[25][2]float64, atLeast int) int {
	w, h := m.GetWidth(), m.GetHeight()
	miss := 0
	for k := range off {
		px, py := x+off[k][0], y+off[k][1]
		if px < 0 || py < 0 || int(px) >= w || int(py) >= h || m.Get(int(px), int(py)) != alignModules[k].dark {
			miss++
			if 25-miss < atLeast {
				return 25 - miss
			}
		}
	}
	return 25 - miss
}

// versionAgrees reports whether either copy of the version information
// (versions 7 and up), sampled with t, is within 3 bits of version's: the
// error-correcting code tells one version from another by at least 8
// bits. Both copies sit beside finder patterns, where t is accurate even
// on a bent or slanted code, so a grid of the wrong size shows here
// before its alignment patterns are searched.
func versionAgrees(m *gozxing.BitMatrix, t *common.PerspectiveTransform, version *decoder.Version, dim int) bool {
	v := version.GetVersionNumber()
	if v < 7 {
		return true // no version information
	}
	want := decoder.VERSION_DECODE_INFO[v-7]
	var p [2 * 18]float64
	for _, bottomLeft := range [2]bool{false, true} {
		// Bit k of the information is the module in column dim-11+k%3,
		// row k/3 (left of the top-right finder pattern), and in the
		// transposed copy column k/3, row dim-11+k%3 (above the
		// bottom-left one).
		for k := 0; k < 18; k++ {
			col, row := float64(dim-11+k%3)+0.5, float64(k/3)+0.5
			if bottomLeft {
				col, row = row, col
			}
			p[2*k], p[2*k+1] = col, row
		}
		t.TransformPoints(p[:])
		got := 0
		for k := 0; k < 18; k++ {
			x, y := p[2*k], p[2*k+1]
			if x >= 0 && y >= 0 && m.Get(int(x), int(y)) {
				got |= 1 << k
			}
		}
		if bits.OnesCount32(uint32(got^want)) <= 3 {
			return true
		}
	}
	return false
}
