package qr

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"wicket/decoder"
)

// Fresh vouchers: real WK1 codes issued with newly generated keys and
// random claims, drawn into 640×480 camera frames in many placements, and
// frames that show no code at all. Everything derives from one seed, so a
// run can be repeated exactly; the benchmark picks a new seed each time.

// placement is one way a voucher is held in front of the camera. Ranges
// are [lo, hi]; a random value is drawn in each for every frame.
type placement struct {
	name     string
	ppm      [2]float64 // pixels a module
	angle    [2]float64 // rotation in degrees, either sign
	jitter   [2]float64 // perspective: each corner moved by up to this share of the side
	blur     [2]float64 // Gaussian σ in pixels, beyond the lens's own 0.5
	contrast [2]float64 // grey levels between dark and light modules; 0: print (200)
	noise    [2]float64 // sensor noise σ beyond the base 2.5
	inverted bool       // light modules on a dark screen
	glare    string     // "finder": a bright spot over one finder pattern; "data": over the data
	jpegQ    int        // JPEG-compress the frame at this quality
	shadow   bool       // a hard shadow edge across the code
}

// placements lists the placements, in report order. Unless stated, a code
// has 3.6 to 4.6 pixels a module, is turned by up to 3° and lit evenly.
var placements = []placement{
	{name: "square", ppm: [2]float64{3.6, 4.6}},
	{name: "tilt 3°", ppm: [2]float64{3.6, 4.6}, angle: [2]float64{1, 3}},
	{name: "tilt 8°", ppm: [2]float64{3.6, 4.6}, angle: [2]float64{5, 8}},
	{name: "rotation 15°", ppm: [2]float64{3.6, 4.6}, angle: [2]float64{13, 17}},
	{name: "rotation 30°", ppm: [2]float64{3.6, 4.6}, angle: [2]float64{28, 32}},
	{name: "rotation 45°", ppm: [2]float64{3.6, 4.6}, angle: [2]float64{40, 45}},
	{name: "perspective", ppm: [2]float64{3.6, 4.6}, angle: [2]float64{0, 3}, jitter: [2]float64{0.06, 0.12}},
	{name: "strong perspective", ppm: [2]float64{3.8, 4.6}, angle: [2]float64{0, 3}, jitter: [2]float64{0.12, 0.18}},
	{name: "perspective + 40°", ppm: [2]float64{3.8, 4.6}, angle: [2]float64{35, 45}, jitter: [2]float64{0.05, 0.10}},
	{name: "small", ppm: [2]float64{2.6, 3.2}, angle: [2]float64{0, 3}},
	{name: "large", ppm: [2]float64{6, 8}, angle: [2]float64{0, 3}},
	{name: "inverted", ppm: [2]float64{3.6, 4.6}, angle: [2]float64{0, 3}, inverted: true},
	{name: "blur", ppm: [2]float64{3.6, 4.6}, angle: [2]float64{0, 3}, blur: [2]float64{0.8, 1.3}},
	{name: "glare on finder", ppm: [2]float64{3.6, 4.6}, angle: [2]float64{0, 3}, glare: "finder"},
	{name: "glare on data", ppm: [2]float64{3.6, 4.6}, angle: [2]float64{0, 3}, glare: "data"},
	{name: "low contrast", ppm: [2]float64{3.6, 4.6}, angle: [2]float64{0, 3}, contrast: [2]float64{35, 60}},
	{name: "JPEG q20", ppm: [2]float64{3.6, 4.6}, angle: [2]float64{0, 3}, jpegQ: 20},
	{name: "noise", ppm: [2]float64{3.6, 4.6}, angle: [2]float64{0, 3}, noise: [2]float64{12, 22}},
	{name: "shadow", ppm: [2]float64{3.6, 4.6}, angle: [2]float64{0, 3}, shadow: true},
	{name: "hand-held", ppm: [2]float64{3.6, 4.6}, angle: [2]float64{0, 25}, jitter: [2]float64{0.03, 0.08}, blur: [2]float64{0.3, 0.8}, noise: [2]float64{3, 8}},
}

// between draws uniformly from r.
func between(rng *rand.Rand, r [2]float64) float64 {
	return r[0] + rng.Float64()*(r[1]-r[0])
}

// freshVouchers issues n vouchers with random claims, each signed by an
// Ed25519 key generated for it, as wicketctl issue makes them. Ed25519
// signs deterministically, so a seed gives the same texts on every run
// (ES256 signatures take fresh randomness; they are as long and as
// random-looking, so the codes would not differ in kind).
func freshVouchers(seed uint64, n int) ([]string, error) {
	r := rand.New(rand.NewPCG(seed, 0x766f7563686572))
	keys := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24), byte(seed >> 32), 'k', 'e', 'y'})
	texts := make([]string, 0, n)
	for i := range n {
		_, key, err := ed25519.GenerateKey(keys)
		if err != nil {
			return nil, err
		}
		s, err := decoder.NewSigner(key, nil)
		if err != nil {
			return nil, err
		}
		text, err := decoder.Issue(s, randomClaims(r))
		if err != nil {
			return nil, fmt.Errorf("issue voucher %d: %w", i, err)
		}
		texts = append(texts, text)
	}
	return texts, nil
}

// randomClaims returns the claims of a voucher as wicketctl issue fills
// them: a 16-byte random ID, a 32-byte keyed-hash subject, a masked name,
// and a test and vaccination where the holder has them.
func randomClaims(r *rand.Rand) *decoder.Claims {
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	iat := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(365 * 24 * time.Hour))))
	kind := decoder.Kind(1 + r.IntN(3))
	valid := 5 * time.Minute
	if kind == decoder.KindPrinted {
		valid = 720 * time.Hour
	}
	surnames := []string{"张", "王", "李", "赵", "陈", "刘", "杨", "黄"}
	name := surnames[r.IntN(len(surnames))] + "*" + surnames[r.IntN(len(surnames))]
	if r.IntN(3) == 0 {
		name = string(rune('A'+r.IntN(26))) + "*** " + string(rune('A'+r.IntN(26))) + "***"
	}
	c := &decoder.Claims{
		Issuer: string([]byte{byte('A' + r.IntN(26)), byte('A' + r.IntN(26))}), IssuedAt: iat.Unix(), Expiry: iat.Add(valid).Unix(),
		ID: randBytes(16),
		Voucher: decoder.Voucher{
			Version: decoder.VoucherVersion, Subject: randBytes(32),
			Colour: decoder.Colour(1 + r.IntN(3)), Kind: kind, Class: decoder.Class(1 + r.IntN(3)),
			Name: name,
		},
	}
	if r.IntN(2) == 0 {
		c.Voucher.Test = &decoder.Test{Kind: decoder.TestNAAT, Result: decoder.ResultNegative, Sampled: iat.Add(-time.Duration(r.IntN(72)) * time.Hour).Unix()}
	}
	if r.IntN(2) == 0 {
		c.Voucher.Vaccination = &decoder.Vaccination{Doses: uint8(1 + r.IntN(3)), Last: iat.Add(-time.Duration(r.IntN(300*24)) * time.Hour).Unix()}
	}
	return c
}

// moduleMatrix returns text's code at one pixel a module with its quiet
// zone, as Encode draws it for PNG vouchers.
func moduleMatrix(text string) (*image.Gray, error) {
	for side := MinSize; side <= MaxSize; side += 4 {
		code, err := Encode(text, side, DefaultLevel)
		if err == nil {
			return code, nil
		}
	}
	return nil, fmt.Errorf("no code size fits %d characters", len(text))
}

// freshFrame draws code (one pixel a module) in placement p; r draws
// every random choice.
func freshFrame(code *image.Gray, p placement, r *rand.Rand) (*image.Gray, error) {
	n := float64(code.Bounds().Dx()) // modules, quiet zone included
	ppm := between(r, p.ppm)
	side := n * ppm
	angle := between(r, p.angle) * math.Pi / 180
	if r.IntN(2) == 0 {
		angle = -angle
	}
	jitter := between(r, p.jitter)

	// Centre so that the rotated code stays inside the frame.
	reach := side/2*(math.Abs(math.Cos(angle))+math.Abs(math.Sin(angle)))*(1+2*jitter) + 4
	cx := frameW / 2.0
	cy := frameH / 2.0
	if room := frameW/2.0 - reach; room > 0 {
		cx += (r.Float64()*2 - 1) * room
	}
	if room := frameH/2.0 - reach; room > 0 {
		cy += (r.Float64()*2 - 1) * room
	}
	quad := corners(r, cx, cy, side, angle, jitter)
	h := homography(quad, n)

	dark, light := 25.0, 225.0
	if p.contrast[1] > 0 {
		spread := between(r, p.contrast)
		mid := 90 + r.Float64()*70
		dark, light = mid-spread/2, mid+spread/2
	}
	if p.inverted {
		dark, light = 235, 30
	}
	bg := 120 + r.Float64()*100
	if p.inverted {
		bg = 10 + r.Float64()*30
	}

	minX, minY, maxX, maxY := frameW, frameH, 0, 0
	for _, q := range quad {
		minX, maxX = min(minX, int(q[0])-1), max(maxX, int(q[0])+2)
		minY, maxY = min(minY, int(q[1])-1), max(maxY, int(q[1])+2)
	}
	frame := image.NewGray(image.Rect(0, 0, frameW, frameH))
	gx, gy := (r.Float64()*2-1)*0.15, (r.Float64()*2-1)*0.15
	// Shadow: a straight edge through the code, darker on one side.
	sa := r.Float64() * 2 * math.Pi
	sx, sy := math.Cos(sa), math.Sin(sa)
	sd := sx*cx + sy*cy + (r.Float64()*2-1)*side/4
	const sub = 2 // supersamples a pixel side
	for y := range frameH {
		for x := range frameW {
			v := bg
			if x >= minX && x <= maxX && y >= minY && y <= maxY {
				var sum, hits float64
				for j := range sub {
					for i := range sub {
						u, w, ok := h.apply(float64(x)+(float64(i)+0.5)/sub, float64(y)+(float64(j)+0.5)/sub)
						if !ok || u < 0 || w < 0 || u >= n || w >= n {
							sum += bg
							continue
						}
						hits++
						if code.Pix[int(w)*code.Stride+int(u)] < 128 {
							sum += dark
						} else {
							sum += light
						}
					}
				}
				if hits > 0 {
					v = sum / (sub * sub)
				}
			}
			shade := 1 + gx*(float64(x)/frameW-0.5) + gy*(float64(y)/frameH-0.5)
			if p.shadow && sx*float64(x)+sy*float64(y) > sd {
				shade *= 0.45
			}
			frame.Pix[y*frame.Stride+x] = clamp8(v * shade)
		}
	}

	if p.glare != "" {
		// A specular highlight: a bright elliptical spot that saturates
		// its centre, over one finder pattern or over the data.
		u, w := 7.5, 7.5 // centre of a finder, in modules (quiet zone included)
		q := n - 4 - 3.5
		switch fp := r.IntN(3); {
		case p.glare == "data":
			u, w = n/2+(r.Float64()*2-1)*n/8, n/2+(r.Float64()*2-1)*n/8
		case fp == 1:
			u = q
		case fp == 2:
			w = q
		default:
			u, w = 4+3.5, 4+3.5
		}
		gxp, gyp := frameCoord(quad, n, u, w)
		radius := (3 + r.Float64()*2) * ppm
		glare(frame, gxp, gyp, radius, radius*(0.5+r.Float64()*0.5), r.Float64()*math.Pi, 180+r.Float64()*100)
	}
	gaussian(frame, 0.5+between(r, p.blur))
	sigma := 2.5 + between(r, p.noise)
	for k, v := range frame.Pix {
		frame.Pix[k] = clamp8(float64(v) + r.NormFloat64()*sigma)
	}
	if p.jpegQ > 0 {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, frame, &jpeg.Options{Quality: p.jpegQ}); err != nil {
			return nil, err
		}
		img, err := jpeg.Decode(&buf)
		if err != nil {
			return nil, err
		}
		g, ok := img.(*image.Gray)
		if !ok {
			return nil, fmt.Errorf("JPEG decoded as %T", img)
		}
		frame = g
	}
	return frame, nil
}

// frameCoord maps code coordinates (u, w), in modules, to the frame:
// bilinear between the quad's corners, exact for rotation and close for
// mild perspective.
func frameCoord(quad [4][2]float64, n, u, w float64) (float64, float64) {
	a, b := u/n, w/n
	var p [2]float64
	for k := range 2 {
		top := quad[0][k]*(1-a) + quad[1][k]*a
		bot := quad[3][k]*(1-a) + quad[2][k]*a
		p[k] = top*(1-b) + bot*b
	}
	return p[0], p[1]
}

// glare brightens an elliptical spot (semi-axes a and b, turned by
// theta) towards white with a Gaussian fall-off of the given strength.
func glare(g *image.Gray, cx, cy, a, b, theta, strength float64) {
	c, s := math.Cos(theta), math.Sin(theta)
	rad := int(2*math.Max(a, b)) + 1
	for y := max(0, int(cy)-rad); y < min(g.Bounds().Dy(), int(cy)+rad); y++ {
		for x := max(0, int(cx)-rad); x < min(g.Bounds().Dx(), int(cx)+rad); x++ {
			dx, dy := float64(x)-cx, float64(y)-cy
			u, v := (dx*c+dy*s)/a, (-dx*s+dy*c)/b
			k := math.Exp(-(u*u + v*v))
			i := y*g.Stride + x
			g.Pix[i] = clamp8(float64(g.Pix[i]) + k*strength)
		}
	}
}

// emptyKinds names the kinds of frames without a code, in report order.
var emptyKinds = []string{"background", "texture", "text", "partial code"}

// emptyFrame returns a frame of the given kind that shows no whole code:
// smooth random backgrounds, textures with finder-like runs (checks,
// stripes, rectangles), printed text, and a voucher cut by the frame's
// edge so that more than its error correction can restore is missing.
func emptyFrame(kind string, r *rand.Rand, voucher *image.Gray) (*image.Gray, error) {
	f := image.NewGray(image.Rect(0, 0, frameW, frameH))
	// Smooth background: a few large soft blobs over a base level.
	base := 60 + r.Float64()*150
	type blob struct{ x, y, s, a float64 }
	var blobs []blob
	for range 4 + r.IntN(5) {
		blobs = append(blobs, blob{r.Float64() * frameW, r.Float64() * frameH, 40 + r.Float64()*160, (r.Float64()*2 - 1) * 80})
	}
	for y := range frameH {
		for x := range frameW {
			v := base
			for _, b := range blobs {
				dx, dy := (float64(x)-b.x)/b.s, (float64(y)-b.y)/b.s
				v += b.a * math.Exp(-(dx*dx + dy*dy))
			}
			f.Pix[y*f.Stride+x] = clamp8(v)
		}
	}
	fill := func(x0, y0, x1, y1 int, v uint8) {
		for y := max(0, y0); y < min(frameH, y1); y++ {
			for x := max(0, x0); x < min(frameW, x1); x++ {
				f.Pix[y*f.Stride+x] = v
			}
		}
	}
	switch kind {
	case "background":
	case "texture":
		switch r.IntN(3) {
		case 0: // checks
			cell := 3 + r.IntN(12)
			for y := 0; y < frameH; y += cell {
				for x := 0; x < frameW; x += cell {
					if (x/cell+y/cell)%2 == 0 {
						fill(x, y, x+cell, y+cell, uint8(20+r.IntN(40)))
					}
				}
			}
		case 1: // stripes of random widths
			for x := 0; x < frameW; {
				w := 2 + r.IntN(14)
				if r.IntN(2) == 0 {
					fill(x, 0, x+w, frameH, uint8(20+r.IntN(40)))
				}
				x += w
			}
		default: // nested rectangles, some with finder-like proportions
			for range 30 + r.IntN(40) {
				x, y, s := r.IntN(frameW), r.IntN(frameH), 3+r.IntN(12)
				fill(x, y, x+7*s, y+7*s, 20)
				fill(x+s, y+s, x+6*s, y+6*s, 230)
				fill(x+2*s, y+2*s, x+5*s, y+5*s, 20)
			}
		}
	case "text":
		scale := 1 + r.IntN(3)
		small := image.NewGray(image.Rect(0, 0, frameW/scale, frameH/scale))
		for i := range small.Pix {
			small.Pix[i] = 255
		}
		d := font.Drawer{Dst: small, Src: image.Black, Face: basicfont.Face7x13}
		for line := 0; line*15+13 < small.Bounds().Dy(); line++ {
			var b []byte
			for range small.Bounds().Dx() / 7 {
				b = append(b, " ETAOINSHRDLUetaoinshrdlu0123456789:/-"[r.IntN(38)])
			}
			d.Dot = fixed.P(2, line*15+13)
			d.DrawString(string(b))
		}
		for y := range frameH {
			for x := range frameW {
				if small.Pix[min(y/scale, small.Rect.Dy()-1)*small.Stride+min(x/scale, small.Rect.Dx()-1)] < 128 {
					f.Pix[y*f.Stride+x] = 30
				}
			}
		}
	case "partial code":
		// The voucher at 4 px a module, with only its left 40% or top
		// 40% inside the frame.
		n := voucher.Bounds().Dx()
		ppm := 4
		x0, y0 := frameW-int(0.4*float64(n*ppm)), (frameH-n*ppm)/2
		if r.IntN(2) == 0 {
			x0, y0 = (frameW-n*ppm)/2, frameH-int(0.4*float64(n*ppm))
		}
		for y := range n * ppm {
			for x := range n * ppm {
				if voucher.Pix[(y/ppm)*voucher.Stride+x/ppm] < 128 {
					fill(x0+x, y0+y, x0+x+1, y0+y+1, 25)
				} else {
					fill(x0+x, y0+y, x0+x+1, y0+y+1, 225)
				}
			}
		}
	default:
		return nil, fmt.Errorf("unknown empty frame kind %q", kind)
	}
	gaussian(f, 0.6)
	for k, v := range f.Pix {
		f.Pix[k] = clamp8(float64(v) + r.NormFloat64()*3)
	}
	return f, nil
}
