package qr

import (
	"math"
	"slices"
	"sort"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/common"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	"github.com/makiuchi-d/gozxing/qrcode/detector"
)

// gozxing's detector keeps the one triple of finder pattern candidates
// that is closest to an isosceles right triangle, refuses triples whose
// module sizes differ by more than 1.4 (a code seen at a slant), takes one
// module size for the whole code, and samples the grid once. The second
// chance below, tried when that fails, relaxes each of these: it tries the
// plausible triples best first, counts the size of the code along its
// timing patterns and samples with a transform fitted to them, then
// estimates the size from module sizes measured along each leg and
// samples with the neighbouring sizes and with and without the alignment
// pattern.
const (
	// maxCandidates bounds the candidates considered, most confirmed
	// first: 8 make at most 56 triples.
	maxCandidates = 8
	// maxTriples bounds the triples tried.
	maxTriples = 4
	// maxDimensions bounds the code sizes tried for one triple.
	maxDimensions = 5
	// maxModuleRatio is how much the module sizes of a triple may differ:
	// more than gozxing's 1.4, for codes seen at a slant.
	maxModuleRatio = 1.8
	// maxLegRatio and the angle bounds admit perspective: the legs from the
	// top-left pattern may differ by this factor and meet at this angle.
	maxLegRatio = 1.6
	minAngle    = 55.0
	maxAngle    = 125.0
)

type triple struct {
	p         [3]*detector.FinderPattern
	distorted float64
}

// readCandidates tries to read a code from each plausible triple of the
// finder pattern candidates found, best first.
func (d *Decoder) readCandidates(m *gozxing.BitMatrix, found []*detector.FinderPattern, hints map[gozxing.DecodeHintType]interface{}) (*common.DecoderResult, error) {
	cs := append([]*detector.FinderPattern(nil), found...)
	if len(cs) < 2 {
		return nil, gozxing.NewNotFoundException("%d finder candidates", len(cs))
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].GetCount() > cs[j].GetCount() })
	if len(cs) > maxCandidates {
		cs = cs[:maxCandidates]
	}
	res, err := d.readTriples(m, cs, hints)
	if err == nil {
		return res, nil
	}
	// Glare or a thumb can hide one finder pattern: complete the best
	// pairs with the corner a square code would have.
	if r, perr := d.readPairs(m, cs, hints); perr == nil {
		return r, nil
	}
	return nil, err
}

// maxPairs bounds the pairs of candidates completed to a triple (each
// tried with at most six corners), and maxPairModuleDiff how far their
// module sizes may differ.
const (
	maxPairs          = 2
	maxPairModuleDiff = 1.3
)

// readPairs completes pairs of the candidates cs (best first) with a
// third finder pattern where a square code would have it, and tries to
// read each such triple: the two as neighbours (the missing one beside
// either, on either side) when the line between them shows a timing
// pattern, or as opposite corners. A corner outside m is not tried.
func (d *Decoder) readPairs(m *gozxing.BitMatrix, cs []*detector.FinderPattern, hints map[gozxing.DecodeHintType]interface{}) (*common.DecoderResult, error) {
	var lastErr error = gozxing.NewNotFoundException("no pair")
	pairs := 0
	inside := func(x, y float64) bool {
		return x >= 0 && y >= 0 && x < float64(m.GetWidth()) && y < float64(m.GetHeight())
	}
	for i := 0; i < len(cs)-1 && pairs < maxPairs; i++ {
		for j := i + 1; j < len(cs) && pairs < maxPairs; j++ {
			a, b := cs[i], cs[j]
			ma, mb := a.GetEstimatedModuleSize(), b.GetEstimatedModuleSize()
			if math.Max(ma, mb) > maxPairModuleDiff*math.Min(ma, mb) {
				continue
			}
			ms := (ma + mb) / 2
			dx, dy := b.GetX()-a.GetX(), b.GetY()-a.GetY()
			if math.Hypot(dx, dy) < 14*ms {
				continue
			}
			pairs++
			var corners [][2]float64
			for _, sgn := range [2]float64{1, -1} {
				// Neighbours: the missing corner is a quarter turn of the
				// leg away from a or from b.
				corners = append(corners,
					[2]float64{a.GetX() - sgn*dy, a.GetY() + sgn*dx},
					[2]float64{b.GetX() - sgn*dy, b.GetY() + sgn*dx})
				// Opposite corners: the missing one is off the middle.
				corners = append(corners, [2]float64{(a.GetX()+b.GetX())/2 - sgn*dy/2, (a.GetY()+b.GetY())/2 + sgn*dx/2})
			}
			for k, c := range corners {
				if !inside(c[0], c[1]) {
					continue
				}
				x := detector.NewFinderPattern(c[0], c[1], ms, 1)
				if k%3 != 2 && !timingAlong(m, a, b, x) && !timingAlong(m, b, a, x) {
					continue
				}
				t, ok := plausible(a, b, x)
				if !ok {
					continue
				}
				res, err := d.readTriple(m, t, hints)
				if err == nil {
					return res, nil
				}
				lastErr = err
			}
		}
	}
	return nil, lastErr
}

// readTriples tries each plausible triple of the candidates cs, best
// first.
func (d *Decoder) readTriples(m *gozxing.BitMatrix, cs []*detector.FinderPattern, hints map[gozxing.DecodeHintType]interface{}) (*common.DecoderResult, error) {
	var ts []triple
	for i := 0; i < len(cs)-2; i++ {
		for j := i + 1; j < len(cs)-1; j++ {
			for k := j + 1; k < len(cs); k++ {
				if t, ok := plausible(cs[i], cs[j], cs[k]); ok {
					ts = append(ts, t)
				}
			}
		}
	}
	// A triple whose legs show no timing pattern is not one code's
	// corners: a run in the data, or a texture, fooled the finder.
	kept := ts[:0]
	for _, t := range ts {
		if timingAlong(m, t.p[1], t.p[2], t.p[0]) || timingAlong(m, t.p[1], t.p[0], t.p[2]) {
			kept = append(kept, t)
		}
	}
	ts = kept
	sort.Slice(ts, func(i, j int) bool { return ts[i].distorted < ts[j].distorted })
	if len(ts) > maxTriples {
		ts = ts[:maxTriples]
	}
	var lastErr error = gozxing.NewNotFoundException("no plausible finder triple")
	for _, t := range ts {
		res, err := d.readTriple(m, t, hints)
		if err == nil {
			return res, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// readTriple samples and reads the code whose finder patterns are t, with
// the estimated size and its neighbours, each with the alignment pattern
// if one is found and without it. Sizes come from module sizes measured
// along each leg (legModule): a finder pattern's own estimate is its width
// along a row, which a turned code stretches by up to √2.
func (d *Decoder) readTriple(m *gozxing.BitMatrix, t triple, hints map[gozxing.DecodeHintType]interface{}) (*common.DecoderResult, error) {
	if d.grids >= maxGrids {
		return nil, gozxing.NewNotFoundException("%d grids read", d.grids)
	}
	bl, tl, tr := t.p[0], t.p[1], t.p[2]
	msAcross, msDown := legSize(m, tl, tr), legSize(m, tl, bl)
	dims := dimensions(gozxing.ResultPoint_Distance(tl, tr)/msAcross, gozxing.ResultPoint_Distance(tl, bl)/msDown)
	// Counted along both timing patterns, the size needs no module size:
	// the count holds under perspective, where module sizes vary along a
	// leg. When both counts agree, that size is tried first, with a
	// transform fitted to the module edges they crossed.
	var lastErr error = gozxing.NewNotFoundException("no dimension")
	a, edgesAcross := timingDimension(m, tl, tr, bl, msAcross)
	b, edgesDown := timingDimension(m, tl, bl, tr, msDown)
	if a != 0 && a == b {
		dims = append([]int{a}, slices.DeleteFunc(dims, func(d int) bool { return d == a })...)
		res, err := d.readFitted(m, t, a, edgesAcross, edgesDown, hints)
		if err == nil || d.grids >= maxGrids {
			return res, err
		}
		lastErr = err
	}
	for _, dim := range dims {
		version, err := decoder.Version_GetProvisionalVersionForDimension(dim)
		if err != nil {
			continue
		}
		aligns := []*detector.AlignmentPattern{nil}
		if len(version.GetAlignmentPatternCenters()) > 0 {
			aligns = append(findAlignments(m, bl, tl, tr, dim), nil)
		}
		for _, ap := range aligns {
			transform := detector.Detector_createTransform(tl, tr, bl, ap, dim)
			res, err := d.readTransform(m, transform, version, dim, hints)
			if err == nil {
				return res, nil
			}
			lastErr = err
			if d.grids >= maxGrids {
				return nil, lastErr
			}
		}
	}
	return nil, lastErr
}

// readFitted samples and reads the code of dim modules whose finder
// patterns are t with a transform fitted to the finder pattern centres
// and the module edges along both timing patterns, refitted with the
// bottom-right alignment pattern where the fit finds one.
func (d *Decoder) readFitted(m *gozxing.BitMatrix, t triple, dim int, across, down [][2]float64, hints map[gozxing.DecodeHintType]interface{}) (*common.DecoderResult, error) {
	bl, tl, tr := t.p[0], t.p[1], t.p[2]
	last := float64(dim) - 3.5
	ms := []match{{3.5, 3.5, tl.GetX(), tl.GetY()}, {last, 3.5, tr.GetX(), tr.GetY()}, {3.5, last, bl.GetX(), bl.GetY()}}
	for j, e := range across {
		ms = append(ms, match{float64(7 + j), 6.5, e[0], e[1]})
	}
	for j, e := range down {
		ms = append(ms, match{6.5, float64(7 + j), e[0], e[1]})
	}
	fit := fitHomography(ms, dim)
	if fit == nil {
		return nil, gozxing.NewNotFoundException("no fit")
	}
	version, err := decoder.Version_GetProvisionalVersionForDimension(dim)
	if err != nil {
		return nil, err
	}
	if len(version.GetAlignmentPatternCenters()) > 0 {
		// The alignment pattern pins the corner farthest from the
		// points fitted; it weighs as much as a leg's edges.
		at := float64(dim) - 6.5
		p := []float64{at, at}
		fit.TransformPoints(p)
		if x, y, ok := matchAlignment(m, fit, at, at, p[0], p[1], alignSearch); ok {
			for range len(across) {
				ms = append(ms, match{at, at, x, y})
			}
			if refit := fitHomography(ms, dim); refit != nil {
				fit = refit
			}
		}
	}
	return d.readTransform(m, fit, version, dim, hints)
}

// readTransform reads the code of dim modules that transform maps onto m:
// sampled through transform, then cell by cell between its alignment
// patterns (sampleLocal).
func (d *Decoder) readTransform(m *gozxing.BitMatrix, transform *common.PerspectiveTransform, version *decoder.Version, dim int, hints map[gozxing.DecodeHintType]interface{}) (*common.DecoderResult, error) {
	bits, err := detector.Detector_sampleGrid(m, transform, dim)
	if err == nil {
		var res *common.DecoderResult
		if res, err = d.readGrid(bits, hints); err == nil {
			return res, nil
		}
	}
	if bits, ok := sampleLocal(m, transform, version, dim); ok {
		return d.readGrid(bits, hints)
	}
	return nil, err
}

// timingDimension counts the modules of the code whose finder patterns a
// and b are neighbours (c the third) along the row or column of its
// timing pattern, three modules from their centres towards c: the half
// of a's bottom row, its separator, the alternating timing modules, b's
// separator and half of b's row are dim-12 runs. Runs shorter than a
// third of ms are noise and join their neighbours. It returns 0 when the
// count gives no valid size (4v+17), and otherwise also where each run
// ends in the image: the edges of modules 7 to dim-7 along the leg.
func timingDimension(m *gozxing.BitMatrix, a, b, c *detector.FinderPattern, ms float64) (int, [][2]float64) {
	vx, vy := c.GetX()-a.GetX(), c.GetY()-a.GetY()
	side := math.Hypot(vx, vy)
	if side == 0 || ms <= 0 {
		return 0, nil
	}
	// Three modules of each pattern's own size: under perspective the
	// two differ.
	ma, mb := legModule(m, a, b), legModule(m, b, a)
	if ma == 0 || mb == 0 {
		ma, mb = ms, ms
	}
	x0, y0 := a.GetX()+3*ma*vx/side, a.GetY()+3*ma*vy/side
	dx, dy := b.GetX()+3*mb*vx/side-x0, b.GetY()+3*mb*vy/side-y0
	length := math.Hypot(dx, dy)
	const step = 0.5
	steps := int(length / step)
	w, h := m.GetWidth(), m.GetHeight()
	minRun := int(ms / 3 / step)
	runs, cur, run := 0, false, 0
	var edges [][2]float64
	for i := 0; i <= steps; i++ {
		f := float64(i) * step / length
		x, y := int(x0+f*dx), int(y0+f*dy)
		if x < 0 || y < 0 || x >= w || y >= h {
			return 0, nil
		}
		if on := m.Get(x, y); on != cur || runs == 0 {
			// A new run counts once the one before is long enough; a
			// shorter one is taken back into the run before it.
			switch {
			case runs == 0:
				runs++
			case run >= minRun:
				runs++
				fe := (float64(i) - 0.5) * step / length
				edges = append(edges, [2]float64{x0 + fe*dx, y0 + fe*dy})
			case len(edges) > 0:
				runs--
				edges = edges[:len(edges)-1]
			}
			// (A short first run is replaced by the one after it.)
			cur, run = on, 0
		}
		run++
	}
	dim := runs + 12
	if dim%4 != 1 || dim < 21 || dim > 177 || len(edges) != runs-1 {
		return 0, nil
	}
	return dim, edges
}

// dimensions returns the code sizes (4v+17 modules) to try for a code
// whose finder pattern centres are across and down modules apart, most
// likely first: the mean, then outwards up to one version beyond the two
// legs, at most maxDimensions. Module sizes measured on a slant can make
// the legs disagree by several versions.
func dimensions(across, down float64) []int {
	round := func(v float64) int { return 4*int(math.Round((v+7-1)/4)) + 1 }
	base := round((across + down) / 2)
	lo := min(round(across), round(down)) - 4
	hi := max(round(across), round(down)) + 4
	dims := []int{base}
	for step := 4; len(dims) < maxDimensions && (base-step >= lo || base+step <= hi); step += 4 {
		for _, d := range [2]int{base - step, base + step} {
			if d >= lo && d <= hi && d >= 21 && d <= 177 && len(dims) < maxDimensions {
				dims = append(dims, d)
			}
		}
	}
	return dims
}

// alignRadius is the half-width, in modules, of the window searched for
// the bottom-right alignment pattern around where a parallelogram would
// put it: wide enough for a code seen at a slant.
const alignRadius = 8

// findAlignments looks for the bottom-right alignment pattern of a code of
// dim modules around where a parallelogram would put it: matched as a
// template on the code's own module axes (align.go), which finds it at
// any rotation, and with gozxing's run scanner, which expects rows and
// columns of one module and so works on codes that are not turned. It
// returns what either found, the template's first, without duplicates.
func findAlignments(m *gozxing.BitMatrix, bl, tl, tr *detector.FinderPattern, dim int) []*detector.AlignmentPattern {
	var found []*detector.AlignmentPattern
	affine := detector.Detector_createTransform(tl, tr, bl, nil, dim)
	at := float64(dim) - 6.5 // module coordinate of its centre
	p := []float64{at, at}
	affine.TransformPoints(p)
	ms := (legSize(m, tl, tr) + legSize(m, tl, bl)) / 2
	if x, y, ok := matchAlignment(m, affine, at, at, p[0], p[1], alignRadius); ok {
		found = append(found, detector.NewAlignmentPattern(x, y, ms))
	}
	if ap := alignmentNear(m, p[0], p[1], ms, 2*alignRadius); ap != nil {
		if len(found) == 0 || gozxing.ResultPoint_Distance(ap, found[0]) > ms/2 {
			found = append(found, ap)
		}
	}
	return found
}

// legSize is the module size along the leg between finder patterns a and
// b: the mean of legModule measured at each end, or of the patterns' own
// estimates where that fails.
func legSize(m *gozxing.BitMatrix, a, b *detector.FinderPattern) float64 {
	ma, mb := legModule(m, a, b), legModule(m, b, a)
	switch {
	case ma > 0 && mb > 0:
		return (ma + mb) / 2
	case ma > 0:
		return ma
	case mb > 0:
		return mb
	}
	return (a.GetEstimatedModuleSize() + b.GetEstimatedModuleSize()) / 2
}

// legModule measures the module size of finder pattern a along the line
// towards b, as gozxing's detector does: from the centre, both ways, to
// where the dark outer ring ends (dark, light, dark, then light), which
// spans the pattern's 7 modules on the code's own axis whatever the turn.
// It returns 0 when the line leaves the image or the size is not one a
// finder pattern of a's own estimate (its width along a row) can have:
// a turn makes that estimate up to √2 times the size on the code's axis,
// never much less.
func legModule(m *gozxing.BitMatrix, a, b *detector.FinderPattern) float64 {
	dx, dy := b.GetX()-a.GetX(), b.GetY()-a.GetY()
	l := math.Hypot(dx, dy)
	if l == 0 {
		return 0
	}
	ux, uy := dx/l, dy/l
	limit := 2 * 3.5 * a.GetEstimatedModuleSize()
	w, h := m.GetWidth(), m.GetHeight()
	total := 0.0
	for _, sgn := range [2]float64{1, -1} {
		const step = 0.5
		flips, on := 0, true
		r := 0.0
		for ; r <= limit && flips < 3; r += step {
			x, y := int(a.GetX()+sgn*r*ux), int(a.GetY()+sgn*r*uy)
			if x < 0 || y < 0 || x >= w || y >= h {
				return 0
			}
			if m.Get(x, y) != on {
				on = !on
				flips++
			}
		}
		if flips < 3 {
			return 0
		}
		total += r - step - step/2
	}
	est := a.GetEstimatedModuleSize()
	if ms := total / 7; ms >= est/1.6 && ms <= 1.2*est {
		return ms
	}
	return 0
}

// plausible orders three candidates as bottom-left, top-left, top-right
// and reports whether they could be the corners of one code: similar
// module sizes, legs of similar length, a corner angle not far from 90°.
func plausible(a, b, c *detector.FinderPattern) (triple, bool) {
	lo := math.Min(a.GetEstimatedModuleSize(), math.Min(b.GetEstimatedModuleSize(), c.GetEstimatedModuleSize()))
	hi := math.Max(a.GetEstimatedModuleSize(), math.Max(b.GetEstimatedModuleSize(), c.GetEstimatedModuleSize()))
	if hi > lo*maxModuleRatio {
		return triple{}, false
	}
	p0, p1, p2 := gozxing.ResultPoint_OrderBestPatterns(a, b, c)
	bl, tl, tr := p0.(*detector.FinderPattern), p1.(*detector.FinderPattern), p2.(*detector.FinderPattern)
	ax, ay := bl.GetX()-tl.GetX(), bl.GetY()-tl.GetY()
	bx, by := tr.GetX()-tl.GetX(), tr.GetY()-tl.GetY()
	la, lb := math.Hypot(ax, ay), math.Hypot(bx, by)
	if la == 0 || lb == 0 || math.Max(la, lb) > maxLegRatio*math.Min(la, lb) {
		return triple{}, false
	}
	// At least 7 modules apart (version 1 has 14 between centres).
	if math.Min(la, lb) < 7*lo {
		return triple{}, false
	}
	angle := math.Acos((ax*bx+ay*by)/(la*lb)) * 180 / math.Pi
	if angle < minAngle || angle > maxAngle {
		return triple{}, false
	}
	distorted := math.Abs(angle-90)/90 + math.Abs(la-lb)/math.Min(la, lb)
	return triple{p: [3]*detector.FinderPattern{bl, tl, tr}, distorted: distorted}, true
}

// minTimingShare is the share of the modules between two finder patterns
// whose alternation the timing pattern must show: blur, glare and a slant
// lose some, a line through data or texture rarely keeps half.
const minTimingShare = 0.5

// timingAlong reports whether the line from finder pattern a towards b,
// three modules towards c (the row or column of the timing pattern),
// alternates dark and light module by module between the two patterns'
// separators, as a code's timing pattern does.
func timingAlong(m *gozxing.BitMatrix, a, b, c *detector.FinderPattern) bool {
	ms := legSize(m, a, b)
	dx, dy := b.GetX()-a.GetX(), b.GetY()-a.GetY()
	length := math.Hypot(dx, dy)
	ex, ey := c.GetX()-a.GetX(), c.GetY()-a.GetY()
	side := math.Hypot(ex, ey)
	if ms <= 0 || length == 0 || side == 0 {
		return false
	}
	ux, uy := dx/length, dy/length
	vx, vy := ex/side, ey/side
	modules := length/ms - 8 // from the first module after a's separator to the last before b's
	if modules < 3 {
		return true // version 1 has a single timing module: nothing to check
	}
	x0 := a.GetX() + 3*ms*vx + 4.5*ms*ux
	y0 := a.GetY() + 3*ms*vy + 4.5*ms*uy
	n := int(modules + 0.5)
	step := (length - 9*ms) / float64(max(n-1, 1))
	flips, prev := 0, false
	for i := range n {
		x := x0 + float64(i)*step*ux
		y := y0 + float64(i)*step*uy
		on := m.Get(int(x), int(y))
		if i > 0 && on != prev {
			flips++
		}
		prev = on
	}
	return float64(flips) >= minTimingShare*float64(n-1)
}
