package camera

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
)

// YUYVToGray takes the luminance of a packed YUYV 4:2:2 frame (Y0 U Y1 V
// per two pixels) into dst, reusing dst's pixels when they are large
// enough, and returns it. It reads the first w*h*2 bytes of src; a shorter
// src or an odd width is an ErrBadFrame.
func YUYVToGray(dst *image.Gray, src []byte, w, h int) (*image.Gray, error) {
	if w <= 0 || h <= 0 || w%2 != 0 || w > MaxFrameSide || h > MaxFrameSide {
		return dst, fmt.Errorf("%w: yuyv %dx%d", ErrBadFrame, w, h)
	}
	n := w * h
	if len(src) < 2*n {
		return dst, fmt.Errorf("%w: yuyv %dx%d needs %d bytes, got %d", ErrBadFrame, w, h, 2*n, len(src))
	}
	dst = sizedGray(dst, w, h)
	pix := dst.Pix[:n]
	src = src[:2*n]
	for i := range pix {
		pix[i] = src[2*i]
	}
	return dst, nil
}

// JPEGToGray decodes one JPEG and takes its luminance into dst, reusing
// dst's pixels when they are large enough, and returns it. For the usual
// YCbCr JPEG it copies the Y plane: no colour conversion. Frames from
// cameras that leave out the Huffman tables (common in MJPEG) are decoded
// with the standard tables. A JPEG that does not decode, or is larger than
// MaxFrameSide, is an ErrBadFrame.
func JPEGToGray(dst *image.Gray, data []byte) (*image.Gray, error) {
	if len(data) > MaxJPEGSize {
		return dst, fmt.Errorf("%w: jpeg of %d bytes, at most %d", ErrBadFrame, len(data), MaxJPEGSize)
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return dst, fmt.Errorf("%w: jpeg: %w", ErrBadFrame, err)
	}
	if cfg.Width > MaxFrameSide || cfg.Height > MaxFrameSide {
		return dst, fmt.Errorf("%w: jpeg %dx%d, at most %d a side", ErrBadFrame, cfg.Width, cfg.Height, MaxFrameSide)
	}
	img, err := jpeg.Decode(bytes.NewReader(withHuffmanTables(data)))
	if err != nil {
		return dst, fmt.Errorf("%w: jpeg: %w", ErrBadFrame, err)
	}
	return lumaOf(dst, img), nil
}

// lumaOf takes the luminance of img into dst. YCbCr and Gray images are
// copied plane by plane; anything else goes through color.GrayModel.
func lumaOf(dst *image.Gray, img image.Image) *image.Gray {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	switch m := img.(type) {
	case *image.Gray:
		return copyGray(dst, m)
	case *image.YCbCr:
		dst = sizedGray(dst, w, h)
		for y := range h {
			i := m.YOffset(b.Min.X, b.Min.Y+y)
			copy(dst.Pix[y*w:(y+1)*w], m.Y[i:i+w])
		}
		return dst
	}
	dst = sizedGray(dst, w, h)
	for y := range h {
		for x := range w {
			dst.Pix[y*w+x] = color.GrayModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray).Y
		}
	}
	return dst
}
