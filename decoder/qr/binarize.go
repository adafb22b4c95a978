package qr

import "github.com/makiuchi-d/gozxing"

// Local-threshold binarization, the algorithm of gozxing's HybridBinarizer
// (block black points from 8×8 blocks, each block thresholded against the
// average of its 5×5 neighbourhood), reading a strided plane in place and
// writing into a bit matrix and block table kept across frames.
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

// hybrid binarizes p (at least minBinarize on each side) and returns the
// bit matrix, valid until the next call; it sets every row. Set bits are
// dark.
func (b *binarizer) hybrid(p plane) *gozxing.BitMatrix {
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
			avg := sum >> (2 * blockPower)
			span = max(span, hi-lo)
			if hi-lo <= minDynRange {
				// A flat block is taken as background unless its
				// neighbours say the dark level is above its minimum.
				avg = lo / 2
				if y > 0 && x > 0 {
					nb := (points[(y-1)*subW+x] + 2*points[y*subW+x-1] + points[(y-1)*subW+x-1]) / 4
					if lo < nb {
						avg = nb
					}
				}
			}
			points[y*subW+x] = avg
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
	var buckets [32]int
	for y := 1; y < 5; y++ {
		row := p.pix[(p.h*y/5)*p.stride:]
		for x := p.w / 5; x < p.w*4/5; x++ {
			buckets[row[x]>>3]++
		}
	}
	black, ok := valley(buckets[:])
	if !ok {
		return nil, false
	}
	if b.matrix == nil || b.matrix.GetWidth() != p.w || b.matrix.GetHeight() != p.h {
		b.matrix, _ = gozxing.NewBitMatrix(p.w, p.h)
	}
	if b.row == nil || b.row.GetSize() != p.w {
		b.row = gozxing.NewBitArray(p.w)
	}
	words := b.row.GetBitArray()
	for y := 0; y < p.h; y++ {
		pix := p.pix[y*p.stride : y*p.stride+p.w]
		for wi := range words {
			x0 := wi * 32
			var word uint32
			for bit, v := range pix[x0:min(x0+32, p.w)] {
				if int(v) < black {
					word |= 1 << uint(bit)
				}
			}
			words[wi] = word
		}
		b.matrix.SetRow(y, b.row)
	}
	return b.matrix, true
}

// valley returns the black point of a luminance histogram, as gozxing's
// GlobalHistogramBinarizer estimates it: the tallest bucket is one peak,
// the bucket with most weight times squared distance from it the other,
// and the threshold is the lowest point between them weighted towards the
// light peak. It reports false when the peaks are too close.
func valley(buckets []int) (int, bool) {
	n := len(buckets)
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
	if first > second {
		first, second = second, first
	}
	if second-first <= n/16 {
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
