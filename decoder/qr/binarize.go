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
	points []int
	matrix *gozxing.BitMatrix
}

// hybrid binarizes p (at least minBinarize on each side) and returns the
// bit matrix, valid until the next call. Set bits are dark.
func (b *binarizer) hybrid(p plane) *gozxing.BitMatrix {
	if b.matrix == nil || b.matrix.GetWidth() != p.w || b.matrix.GetHeight() != p.h {
		b.matrix, _ = gozxing.NewBitMatrix(p.w, p.h)
	} else {
		b.matrix.Clear()
	}
	subW := (p.w + blockSize - 1) >> blockPower
	subH := (p.h + blockSize - 1) >> blockPower
	if cap(b.points) < subW*subH {
		b.points = make([]int, subW*subH)
	}
	points := b.points[:subW*subH]
	maxY, maxX := p.h-blockSize, p.w-blockSize

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

	for y := 0; y < subH; y++ {
		yo := min(y<<blockPower, maxY)
		top := clampInt(y, 2, subH-3)
		for x := 0; x < subW; x++ {
			xo := min(x<<blockPower, maxX)
			left := clampInt(x, 2, subW-3)
			sum := 0
			for z := -2; z <= 2; z++ {
				r := points[(top+z)*subW+left-2 : (top+z)*subW+left+3]
				sum += r[0] + r[1] + r[2] + r[3] + r[4]
			}
			t := sum / 25
			for yy := 0; yy < blockSize; yy++ {
				row := p.pix[(yo+yy)*p.stride+xo : (yo+yy)*p.stride+xo+blockSize]
				for xx, v := range row {
					// <= so that black (0) stays black when the threshold is 0.
					if int(v) <= t {
						b.matrix.Set(xo+xx, yo+yy)
					}
				}
			}
		}
	}
	return b.matrix
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
