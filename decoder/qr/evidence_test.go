package qr

import (
	"image"
	"math/rand/v2"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode/detector"
)

// TestTimingShare checks that the timing pattern between two finder
// patterns of a code in a clean frame alternates on the modules
// timingShare samples, in at least minTimingShare of them, and more than
// the row the same distance on the other side of the leg (data, or the
// quiet zone).
func TestTimingShare(t *testing.T) {
	const seed = 7
	texts, err := freshVouchers(seed, 6)
	if err != nil {
		t.Fatal(err)
	}
	mirror := func(p, a, b gozxing.ResultPoint) *detector.FinderPattern {
		// p reflected through the line from a to b.
		dx, dy := b.GetX()-a.GetX(), b.GetY()-a.GetY()
		f := ((p.GetX()-a.GetX())*dx + (p.GetY()-a.GetY())*dy) / (dx*dx + dy*dy)
		fx, fy := a.GetX()+f*dx, a.GetY()+f*dy
		return detector.NewFinderPattern(2*fx-p.GetX(), 2*fy-p.GetY(), 1, 1)
	}
	legs := 0
	for _, name := range []string{"square", "tilt 8°", "rotation 30°", "rotation 45°", "perspective"} {
		var pl placement
		for _, p := range placements {
			if p.name == name {
				pl = p
			}
		}
		for v, text := range texts {
			m, _, bl, tl, tr, ok := freshTriple(t, seed, v, text, pl)
			if !ok {
				continue // the finder's choice is not what is tested here
			}
			if t, ok := plausible(bl, tl, tr); !ok || t.distorted > 0.25 {
				continue // not a code's corners: a pattern in the data fooled the finder
			}
			for _, leg := range [2][3]*detector.FinderPattern{{tl, tr, bl}, {tl, bl, tr}} {
				a, b, c := leg[0], leg[1], leg[2]
				legs++
				share := timingShare(m, a, b, c)
				other := timingShare(m, a, b, mirror(c, a, b))
				if share < minTimingShare || share <= other {
					t.Errorf("%s, voucher %d: timing share %.2f, other side %.2f; want at least %v and more than the other side", name, v, share, other, minTimingShare)
				}
			}
		}
	}
	if legs < 50 {
		t.Errorf("checked %d legs; want at least 50", legs)
	}
}

// freshImage draws voucher v (text) in placement pl as the fresh-voucher
// benchmark with seed does, and returns the frame and the code's size in
// modules.
func freshImage(t *testing.T, seed uint64, v int, text string, pl placement) (*image.Gray, int) {
	t.Helper()
	code, err := moduleMatrix(text)
	if err != nil {
		t.Fatal(err)
	}
	img, err := freshFrame(code, pl, rand.New(rand.NewPCG(seed, frameSeed(v, pl.name, 0))))
	if err != nil {
		t.Fatal(err)
	}
	return img, code.Bounds().Dx() - 2*QuietZone
}

// placementNamed returns the placement called name.
func placementNamed(t *testing.T, name string) placement {
	t.Helper()
	for _, pl := range placements {
		if pl.name == name {
			return pl
		}
	}
	t.Fatalf("no placement %q", name)
	return placement{}
}

// freshTriple draws voucher v (text) in placement pl as the fresh-voucher
// benchmark with seed does, binarizes the frame, and returns the bit
// matrix, the code's size in modules and the finder patterns gozxing's
// finder picks; ok is false when it picks none.
func freshTriple(t *testing.T, seed uint64, v int, text string, pl placement) (m *gozxing.BitMatrix, dim int, bl, tl, tr *detector.FinderPattern, ok bool) {
	t.Helper()
	img, dim := freshImage(t, seed, v, text, pl)
	var b binarizer
	m = b.hybrid(view(img, img.Bounds()))
	hard := map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_TRY_HARDER: true}
	info, err := detector.NewFinderPatternFinder(m, nil).Find(hard)
	if err != nil {
		return nil, 0, nil, nil, nil, false
	}
	return m, dim, info.GetBottomLeft(), info.GetTopLeft(), info.GetTopRight(), true
}

// TestNoEvidenceInPartialCodes searches frames that show a voucher cut by
// the frame's edge: their two finder patterns are pairable, but no side
// of the pair shows a timing pattern that leads to a corner in the
// frame, so the search reports no evidence, and refutes the candidates: neither
// the retries nor the other global thresholds run.
func TestNoEvidenceInPartialCodes(t *testing.T) {
	const seed = 7
	texts, err := freshVouchers(seed, 6)
	if err != nil {
		t.Fatal(err)
	}
	hints := map[gozxing.DecodeHintType]interface{}{}
	frames := 0
	for i, text := range texts {
		code, err := moduleMatrix(text)
		if err != nil {
			t.Fatal(err)
		}
		img, err := emptyFrame("partial code", rand.New(rand.NewPCG(seed, 1<<41|uint64(i))), code)
		if err != nil {
			t.Fatal(err)
		}
		var d Decoder
		var b binarizer
		m := b.hybrid(view(img, img.Bounds()))
		finder := detector.NewFinderPatternFinder(m, nil)
		finder.Find(hints)
		if !anyPair(finder.GetPossibleCenters()) {
			continue
		}
		frames++
		if _, seen, refuted, err := d.search(m, hints); err == nil || seen || !refuted {
			t.Errorf("partial code %d: search err %v, evidence %v, refuted %v; want no code, no evidence, refuted", i, err, seen, refuted)
		}
	}
	if frames < 3 {
		t.Errorf("%d frames with a pair of finder patterns; want at least 3", frames)
	}
}

// TestDimCodeOnBrightGround reads low-contrast frames whose code, dimmer
// than the ground around it, shows local thresholds neither evidence nor
// a hint: blocks across its edge set their thresholds between the ground
// and its light level, so its finder patterns merge with the quiet zone.
// Runs in finder proportions on a frame of low contrast count as a hint
// for the other global thresholds, one of which splits the code's own
// two levels. (Drawn for this test, not the benchmark's frames.)
func TestDimCodeOnBrightGround(t *testing.T) {
	texts, err := freshVouchers(5, 2)
	if err != nil {
		t.Fatal(err)
	}
	var low placement
	for _, pl := range placements {
		if pl.name == "low contrast" {
			low = pl
		}
	}
	var d Decoder
	for _, c := range []struct {
		voucher int
		frame   uint64
	}{{0, 7}, {0, 23}, {1, 30}} {
		code, err := moduleMatrix(texts[c.voucher])
		if err != nil {
			t.Fatal(err)
		}
		img, err := freshFrame(code, low, rand.New(rand.NewPCG(c.frame, 77)))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := d.DecodeGray(img); err != nil || string(got) != texts[c.voucher] {
			t.Errorf("voucher %d, frame %d: DecodeGray = %.20q, %v; want the voucher", c.voucher, c.frame, got, err)
		}
	}
}
