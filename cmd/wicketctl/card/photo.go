package card

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // ReadPhoto takes JPEG
	_ "image/png"  // and PNG
	"io"
	"os"

	xdraw "golang.org/x/image/draw"
)

// Photo limits. A holder photo for a card is a passport-style picture of
// a few hundred kilobytes; these bounds refuse anything else before it is
// decoded, so a file that claims a huge image cannot take the memory.
const (
	// MaxPhotoBytes bounds the photo file: a 12-megapixel camera JPEG
	// is 3 to 6 MiB.
	MaxPhotoBytes = 8 << 20
	// MaxPhotoSide bounds each side in pixels, and MaxPhotoPixels their
	// product (a 24-megapixel camera picture decodes to 96 MiB of RGBA).
	MaxPhotoSide   = 8000
	MaxPhotoPixels = 24_000_000
	// MinPhotoSide is the smallest side taken: the photo box is printed
	// at photoW × photoH pixels, and a smaller picture is a thumbnail too
	// coarse to compare a face with.
	MinPhotoSide = 120
)

// ErrPhoto: the holder photo file is missing, unreadable, too large, or
// not a JPEG or PNG image; the message says which and what to do.
var ErrPhoto = errors.New("unusable photo")

// ReadPhoto reads a holder photo (JPEG or PNG) from path for Card.Photo.
// It checks the file's size and the image's format and dimensions before
// decoding it. Errors wrap ErrPhoto.
func ReadPhoto(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPhoto, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPhoto, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file; give the JPEG or PNG file of the holder's photo", ErrPhoto, path)
	}
	if st.Size() > MaxPhotoBytes {
		return nil, fmt.Errorf("%w: %s is %d bytes, more than %d; scale the photo down (a card prints it at about 16 × 22 mm)", ErrPhoto, path, st.Size(), MaxPhotoBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxPhotoBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrPhoto, path, err)
	}
	return decodePhoto(path, data)
}

// decodePhoto checks the header of data and decodes it.
func decodePhoto(name string, data []byte) (image.Image, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %s is not a JPEG or PNG image (%v)", ErrPhoto, name, err)
	case format != "jpeg" && format != "png":
		return nil, fmt.Errorf("%w: %s is a %s image; convert it to JPEG or PNG", ErrPhoto, name, format)
	case cfg.Width > MaxPhotoSide || cfg.Height > MaxPhotoSide || cfg.Width*cfg.Height > MaxPhotoPixels:
		return nil, fmt.Errorf("%w: %s is %d × %d pixels, more than %d × %d or %d pixels in all; scale it down", ErrPhoto, name, cfg.Width, cfg.Height, MaxPhotoSide, MaxPhotoSide, MaxPhotoPixels)
	case cfg.Width < MinPhotoSide || cfg.Height < MinPhotoSide:
		return nil, fmt.Errorf("%w: %s is %d × %d pixels, less than %d on a side: too coarse to compare a face with; use a larger photo", ErrPhoto, name, cfg.Width, cfg.Height, MinPhotoSide)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrPhoto, name, err)
	}
	return img, nil
}

// drawPhoto scales src to cover dst's rectangle r (cutting the longer
// side's edges evenly, never stretching the face) and draws it there.
func drawPhoto(dst xdraw.Image, r image.Rectangle, src image.Image) {
	b := src.Bounds()
	// Cut src to r's aspect ratio: w/h of the source region = r.Dx()/r.Dy().
	crop := b
	if b.Dx()*r.Dy() > b.Dy()*r.Dx() {
		w := b.Dy() * r.Dx() / r.Dy()
		crop.Min.X = b.Min.X + (b.Dx()-w)/2
		crop.Max.X = crop.Min.X + w
	} else {
		h := b.Dx() * r.Dy() / r.Dx()
		crop.Min.Y = b.Min.Y + (b.Dy()-h)/2
		crop.Max.Y = crop.Min.Y + h
	}
	xdraw.CatmullRom.Scale(dst, r, src, crop, xdraw.Src, nil)
}
