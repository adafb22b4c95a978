package qr

import (
	"errors"
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
	maxModuleRatio = 2.5
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
// finder pattern candidates found, best first. When fresh is not nil,
// only triples and pairs with one of fresh in them are tried: the others
// were tried before.
func (d *Decoder) readCandidates(m *gozxing.BitMatrix, found, fresh []*detector.FinderPattern, hints map[gozxing.DecodeHintType]interface{}) (*common.DecoderResult, error) {
	cs := append([]*detector.FinderPattern(nil), found...)
	if len(cs) < 2 {
		return nil, gozxing.NewNotFoundException("%d finder candidates", len(cs))
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].GetCount() > cs[j].GetCount() })
	if len(cs) > maxCandidates {
		cs = cs[:maxCandidates]
	}
	res, err := d.readTriples(m, cs, fresh, hints)
	if err == nil {
		return res, nil
	}
	// Glare or a thumb can hide one finder pattern: complete the best
	// pairs with the corner a square code would have.
	if r, perr := d.readPairs(m, cs, fresh, hints); perr == nil {
		return r, nil
	}
	return nil, err
}

// maxPairs bounds the pairs of candidates completed to a triple (each
// tried with at most six corners), and maxPairModuleDiff how far their
// module sizes may differ. A pair stands for a whole code on two points,
// so each must have been seen on minPairCount rows at least: a candidate
// seen once is as often a speck of noise in a sharpened frame.
const (
	maxPairs          = 2
	maxPairModuleDiff = 1.3
	minPairCount      = 2
)

// pairable reports whether candidates a and b could be two finder
// patterns of one code: both seen on minPairCount rows, module sizes
// within maxPairModuleDiff, at least 14 modules apart (version 1).
func pairable(a, b *detector.FinderPattern) bool {
	ma, mb := a.GetEstimatedModuleSize(), b.GetEstimatedModuleSize()
	return a.GetCount() >= minPairCount && b.GetCount() >= minPairCount &&
		math.Max(ma, mb) <= maxPairModuleDiff*math.Min(ma, mb) &&
		math.Hypot(b.GetX()-a.GetX(), b.GetY()-a.GetY()) >= 14*(ma+mb)/2
}

// anyCounted reports whether one of the candidates cs was seen on
// minPairCount rows at least.
func anyCounted(cs []*detector.FinderPattern) bool {
	for _, c := range cs {
		if c.GetCount() >= minPairCount {
			return true
		}
	}
	return false
}

// anyPair reports whether two of the candidates cs are pairable.
func anyPair(cs []*detector.FinderPattern) bool {
	for i := range cs {
		for j := i + 1; j < len(cs); j++ {
			if pairable(cs[i], cs[j]) {
				return true
			}
		}
	}
	return false
}

// readPairs completes pairs of the candidates cs with a third finder
// pattern where a square code would have it, and tries to read each such
// triple: the two as neighbours (the missing one beside either, on either
// side) when the line between them shows a timing pattern, or as opposite
// corners. A corner outside m is not tried. The maxPairs pairs tried are
// those whose best corner shows the most timing pattern: a finder-like
// pattern in a code's data, taken by gozxing's finder in place of a
// finder pattern it had not reached yet, pairs with each of the code's
// finder patterns, and the data beside such a pair alternates about half
// the time, where a timing pattern alternates throughout.
func (d *Decoder) readPairs(m *gozxing.BitMatrix, cs, fresh []*detector.FinderPattern, hints map[gozxing.DecodeHintType]interface{}) (*common.DecoderResult, error) {
	type completed struct {
		ts   []triple
		best float64
	}
	var pairs []completed
	inside := func(x, y float64) bool {
		return x >= 0 && y >= 0 && x < float64(m.GetWidth()) && y < float64(m.GetHeight())
	}
	for i := 0; i < len(cs)-1; i++ {
		for j := i + 1; j < len(cs); j++ {
			a, b := cs[i], cs[j]
			if !pairable(a, b) || !involves(fresh, a, b) {
				continue
			}
			ms := (a.GetEstimatedModuleSize() + b.GetEstimatedModuleSize()) / 2
			dx, dy := b.GetX()-a.GetX(), b.GetY()-a.GetY()
			// The corners on either side of the pair: a quarter turn of
			// the leg away from a or from b (neighbours), or off the
			// middle (opposite corners).
			var corners [2][3]*detector.FinderPattern
			for s, sgn := range [2]float64{1, -1} {
				for k, c := range [3][2]float64{
					{a.GetX() - sgn*dy, a.GetY() + sgn*dx},
					{b.GetX() - sgn*dy, b.GetY() + sgn*dx},
					{(a.GetX()+b.GetX())/2 - sgn*dy/2, (a.GetY()+b.GetY())/2 + sgn*dx/2},
				} {
					corners[s][k] = detector.NewFinderPattern(c[0], c[1], ms, 1)
				}
			}
			// A code's timing pattern runs on one side of the line
			// between two neighbours, and from the missing corner to
			// each of two opposite ones. Only the side where it shows,
			// more than on the other, is tried: the data of a code cut
			// by the frame's edge alternates half the time.
			neighbours := func(x *detector.FinderPattern) float64 {
				return max(timingShare(m, a, b, x), timingShare(m, b, a, x))
			}
			opposite := func(x *detector.FinderPattern) float64 {
				return max(timingShare(m, x, a, b), timingShare(m, x, b, a))
			}
			var p completed
			for s := range corners {
				for k, x := range corners[s] {
					if !inside(x.GetX(), x.GetY()) {
						continue
					}
					share, other := neighbours(x), neighbours(corners[1-s][k])
					if k == 2 {
						share, other = opposite(x), opposite(corners[1-s][k])
					}
					if share < minTimingShare || share <= other {
						continue
					}
					if t, ok := plausible(a, b, x); ok {
						p.ts = append(p.ts, t)
						p.best = max(p.best, share)
					}
				}
			}
			if len(p.ts) > 0 {
				pairs = append(pairs, p)
			}
		}
	}
	sort.SliceStable(pairs, func(i, j int) bool { return pairs[i].best > pairs[j].best })
	var lastErr error = gozxing.NewNotFoundException("no pair")
	for _, p := range pairs[:min(len(pairs), maxPairs)] {
		for _, t := range p.ts {
			res, err := d.readTriple(m, t, hints)
			if err == nil {
				return res, nil
			}
			lastErr = err
		}
	}
	return nil, lastErr
}

// involves reports whether fresh is nil or holds one of ps.
func involves(fresh []*detector.FinderPattern, ps ...*detector.FinderPattern) bool {
	if fresh == nil {
		return true
	}
	for _, p := range ps {
		if slices.Contains(fresh, p) {
			return true
		}
	}
	return false
}

// readTriples tries each plausible triple of the candidates cs, best
// first.
func (d *Decoder) readTriples(m *gozxing.BitMatrix, cs, fresh []*detector.FinderPattern, hints map[gozxing.DecodeHintType]interface{}) (*common.DecoderResult, error) {
	var ts []triple
	for i := 0; i < len(cs)-2; i++ {
		for j := i + 1; j < len(cs)-1; j++ {
			for k := j + 1; k < len(cs); k++ {
				if !involves(fresh, cs[i], cs[j], cs[k]) {
					continue
				}
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
	d.triples++
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
		// Format information read but data that does not correct:
		// the grid is placed; blur may have turned its lone modules.
		if errors.As(err, new(gozxing.ChecksumException)) && d.grids < maxGrids {
			if grey, ok := d.greyGrid(d.cur, d.curInv, transform, dim); ok {
				if res, gerr := d.readGrid(grey, hints); gerr == nil {
					return res, nil
				}
			}
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
//
// The row starts three of a's modules (measured towards c) from a's
// centre, on the line from a to c, which is the code's own axis there.
// At b that axis is not known: under perspective it turns away from a's.
// So the far end is searched across the leg, from 1.5 to 4.5 of b's
// modules towards c, and of the lines whose count is a valid size the
// one that crosses the most runs is taken:
// the timing pattern alternates module by module, a line that strays
// into the data beside it or into a separator crosses fewer.
func timingDimension(m *gozxing.BitMatrix, a, b, c *detector.FinderPattern, ms float64) (int, [][2]float64) {
	vx, vy := c.GetX()-a.GetX(), c.GetY()-a.GetY()
	side := math.Hypot(vx, vy)
	if side == 0 || ms <= 0 {
		return 0, nil
	}
	vx, vy = vx/side, vy/side
	// Three modules of each pattern's own size: under perspective the
	// two differ.
	ma, mb := legModule(m, a, b), legModule(m, b, a)
	if ma == 0 || mb == 0 {
		ma, mb = ms, ms
	}
	down := ma
	if mc := legModule(m, a, c); mc > 0 {
		down = mc
	}
	x0, y0 := a.GetX()+3*down*vx, a.GetY()+3*down*vy
	bestDim := 0
	var best [][2]float64
	for k := range 2*timingReach + 1 {
		// 3, 2.75, 3.25, 2.5, ...: the middle first, so that ties keep
		// the offset a parallelogram would have.
		off := 3 + timingStep*float64((k+1)/2)*float64(1-2*(k%2))
		runs, edges := countRuns(m, x0, y0, b.GetX()+off*mb*vx, b.GetY()+off*mb*vy, ma, mb)
		dim := runs + 12
		if dim > bestDim && dim%4 == 1 && dim >= 21 && dim <= 177 && len(edges) == runs-1 {
			bestDim, best = dim, edges
		}
	}
	return bestDim, best
}

// timingReach and timingStep set the offsets of the timing row's far end
// that timingDimension tries: timingReach steps of timingStep modules on
// either side of 3.
const (
	timingReach = 6
	timingStep  = 0.25
)

// minRunShare is the shortest run countRuns counts, as a share of the
// module size: blur and a line crossing a module's corner make shorter
// slivers.
const minRunShare = 0.4

// countRuns counts the runs of dark and light along the line from (x0,
// y0) to (x1, y1), where modules are ma pixels long at the start and mb
// at the end, and returns where each run after the first begins. A run
// shorter than minRunShare of the module size where it is (taken to
// change evenly along the line, as under perspective) is noise and joins
// the run before it. It returns 0 when the line leaves m.
func countRuns(m *gozxing.BitMatrix, x0, y0, x1, y1, ma, mb float64) (int, [][2]float64) {
	dx, dy := x1-x0, y1-y0
	length := math.Hypot(dx, dy)
	if length == 0 {
		return 0, nil
	}
	const step = 0.5
	steps := int(length / step)
	w, h := m.GetWidth(), m.GetHeight()
	runs, cur, run := 0, false, 0
	var edges [][2]float64
	for i := 0; i <= steps; i++ {
		f := float64(i) * step / length
		minRun := int(minRunShare * (ma + f*(mb-ma)) / step)
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
	return runs, edges
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
// separators, as a code's timing pattern does: in at least
// minTimingShare of its modules.
func timingAlong(m *gozxing.BitMatrix, a, b, c *detector.FinderPattern) bool {
	return timingShare(m, a, b, c) >= minTimingShare
}

// timingShare is the share of the modules on timingAlong's line that
// differ from the one before: the runs of dark and light countRuns finds
// between the two patterns' separators, for the modules the leg's length
// implies. Counting runs rather than sampling module centres keeps the
// count when the module size estimate is a little off or changes along
// the leg. It is 1 for a line too short to have timing modules, and 0 for
// one that leaves m or has no length.
func timingShare(m *gozxing.BitMatrix, a, b, c *detector.FinderPattern) float64 {
	ms := legSize(m, a, b)
	dx, dy := b.GetX()-a.GetX(), b.GetY()-a.GetY()
	length := math.Hypot(dx, dy)
	ex, ey := c.GetX()-a.GetX(), c.GetY()-a.GetY()
	side := math.Hypot(ex, ey)
	if ms <= 0 || length == 0 || side == 0 {
		return 0
	}
	ux, uy := dx/length, dy/length
	vx, vy := ex/side, ey/side
	// The centres are dim-7 modules apart; the timing modules run from
	// the 9th module (a's 7, its separator) to the 9th from the end.
	modules := length/ms - 9
	if modules < 3 {
		return 1 // version 1 has five timing modules: too few to check
	}
	ma, mb := legModule(m, a, b), legModule(m, b, a)
	if ma == 0 || mb == 0 {
		ma, mb = ms, ms
	}
	runs, _ := countRuns(m,
		a.GetX()+3*ma*vx+4.5*ma*ux, a.GetY()+3*ma*vy+4.5*ma*uy,
		b.GetX()+3*mb*vx-4.5*mb*ux, b.GetY()+3*mb*vy-4.5*mb*uy, ma, mb)
	return min(1, float64(runs-1)/(modules-1))
}
