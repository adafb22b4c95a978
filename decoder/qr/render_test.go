package qr

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"
)

// Rendered vouchers: a 300-character voucher text as Encode draws it,
// placed on a 640×480 camera-like frame under one kind of degradation per
// set. Everything derives from a fixed seed, so the sets are the same on
// every run and machine.

const (
	frameW, frameH = 640, 480
	renderPerSet   = 20
)

// renderSets lists the degradations, in report order.
var renderSets = []string{"clean", "blur", "rotation", "perspective", "low-contrast", "inverted", "noise"}

// renderFrame returns image i of the named set and the text it shows.
func renderFrame(set string, i int) (*image.Gray, string, error) {
	var seed uint64
	for _, c := range set {
		seed = seed*131 + uint64(c)
	}
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	text := randomVoucher(r, 300)
	size := 220 + r.IntN(81) // 3.4 to 4.6 pixels a module for version 10
	code, err := Encode(text, size, DefaultLevel)
	if err != nil {
		return nil, "", err
	}

	dark, light := 20.0, 230.0
	bg := 170 + r.Float64()*60
	angle := (r.Float64()*2 - 1) * 3 * math.Pi / 180 // hand-held: a few degrees
	var jitter float64
	switch set {
	case "rotation":
		angle = (5 + r.Float64()*25) * math.Pi / 180
		if r.IntN(2) == 0 {
			angle = -angle
		}
	case "perspective":
		jitter = 0.08 + r.Float64()*0.10
	case "low-contrast":
		mid := 100 + r.Float64()*60
		spread := 20 + r.Float64()*15
		dark, light, bg = mid-spread, mid+spread, mid+spread-5
	case "inverted":
		dark, light, bg = 225, 25, 15+r.Float64()*20
	case "clean", "blur", "noise":
	default:
		return nil, "", fmt.Errorf("unknown set %q", set)
	}

	// Corners of the code on the frame, clockwise from top left.
	s := float64(size)
	cx := s/2 + 20 + r.Float64()*(frameW-s-40)
	cy := s/2 + 20 + r.Float64()*(frameH-s-40)
	if s+40 > frameH {
		cy = frameH / 2
	}
	h := homography(corners(r, cx, cy, s, angle, jitter), s)

	frame := image.NewGray(image.Rect(0, 0, frameW, frameH))
	// A soft lighting gradient across the frame.
	gx, gy := (r.Float64()*2-1)*0.1, (r.Float64()*2-1)*0.1
	for y := 0; y < frameH; y++ {
		for x := 0; x < frameW; x++ {
			shade := 1 + gx*(float64(x)/frameW-0.5) + gy*(float64(y)/frameH-0.5)
			v := bg
			// Code coordinates of the pixel centre.
			u, w, ok := h.apply(float64(x)+0.5, float64(y)+0.5)
			if ok && u >= 0 && w >= 0 && u < s && w < s {
				t := bilinear(code, u-0.5, w-0.5) / 255
				v = dark + t*(light-dark)
			}
			frame.Pix[y*frame.Stride+x] = clamp8(v * shade)
		}
	}

	switch set {
	case "blur":
		gaussian(frame, 0.9+r.Float64()*0.9)
	case "noise":
		sigma := 18 + r.Float64()*17
		for k, v := range frame.Pix {
			frame.Pix[k] = clamp8(float64(v) + r.NormFloat64()*sigma)
		}
	}
	return frame, text, nil
}

// corners returns the corners of a square of side s centred on (cx, cy),
// clockwise from top left, each moved at random by up to jitter×s in x and
// y (perspective), then turned by angle radians.
func corners(r *rand.Rand, cx, cy, s, angle, jitter float64) [4][2]float64 {
	var quad [4][2]float64
	for k, c := range [4][2]float64{{-1, -1}, {1, -1}, {1, 1}, {-1, 1}} {
		x := c[0]*s/2 + (r.Float64()*2-1)*jitter*s
		y := c[1]*s/2 + (r.Float64()*2-1)*jitter*s
		quad[k] = [2]float64{
			cx + x*math.Cos(angle) - y*math.Sin(angle),
			cy + x*math.Sin(angle) + y*math.Cos(angle),
		}
	}
	return quad
}

func randomVoucher(r *rand.Rand, n int) string {
	b := []byte("WK1:")
	for len(b) < n {
		b = append(b, base45Alphabet[r.IntN(len(base45Alphabet))])
	}
	return string(b)
}

func clamp8(v float64) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}

// bilinear samples g at (x, y), clamped to its edges.
func bilinear(g *image.Gray, x, y float64) float64 {
	b := g.Bounds()
	x = math.Max(0, math.Min(x, float64(b.Dx()-1)))
	y = math.Max(0, math.Min(y, float64(b.Dy()-1)))
	x0, y0 := int(x), int(y)
	x1, y1 := min(x0+1, b.Dx()-1), min(y0+1, b.Dy()-1)
	fx, fy := x-float64(x0), y-float64(y0)
	p := func(x, y int) float64 { return float64(g.Pix[y*g.Stride+x]) }
	top := p(x0, y0)*(1-fx) + p(x1, y0)*fx
	bot := p(x0, y1)*(1-fx) + p(x1, y1)*fx
	return top*(1-fy) + bot*fy
}

// proj is a 3×3 projective map, row-major, h[8] = 1.
type proj [9]float64

func (h proj) apply(x, y float64) (float64, float64, bool) {
	w := h[6]*x + h[7]*y + h[8]
	if math.Abs(w) < 1e-12 {
		return 0, 0, false
	}
	return (h[0]*x + h[1]*y + h[2]) / w, (h[3]*x + h[4]*y + h[5]) / w, true
}

// homography maps the frame quad onto the code square [0,s]², solving the
// eight-unknown linear system by Gaussian elimination.
func homography(quad [4][2]float64, s float64) proj {
	dst := [4][2]float64{{0, 0}, {s, 0}, {s, s}, {0, s}}
	var a [8][9]float64
	for k := 0; k < 4; k++ {
		x, y := quad[k][0], quad[k][1]
		u, v := dst[k][0], dst[k][1]
		a[2*k] = [9]float64{x, y, 1, 0, 0, 0, -u * x, -u * y, u}
		a[2*k+1] = [9]float64{0, 0, 0, x, y, 1, -v * x, -v * y, v}
	}
	for c := 0; c < 8; c++ {
		piv := c
		for r := c + 1; r < 8; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[piv][c]) {
				piv = r
			}
		}
		a[c], a[piv] = a[piv], a[c]
		for r := 0; r < 8; r++ {
			if r == c || a[c][c] == 0 {
				continue
			}
			f := a[r][c] / a[c][c]
			for k := c; k < 9; k++ {
				a[r][k] -= f * a[c][k]
			}
		}
	}
	var h proj
	for k := 0; k < 8; k++ {
		h[k] = a[k][8] / a[k][k]
	}
	h[8] = 1
	return h
}

// gaussian blurs g in place with standard deviation sigma, separably.
func gaussian(g *image.Gray, sigma float64) {
	rad := int(math.Ceil(3 * sigma))
	k := make([]float64, 2*rad+1)
	var sum float64
	for i := range k {
		d := float64(i - rad)
		k[i] = math.Exp(-d * d / (2 * sigma * sigma))
		sum += k[i]
	}
	for i := range k {
		k[i] /= sum
	}
	w, h := g.Bounds().Dx(), g.Bounds().Dy()
	tmp := make([]float64, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var v float64
			for i, kv := range k {
				xx := min(max(x+i-rad, 0), w-1)
				v += kv * float64(g.Pix[y*g.Stride+xx])
			}
			tmp[y*w+x] = v
		}
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var v float64
			for i, kv := range k {
				yy := min(max(y+i-rad, 0), h-1)
				v += kv * tmp[yy*w+x]
			}
			g.Pix[y*g.Stride+x] = clamp8(v)
		}
	}
}
