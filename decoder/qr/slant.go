package qr

import (
	"math"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode/detector"
)

// gozxing's finder takes a candidate only where the column through the
// middle of its row runs is within 40% of their length, the row through
// the column's middle within 20%, no run is longer than the middle one,
// and the diagonal shows the proportions too. A finder pattern far from
// the camera on a steeply slanted sheet is squashed along one axis and
// sheared: it fails these checks and the code has two finder patterns
// or one. slantedFinders looks again with the proportions alone on each
// axis, the two lengths within maxSlantStretch of each other.

// maxSlantStretch is how much longer a finder pattern may look along one
// image axis than along the other: a square seen at about 65° from
// straight on.
const maxSlantStretch = 2.5

// minSlantRows is on how many scanned rows a slanted candidate must show
// before it counts: a speck of noise or a letter shows on one.
const minSlantRows = 3

// slantedFinders returns the finder pattern candidates of m (dark in the
// middle) that are not near one of found: runs in finder proportions on a
// scanned row, crossed by the column through their middle in finder
// proportions, and again by the row through the column's middle, seen on
// minSlantRows rows at least. Their module size is the longer axis's.
func (s *prescan) slantedFinders(m *gozxing.BitMatrix, skip int, found []*detector.FinderPattern) []*detector.FinderPattern {
	type acc struct {
		x, y, ms float64
		rows     int
	}
	var cs []acc
	near := func(x, y, ms, ox, oy, oms float64) bool {
		r := 3.5 * max(ms, oms)
		return math.Abs(x-ox) <= r && math.Abs(y-oy) <= r
	}
	want := [2]bool{true, false}
	s.scan(m, skip, &want, func(_, x, y, total int) bool {
		vy, vt, ok := crossRuns(m, x, y, 0, 1, total)
		if !ok || !stretchOK(total, vt) {
			return false
		}
		hx, ht, ok := crossRuns(m, x, int(vy), 1, 0, vt)
		if !ok || !stretchOK(ht, vt) {
			return false
		}
		ms := float64(max(ht, vt)) / 7
		for _, f := range found {
			if near(hx, vy, ms, f.GetX(), f.GetY(), f.GetEstimatedModuleSize()) {
				return false
			}
		}
		for i := range cs {
			c := &cs[i]
			if near(hx, vy, ms, c.x/float64(c.rows), c.y/float64(c.rows), c.ms/float64(c.rows)) {
				c.x, c.y, c.ms, c.rows = c.x+hx, c.y+vy, c.ms+ms, c.rows+1
				return false
			}
		}
		cs = append(cs, acc{hx, vy, ms, 1})
		return false
	})
	var out []*detector.FinderPattern
	for _, c := range cs {
		if c.rows >= minSlantRows {
			n := float64(c.rows)
			out = append(out, detector.NewFinderPattern(c.x/n, c.y/n, c.ms/n, c.rows))
		}
	}
	return out
}

// stretchOK reports whether a finder pattern a and b pixels long along the
// two axes is within maxSlantStretch of square.
func stretchOK(a, b int) bool {
	return float64(max(a, b)) <= maxSlantStretch*float64(min(a, b))
}

// crossRuns reads the five runs of a finder pattern through (x, y), dark
// there, along the axis (dx, dy): each run at most maxSlantStretch times
// other pixels long, other being the pattern's length on the other axis.
// It returns the middle of the dark middle run along that axis, the
// runs' total length, and whether they are in finder proportions.
func crossRuns(m *gozxing.BitMatrix, x, y, dx, dy, other int) (float64, int, bool) {
	w, h := m.GetWidth(), m.GetHeight()
	if x < 0 || y < 0 || x >= w || y >= h || !m.Get(x, y) {
		return 0, 0, false
	}
	limit := int(maxSlantStretch * float64(other))
	var c [5]int
	var start int // where the middle run starts along the axis
	for _, dir := range [2]int{-1, 1} {
		px, py := x, y
		if dir > 0 {
			px, py = x+dx, y+dy
		}
		for k := 0; k < 3; k++ {
			want := k%2 == 0
			n := 0
			for px >= 0 && py >= 0 && px < w && py < h && m.Get(px, py) == want && n <= limit {
				n++
				px, py = px+dir*dx, py+dir*dy
			}
			if n == 0 && (k > 0 || dir < 0) || n > limit {
				return 0, 0, false
			}
			c[2+dir*k] += n
		}
		if dir < 0 {
			start = x*dx + y*dy - c[2] + 1
		}
	}
	if !finderProportions(c[:]) {
		return 0, 0, false
	}
	return float64(start) + float64(c[2])/2, c[0] + c[1] + c[2] + c[3] + c[4], true
}
