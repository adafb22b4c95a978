package qr

import (
	"fmt"

	"github.com/makiuchi-d/gozxing"
)

// lumaSource is a gozxing.LuminanceSource over a plane, for comparing this
// package's binarizers with gozxing's. Its matrix is made contiguous in a buffer kept across frames.
type lumaSource struct {
	gozxing.LuminanceSourceBase
	p   plane
	mat []byte
}

var _ gozxing.LuminanceSource = (*lumaSource)(nil)

func (s *lumaSource) reset(p plane) {
	s.p = p
	s.Width, s.Height = p.w, p.h
}

// GetRow copies row y into row, or a new slice if row is too short.
func (s *lumaSource) GetRow(y int, row []byte) ([]byte, error) {
	if y < 0 || y >= s.p.h {
		return nil, fmt.Errorf("row %d outside [0,%d)", y, s.p.h)
	}
	if len(row) < s.p.w {
		row = make([]byte, s.p.w)
	}
	copy(row, s.p.pix[y*s.p.stride:y*s.p.stride+s.p.w])
	return row, nil
}

// GetMatrix returns the plane row-major with stride equal to the width;
// callers must not modify it.
func (s *lumaSource) GetMatrix() []byte {
	w, h := s.p.w, s.p.h
	if s.p.stride == w {
		return s.p.pix[:w*h]
	}
	s.mat = grow(s.mat, w*h)
	for y := 0; y < h; y++ {
		copy(s.mat[y*w:(y+1)*w], s.p.pix[y*s.p.stride:])
	}
	return s.mat
}

// Invert is not used by this package's decoding, which inverts bit
// matrices instead; it returns gozxing's generic wrapper.
func (s *lumaSource) Invert() gozxing.LuminanceSource { return gozxing.LuminanceSourceInvert(s) }

func (s *lumaSource) String() string { return gozxing.LuminanceSourceString(s) }
