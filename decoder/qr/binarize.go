package qr

import "github.com/makiuchi-d/gozxing"

// Local-threshold binarization, after gozxing's HybridBinarizer (block
// black points from 8×8 blocks, each block thresholded against the average
// of its 5×5 neighbourhood), reading a strided plane in place and writing
// into a bit matrix and block table kept across frames.
//
// hybrid is gozxing's algorithm exactly: a block's black point is the mean
// of its pixels. The searches of a frame take the black point three
// quarters of the way from that mean to the midpoint of the block's
// darkest and lightest pixels (midShare). The mean leans towards whichever
// level covers more of the block: beside a code's quiet zone or a white
// card, where light covers most of the neighbourhood, it lies near the
// light level, and under blur the one-module light rings of a finder
// pattern, whose lightest pixels no longer reach that far, turn dark. The
// midpoint stays between the two levels whatever their shares, where a
// blurred module edge crosses; a quarter of the mean keeps a block that
// holds two light levels (a dim screen's margin and a bright counter) from
// setting its threshold between them.
const (
	blockPower   = 3
	blockSize    = 1 << blockPower
	minBinarize  = blockSize * 5 // smaller planes use the global histogram
	minDynRange  = 24            // a block with less spread is all light or all dark
	maxBlockSpan = 0xff
)

// binarizer holds the buffers of hybrid; the zero value is ready.
type binarizer struct {
	points []int // block black points
	thresh []int // block thresholds
	col    []int // threshold of each pixel column in the current row
	row    *gozxing.BitArray
	matrix *gozxing.BitMatrix
	span   int // largest spread (max - min) of a block in the last hybrid call
}

// hybrid binarizes p (at least minBinarize on each side) as gozxing's
// HybridBinarizer does and returns the bit matrix, valid until the next
// call; it sets every row. Set bits are dark.
func (b *binarizer) hybrid(p plane) *gozxing.BitMatrix {
	return b.local(p, false)
}

// midShare is the share, in quarters, of the midpoint of a block's extremes
// in the black points of local with mid.
const midShare = 3

// local binarizes p with local thresholds, as hybrid does; with mid, each
// block's black point moves midShare quarters of the way from its mean to
// the midpoint of its darkest and lightest pixels.
func (b *binarizer) local(p plane, mid bool) *gozxing.BitMatrix {
	if b.matrix == nil || b.matrix.GetWidth() != p.w || b.matrix.GetHeight() != p.h {
		b.matrix, _ = gozxing.NewBitMatrix(p.w, p.h)
	}
	subW := (p.w + blockSize - 1) >> blockPower
	subH := (p.h + blockSize - 1) >> blockPower
	if cap(b.points) < subW*subH {
		b.points = make([]int, subW*subH)
	}
	points := b.points[:subW*subH]
	maxY, maxX := p.h-blockSize, p.w-blockSize
	span := 0
	defer func() { b.span = span }()

	for y := 0; y < subH; y++ {
		yo := min(y<<blockPower, maxY)
		for x := 0; x < subW; x++ {
			xo := min(x<<blockPower, maxX)
			sum, lo, hi := 0, maxBlockSpan, 0
			for yy := 0; yy < blockSize; yy++ {
				row := p.pix[(yo+yy)*p.stride+xo : (yo+yy)*p.stride+xo+blockSize]
				for _, v := range row {
					px := int(v)
					sum += px
					lo = min(lo, px)
					hi = max(hi, px)
				}
			}
			point := sum >> (2 * blockPower)
			if mid {
				point = ((4-midShare)*point + midShare*(lo+hi)/2) / 4
			}
			span = max(span, hi-lo)
			if hi-lo <= minDynRange {
				// A flat block is taken as background unless its
				// neighbours say the dark level is above its minimum.
				point = lo / 2
				if y > 0 && x > 0 {
					nb := (points[(y-1)*subW+x] + 2*points[y*subW+x-1] + points[(y-1)*subW+x-1]) / 4
					if lo < nb {
						point = nb
					}
				}
			}
			points[y*subW+x] = point
		}
	}

	// Each block's threshold is the mean of its 5×5 neighbourhood.
	if cap(b.thresh) < subW*subH {
		b.thresh = make([]int, subW*subH)
	}
	thresh := b.thresh[:subW*subH]
	for y := 0; y < subH; y++ {
		top := clampInt(y, 2, subH-3)
		for x := 0; x < subW; x++ {
			left := clampInt(x, 2, subW-3)
			sum := 0
			for z := -2; z <= 2; z++ {
				r := points[(top+z)*subW+left-2 : (top+z)*subW+left+3]
				sum += r[0] + r[1] + r[2] + r[3] + r[4]
			}
			thresh[y*subW+x] = sum / 25
		}
	}

	// A pixel is dark when it is at most the threshold of a block that
	// covers it. Blocks tile the plane from the top left; the last block
	// of a row or column is moved back to end at the edge, so pixels there
	// may lie in two blocks, and then the higher threshold decides. Rows
	// are written a word at a time.
	if cap(b.col) < p.w {
		b.col = make([]int, p.w)
	}
	col := b.col[:p.w]
	if b.row == nil || b.row.GetSize() != p.w {
		b.row = gozxing.NewBitArray(p.w)
	}
	words := b.row.GetBitArray()
	lastRow := -1
	for y := 0; y < p.h; y++ {
		by := min(y>>blockPower, subH-1)
		if by != lastRow || y >= maxY {
			blockRowThresholds(col, thresh, subW, by, y >= maxY && by != subH-1, subH-1, maxX)
			lastRow = by
		}
		pix := p.pix[y*p.stride : y*p.stride+p.w]
		for wi := range words {
			x0 := wi * 32
			var word uint32
			for bit, v := range pix[x0:min(x0+32, p.w)] {
				if int(v) <= col[x0+bit] {
					word |= 1 << uint(bit)
				}
			}
			words[wi] = word
		}
		b.matrix.SetRow(y, b.row)
	}
	return b.matrix
}

// blockRowThresholds fills col with the threshold of each pixel column in
// block row by (and, with also, the larger of it and block row last's).
func blockRowThresholds(col, thresh []int, subW, by int, also bool, last, maxX int) {
	rowT := thresh[by*subW : (by+1)*subW]
	for x := range col {
		t := rowT[min(x>>blockPower, subW-1)]
		if x >= maxX {
			t = max(t, rowT[subW-1])
		}
		if also {
			lt := thresh[last*subW : (last+1)*subW]
			t = max(t, lt[min(x>>blockPower, subW-1)])
			if x >= maxX {
				t = max(t, lt[subW-1])
			}
		}
		col[x] = t
	}
}

func clampInt(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// global binarizes p against one threshold for the whole plane, the
// algorithm of gozxing's GlobalHistogramBinarizer: a 32-bucket histogram
// of the middle three fifths of four rows, and the threshold at the
// deepest valley between its two main peaks, nearer the light one. It
// reports false when the histogram shows too little contrast. The matrix
// is the one hybrid returns, valid until the next call of either.
func (b *binarizer) global(p plane) (*gozxing.BitMatrix, bool) {
	buckets := histogram(p)
	black, ok := valley(buckets[:], 0)
	if !ok {
		return nil, false
	}
	return b.threshold(p, black), true
}

// histogram is the 32-bucket luminance histogram of global.
func histogram(p plane) [32]int {
	var buckets [32]int
	for y := 1; y < 5; y++ {
		row := p.pix[(p.h*y/5)*p.stride:]
		for x := p.w / 5; x < p.w*4/5; x++ {
			buckets[row[x]>>3]++
		}
	}
	return buckets
}

// minSideShare is the share of one side of the histogram that its second
// peak must hold for moreThresholds to split that side.
const minSideShare = 0.1

// moreThresholds returns black points to try after global's. One splits
// each side of global's threshold in two, where that side holds two peaks
// of its own: a code darker or lighter than everything around it (a dim
// screen on a bright counter, a pale print on a dark one) puts its own
// dark and light levels on one side, and the main threshold separates it
// from its surroundings instead of its modules from each other. Another
// lies midway between the darkest and lightest levels of the histogram
// (minMidShare of it beyond each), which blur leaves to a code's dark and
// light modules while it fills the valley between them. Black points
// within a bucket of one already listed, or of global's, are left out.
func moreThresholds(p plane) []int {
	buckets := histogram(p)
	black, ok := valley(buckets[:], 0)
	if !ok {
		return nil
	}
	var out []int
	add := func(t int) {
		if abs(t-black) <= 8 {
			return
		}
		for _, o := range out {
			if abs(t-o) <= 8 {
				return
			}
		}
		out = append(out, t)
	}
	for _, side := range [2][2]int{{0, black >> 3}, {black >> 3, len(buckets)}} {
		part := buckets[side[0]:side[1]]
		total := 0
		for _, c := range part {
			total += c
		}
		if t, ok := valley(part, minSideShare*float64(total)); ok {
			add(t + side[0]<<3)
		}
	}
	if lo, hi := percentile(buckets[:], minMidShare), percentile(buckets[:], 1-minMidShare); hi-lo > 2 {
		add((lo + hi + 1) << 2)
	}
	return out
}

// thresholdRow sets in words the bits of the pixels of pix below black.
func thresholdRow(pix []byte, words []uint32, black int) {
	for wi := range words {
		x0 := wi * 32
		var word uint32
		for bit, v := range pix[x0:min(x0+32, len(pix))] {
			if int(v) < black {
				word |= 1 << uint(bit)
			}
		}
		words[wi] = word
	}
}

// minMidShare is the share of the histogram left below the darkest and
// above the lightest level that moreThresholds takes the middle of.
const minMidShare = 0.02

// percentile returns the bucket below which share q of the histogram
// lies.
func percentile(buckets []int, q float64) int {
	total := 0
	for _, c := range buckets {
		total += c
	}
	seen := 0
	for x, c := range buckets {
		seen += c
		if float64(seen) > q*float64(total) {
			return x
		}
	}
	return len(buckets) - 1
}

// threshold binarizes p against the black point black into the matrix
// that hybrid returns, valid until the next call of either.
func (b *binarizer) threshold(p plane, black int) *gozxing.BitMatrix {
	if b.matrix == nil || b.matrix.GetWidth() != p.w || b.matrix.GetHeight() != p.h {
		b.matrix, _ = gozxing.NewBitMatrix(p.w, p.h)
	}
	if b.row == nil || b.row.GetSize() != p.w {
		b.row = gozxing.NewBitArray(p.w)
	}
	words := b.row.GetBitArray()
	for y := 0; y < p.h; y++ {
		thresholdRow(p.pix[y*p.stride:y*p.stride+p.w], words, black)
		b.matrix.SetRow(y, b.row)
	}
	return b.matrix
}

// valley returns the black point of a luminance histogram, as gozxing's
// GlobalHistogramBinarizer estimates it: the tallest bucket is one peak,
// the bucket with most weight times squared distance from it the other,
// and the threshold is the lowest point between them weighted towards the
// light peak. It reports false when the peaks are too close (at most
// two buckets apart) or the second peak's bucket holds fewer than
// minPeak.
func valley(buckets []int, minPeak float64) (int, bool) {
	if len(buckets) < 4 {
		return 0, false
	}
	first, firstSize, tallest := 0, 0, 0
	for x, c := range buckets {
		if c > firstSize {
			first, firstSize = x, c
		}
		tallest = max(tallest, c)
	}
	second, secondScore := 0, 0
	for x, c := range buckets {
		d := x - first
		if score := c * d * d; score > secondScore {
			second, secondScore = x, score
		}
	}
	if float64(buckets[second]) < minPeak {
		return 0, false
	}
	if first > second {
		first, second = second, first
	}
	if second-first <= 2 {
		return 0, false
	}
	best, bestScore := second-1, -1
	for x := second - 1; x > first; x-- {
		from := x - first
		if score := from * from * (second - x) * (tallest - buckets[x]); score > bestScore {
			best, bestScore = x, score
		}
	}
	return best << 3, true
}
