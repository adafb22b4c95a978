package qr

import (
	"math"

	"github.com/makiuchi-d/gozxing"
)

// Finder patterns show, on any row through their centre, runs of dark,
// light, dark, light and dark pixels in the proportions 1:1:3:1:1. gozxing's
// finder looks for them pixel by pixel on every few rows and then
// cross-checks each one; a frame without a code usually has none, and then
// the whole search is wasted. The prescan below walks the same rows a word
// at a time and reports whether any such run exists, for both polarities
// at once, so a search runs only where it can find something.

// scanSkip is the row step of gozxing's finder for an image h rows high
// (detector.FinderPatternFinder.Find): it scans rows skip-1, 2·skip-1, ...
// until it finds a pattern, and every third row with TRY_HARDER.
func scanSkip(h int, tryHarder bool) int {
	const minSkip, maxModules = 3, 97
	skip := 3 * h / (4 * maxModules)
	if skip < minSkip || tryHarder {
		skip = minSkip
	}
	return skip
}

// prescan holds the buffers of finderRuns; the zero value is ready.
type prescan struct {
	row  *gozxing.BitArray
	runs []int
}

// binaryImage is what finderRuns reads: a bit matrix, or a grey plane
// read against a threshold (thresholded).
type binaryImage interface {
	GetWidth() int
	GetHeight() int
	GetRow(y int, row *gozxing.BitArray) *gozxing.BitArray
	Get(x, y int) bool
}

// thresholded reads a plane as dark where it is below black, without
// binarizing the rows that are not read.
type thresholded struct {
	p     plane
	black int
}

func (t thresholded) GetWidth() int  { return t.p.w }
func (t thresholded) GetHeight() int { return t.p.h }
func (t thresholded) Get(x, y int) bool {
	return int(t.p.pix[y*t.p.stride+x]) < t.black
}

// GetRow returns row y in row (made when nil or of another width).
func (t thresholded) GetRow(y int, row *gozxing.BitArray) *gozxing.BitArray {
	if row == nil || row.GetSize() != t.p.w {
		row = gozxing.NewBitArray(t.p.w)
	}
	thresholdRow(t.p.pix[y*t.p.stride:y*t.p.stride+t.p.w], row.GetBitArray(), t.black)
	return row
}

// finderRuns reports for each polarity (0 dark in the middle, 1 light in
// the middle: a finder pattern of the inverted image) whether any row that
// gozxing's finder scans first (every skip-th row) holds runs in the
// proportions of a finder pattern (runs), and whether any such runs also
// show the proportions on the column through their middle (crossed), as
// gozxing's finder checks before it takes a candidate. Where crossed is
// false, gozxing's finder finds no candidate in that polarity.
func (s *prescan) finderRuns(m binaryImage, skip int) (runs, crossed [2]bool) {
	want := [2]bool{true, true}
	s.scan(m, skip, &want, func(pol, x, y, total int) bool {
		runs[pol] = true
		crossed[pol] = s.crossVertical(m, x, y, pol == 0, total)
		want[pol] = !crossed[pol]
		return crossed[0] && crossed[1]
	})
	return runs, crossed
}

// crossings reports whether finderRuns would cross runs in finder
// proportions in polarity pol at n places or more, each farther from the
// others than the runs' length: a code shows three finder patterns, a
// line of text or a texture rarely two.
func (s *prescan) crossings(m binaryImage, skip, pol, n int) bool {
	var want [2]bool
	want[pol] = true
	var at [][2]int
	s.scan(m, skip, &want, func(_, x, y, total int) bool {
		for _, a := range at {
			if abs(a[0]-x) <= total && abs(a[1]-y) <= total {
				return false
			}
		}
		if s.crossVertical(m, x, y, pol == 0, total) {
			at = append(at, [2]int{x, y})
		}
		return len(at) >= n
	})
	return len(at) >= n
}

// scan walks every skip-th row of m and calls visit with the middle and
// total length of each five runs in finder proportions in a polarity
// that want holds (0 dark in the middle, 1 light), until visit returns
// true.
func (s *prescan) scan(m binaryImage, skip int, want *[2]bool, visit func(pol, x, y, total int) bool) {
	w := m.GetWidth()
	for y := skip - 1; y < m.GetHeight(); y += skip {
		s.row = m.GetRow(y, s.row)
		s.runs = s.runs[:0]
		first := s.row.Get(0)
		on := first
		for x := 0; x < w; {
			var next int
			if on {
				next = s.row.GetNextUnset(x)
			} else {
				next = s.row.GetNextSet(x)
			}
			next = min(next, w)
			s.runs = append(s.runs, next-x)
			x, on = next, !on
		}
		x := 0
		for i := 0; i+5 <= len(s.runs); i++ {
			// Run i is dark when the row starts dark and i is even, or
			// starts light and i is odd.
			pol := 1
			if first == (i%2 == 0) {
				pol = 0
			}
			c := s.runs[i : i+5]
			if want[pol] && finderProportions(c) {
				if visit(pol, x+c[0]+c[1]+c[2]/2, y, c[0]+c[1]+c[2]+c[3]+c[4]) {
					return
				}
			}
			x += s.runs[i]
		}
	}
}

// crossVertical reports whether the column x, from row y up and down,
// shows runs in finder proportions whose total is within 40% of total
// (gozxing's FinderPatternFinder.CrossCheckVertical): the middle run
// dark if dark, else light, each run at most total pixels long.
func (s *prescan) crossVertical(m binaryImage, x, y int, dark bool, total int) bool {
	h := m.GetHeight()
	var c [5]int
	// Up from the middle: runs 2, 1, 0; down: runs 2, 3, 4.
	for _, dir := range [2]int{-1, 1} {
		yy := y
		if dir > 0 {
			yy = y + 1
		}
		for k := 0; k < 3; k++ {
			want := dark == (k%2 == 0)
			n := 0
			for yy >= 0 && yy < h && m.Get(x, yy) == want && n <= total {
				n++
				yy += dir
			}
			if n == 0 && (k > 0 || dir < 0) || n > total {
				return false
			}
			c[2+dir*k] += n
		}
	}
	sum := c[0] + c[1] + c[2] + c[3] + c[4]
	return 5*abs(sum-total) < 2*total && finderProportions(c[:])
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// finderProportions is gozxing's test for 1:1:3:1:1 runs
// (FinderPatternFinder_foundPatternCross): each run within half a module
// of its share of the total, at least 7 pixels in all.
func finderProportions(c []int) bool {
	total := c[0] + c[1] + c[2] + c[3] + c[4]
	if total < 7 {
		return false
	}
	module := float64(total) / 7
	v := module / 2
	return math.Abs(module-float64(c[0])) < v &&
		math.Abs(module-float64(c[1])) < v &&
		math.Abs(3*module-float64(c[2])) < 3*v &&
		math.Abs(module-float64(c[3])) < v &&
		math.Abs(module-float64(c[4])) < v
}
