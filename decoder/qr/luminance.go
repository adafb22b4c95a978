package qr

import "image"

// plane is a view of 8-bit luminance, 0 black to 255 white: pixel (x, y)
// is pix[y*stride+x]. It may alias a caller's image or a Decoder's buffer.
type plane struct {
	pix    []byte
	stride int
	w, h   int
}

// view returns the plane of r (already clipped to g's bounds) inside g,
// without copying.
func view(g *image.Gray, r image.Rectangle) plane {
	if r.Empty() {
		return plane{}
	}
	i := g.PixOffset(r.Min.X, r.Min.Y)
	end := g.PixOffset(r.Max.X-1, r.Max.Y-1) + 1
	return plane{pix: g.Pix[i:end], stride: g.Stride, w: r.Dx(), h: r.Dy()}
}

// grow returns buf resized to n bytes, reallocating only when it is too
// small, so a Decoder's buffers settle at the largest frame seen.
func grow(buf []byte, n int) []byte {
	if cap(buf) < n {
		return make([]byte, n)
	}
	return buf[:n]
}

// downscale box-averages p by n in each direction into buf and returns the
// smaller plane; a partial block at the right or bottom edge is dropped.
func downscale(p plane, n int, buf *[]byte) plane {
	w, h := p.w/n, p.h/n
	*buf = grow(*buf, w*h)
	out := plane{pix: *buf, stride: w, w: w, h: h}
	area := uint32(n * n)
	// sums holds one running total per output column for the current band.
	var sums [1024]uint32
	for x0 := 0; x0 < w; x0 += len(sums) {
		cols := min(len(sums), w-x0)
		for y := 0; y < h; y++ {
			s := sums[:cols]
			clear(s)
			for dy := 0; dy < n; dy++ {
				row := p.pix[(y*n+dy)*p.stride+x0*n:]
				for x := range s {
					b := row[x*n : x*n+n]
					for _, v := range b {
						s[x] += uint32(v)
					}
				}
			}
			dst := out.pix[y*w+x0 : y*w+x0+cols]
			for x, v := range s {
				dst[x] = uint8((v + area/2) / area)
			}
		}
	}
	return out
}

// toGray converts r of img to grey into buf, row-major with stride r.Dx().
// Transparent pixels count as white, as if the image lay on paper. The
// caller has checked the size against MaxPixels.
func toGray(img image.Image, r image.Rectangle, buf *[]byte) plane {
	w, h := r.Dx(), r.Dy()
	*buf = grow(*buf, w*h)
	pix := *buf
	switch m := img.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			i := m.PixOffset(r.Min.X, r.Min.Y+y)
			copy(pix[y*w:(y+1)*w], m.Pix[i:i+w])
		}
	case *image.YCbCr:
		// Camera frames: the Y plane is the luminance.
		for y := 0; y < h; y++ {
			i := m.YOffset(r.Min.X, r.Min.Y+y)
			copy(pix[y*w:(y+1)*w], m.Y[i:i+w])
		}
	case *image.RGBA:
		// Premultiplied: over white, each channel gains 255-alpha.
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(r.Min.X, r.Min.Y+y):]
			dst := pix[y*w : (y+1)*w]
			for x := range dst {
				p := row[4*x : 4*x+4 : 4*x+4]
				lum := (uint32(p[0]) + 2*uint32(p[1]) + uint32(p[2])) / 4
				dst[x] = uint8(lum + 255 - uint32(p[3]))
			}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(r.Min.X, r.Min.Y+y):]
			dst := pix[y*w : (y+1)*w]
			for x := range dst {
				p := row[4*x : 4*x+4 : 4*x+4]
				lum := (uint32(p[0]) + 2*uint32(p[1]) + uint32(p[2])) / 4
				a := uint32(p[3])
				dst[x] = uint8((lum*a + 255*(255-a)) / 255)
			}
		}
	default:
		for y := 0; y < h; y++ {
			dst := pix[y*w : (y+1)*w]
			for x := range dst {
				cr, cg, cb, ca := img.At(r.Min.X+x, r.Min.Y+y).RGBA()
				lum := (cr+2*cg+cb)/4 + 0xffff - ca
				dst[x] = uint8(lum >> 8)
			}
		}
	}
	return plane{pix: pix, stride: w, w: w, h: h}
}

// maxUpscalePixels bounds the images that get a double-size retry: up to
// 400×400 the copy costs at most 640 KB and a search of four times the
// area. With Options.TryHarder the bound is maxUpscaleHarder, which covers
// VGA camera frames at about 20 ms more per frame without a code (x86).
const (
	maxUpscalePixels = 400 * 400
	maxUpscaleHarder = 640 * 480
)

// upscale doubles p in each direction by bilinear interpolation (pixel
// centres aligned) into buf.
func upscale(p plane, buf *[]byte) plane {
	w, h := 2*p.w, 2*p.h
	*buf = grow(*buf, w*h)
	out := plane{pix: *buf, stride: w, w: w, h: h}
	at := func(x, y int) int {
		x = min(max(x, 0), p.w-1)
		y = min(max(y, 0), p.h-1)
		return int(p.pix[y*p.stride+x])
	}
	for y := 0; y < h; y++ {
		// Output pixel y samples source y/2 - 1/4: weights 1:3 between
		// the two nearest source rows.
		y0, y1 := (y-1)>>1, (y+1)>>1
		wy0, wy1 := 1, 3
		if y&1 == 1 {
			wy0, wy1 = 3, 1
		}
		for x := 0; x < w; x++ {
			x0, x1 := (x-1)>>1, (x+1)>>1
			wx0, wx1 := 1, 3
			if x&1 == 1 {
				wx0, wx1 = 3, 1
			}
			v := wy0*(wx0*at(x0, y0)+wx1*at(x1, y0)) + wy1*(wx0*at(x0, y1)+wx1*at(x1, y1))
			out.pix[y*w+x] = uint8((v + 8) / 16)
		}
	}
	return out
}

// sharpen writes p with its 3×3 local mean subtracted once more (an
// unsharp mask of amount 1) into buf, to steepen blurred module edges.
func sharpen(p plane, buf *[]byte) plane {
	w, h := p.w, p.h
	*buf = grow(*buf, w*h)
	out := plane{pix: *buf, stride: w, w: w, h: h}
	for y := 0; y < h; y++ {
		y0, y1 := max(y-1, 0), min(y+1, h-1)
		r0, r1, r2 := p.pix[y0*p.stride:], p.pix[y*p.stride:], p.pix[y1*p.stride:]
		for x := 0; x < w; x++ {
			x0, x2 := max(x-1, 0), min(x+1, w-1)
			sum := int(r0[x0]) + int(r0[x]) + int(r0[x2]) +
				int(r1[x0]) + int(r1[x]) + int(r1[x2]) +
				int(r2[x0]) + int(r2[x]) + int(r2[x2])
			v := 2*int(r1[x]) - (sum+4)/9
			out.pix[y*w+x] = uint8(min(max(v, 0), 255))
		}
	}
	return out
}
