package qr

import (
	"errors"
	"fmt"
	"image"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/common"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	"github.com/makiuchi-d/gozxing/qrcode/detector"
)

// Options tune a Decoder. DefaultOptions gives the values a gate uses.
type Options struct {
	// ROI limits the search to this rectangle, in the image's coordinates;
	// it is clipped to the image. The zero rectangle means the whole image.
	// A code that crosses its edge will usually not read.
	ROI image.Rectangle

	// Downscale box-averages each n×n block of pixels into one before the
	// search: 2 makes a 1280×960 frame 640×480 and the search about four
	// times cheaper. A code then needs about 2n pixels a module. 0 and 1
	// mean full resolution. If the smaller image yields no code, the frame
	// is searched again at full resolution.
	Downscale int

	// TryInverted searches again with dark and light swapped when nothing
	// reads, for light codes on dark screens (phones in dark mode).
	TryInverted bool

	// TryHarder makes the cheap searches scan every third row of the
	// image for finder patterns, as the retries always do, for small codes
	// in large frames (otherwise frames over 516 rows are scanned more
	// sparsely), and extends the double-size retry to frames up to 640×480
	// (maxUpscaleHarder).
	TryHarder bool
}

// MaxDownscale bounds Options.Downscale: beyond 8 a version-10 code filling
// a 1080-pixel frame has under two pixels a module.
const MaxDownscale = 8

// DefaultOptions returns the options of a new or zero Decoder: the whole
// image, full resolution, inverted retry on, TryHarder off.
func DefaultOptions() Options {
	return Options{TryInverted: true}
}

// Validate reports the first invalid field, with the fix.
func (o Options) Validate() error {
	if o.Downscale < 0 || o.Downscale > MaxDownscale {
		return fmt.Errorf("qr options: Downscale %d: want 0 to %d (0 and 1 mean full resolution)", o.Downscale, MaxDownscale)
	}
	return nil
}

// Decoder finds and reads one QR code in an image. It keeps its bit
// matrices, luminance buffers and reader between calls, so a gate that
// decodes frame after frame allocates little beyond gozxing's own detector
// and error-correction work. The buffers grow to the largest image decoded.
//
// A Decoder is not safe for concurrent use; give each goroutine its own.
// The zero value is ready to use, with DefaultOptions.
type Decoder struct {
	opts    Options
	optsSet bool

	reader *decoder.Decoder
	fast   map[gozxing.DecodeHintType]interface{} // no TRY_HARDER: gozxing tests presence, not value
	hard   map[gozxing.DecodeHintType]interface{}

	bin   binarizer
	pre   prescan
	gray  []byte // conversion of non-Gray images
	small []byte // downscaled plane
	large []byte // upscaled plane
	sharp []byte // sharpened plane

	slant bool // search also looks for slanted finder patterns

	// The plane the bit matrix being searched was binarized from, and
	// whether it was inverted, for greyGrid; cleared when a call ends.
	cur      plane
	curInv   bool
	greyVals []float64
	greySums []float64

	text    string
	passes  [8]pass
	grids   int // sampled grids read in this call (maxGrids)
	triples int // triples that passed the checks of readCandidates, in this call
}

// Pass scales other than 1 (full size) and n > 1 (downscaled by n).
const (
	upscaled  = -2 // double size, bilinear
	sharpened = -3 // full size, unsharp-masked
)

// pass is one retry of a frame, searched in each polarity with evidence.
type pass struct {
	scale  int  // 1 full size, n > 1 downscaled by n, upscaled or sharpened
	global bool // one threshold for the image instead of local ones
}

// NewDecoder returns a Decoder with DefaultOptions; it is the same as
// new(Decoder).
func NewDecoder() *Decoder {
	return new(Decoder)
}

// SetOptions replaces the Decoder's options after validating them; on
// error the options are unchanged.
func (d *Decoder) SetOptions(o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	d.opts, d.optsSet = o, true
	return nil
}

// Options returns the options in use.
func (d *Decoder) Options() Options {
	if !d.optsSet {
		return DefaultOptions()
	}
	return d.opts
}

// LastText returns the text of the last code decoded, as gozxing
// interprets it, in UTF-8: byte-mode data without a character-set
// designator is converted from the character set gozxing guesses
// (ISO-8859-1, UTF-8 or Shift_JIS). Use it to display or compare a text;
// the payload is what Decode returns. It is "" after a failed decode.
func (d *Decoder) LastText() string { return d.text }

// Decode returns the payload of the QR code in img: see DecodeGray. Images
// other than *image.Gray are first converted to grey (the Y plane of a
// YCbCr image is used as is; transparent pixels count as white) into a
// buffer the Decoder keeps.
func (d *Decoder) Decode(img image.Image) ([]byte, error) {
	if img == nil {
		return nil, d.fail(fmt.Errorf("qr decode: nil image: %w", ErrNotFound))
	}
	if g, ok := img.(*image.Gray); ok {
		return d.DecodeGray(g)
	}
	r, err := d.region(img.Bounds())
	if err != nil {
		return nil, d.fail(err)
	}
	return d.decodePlane(toGray(img, r, &d.gray))
}

// DecodeGray returns the payload of the QR code in img, reading img's
// pixels in place: exactly the bytes that were encoded for codes whose
// data is all byte mode (whatever character set gozxing would guess) or
// all numeric, alphanumeric or kanji; for codes mixing byte mode with
// other modes, the UTF-8 text of LastText. Codes made by Encode return
// exactly the text given to it.
//
// Only the ROI is searched. The searches stop at the first code read. The
// cheap ones come first: the image binarized with local thresholds, each
// block's between the mean and the midpoint of its extremes (binarize.go;
// the downscaled image first, with block means, with Downscale), searched as it is and inverted
// if TryInverted, each only where a prescan of its rows finds runs in
// finder proportions that the column through their middle confirms
// (prescan.go); then with one global threshold, if the local search saw
// evidence of a code or the frame has low contrast; then, in each
// polarity with evidence or a hint (finder runs, dark in the middle,
// crossed in the locally thresholded image and not refuted by a pair of
// candidates; in both polarities, any such runs on a frame of low
// contrast), with other global thresholds (moreThresholds: within a
// side of the histogram's valley that holds two peaks, as a dim code on
// a bright ground makes, and midway between the frame's darkest and
// lightest levels, which blur leaves to a code), each binarized and
// searched only where a prescan of the grey rows against it crosses
// finder runs, at three places or more for a hint. Evidence is a triple
// of finder pattern candidates, or a pair completed to one, that passes
// the checks below, or a lone candidate seen on two rows (what blur or
// glare may leave of a code); two candidates that could be one code's and fail every check
// are not. Only if one of these saw evidence do the retries run, in the
// polarities where it did: the image at half size, the image sharpened, and for images of at
// most 400×400 pixels (640×480 with TryHarder) the image at double size,
// with local and then with one global threshold. Within each search, when
// gozxing's choice of finder patterns does not read, the other plausible
// triples whose legs show a timing pattern are tried (triples.go): the
// code's size counted along its timing patterns (the far end of each
// found across the leg, as perspective turns it), with a transform fitted
// to their module edges (homography.go), then sizes from module sizes
// measured along each leg, with the alignment pattern matched as a
// template at any rotation and the grid sampled cell by cell between
// alignment patterns (grid.go); and then the best pairs of candidates
// completed with the corner a square code would have, on the side where
// a timing pattern shows, for a finder pattern lost to glare or a thumb.
// A grid whose format information reads but whose data does not correct
// is sampled again from the grey levels, each module's with the share
// blur spreads into it from its neighbours taken out (greygrid.go), if
// its timing patterns show there. A frame that reads usually costs one
// search. A frame without a code costs one binarization and a prescan
// when nothing in it looks like a finder pattern, and more where
// something does; at most 160 sampled grids are read a call
// (docs/BENCHMARKS.md, "Fresh vouchers"). Set an ROI or Downscale to
// bound the cost further.
//
// DecodeGray never panics: a panic inside gozxing on pathological input is
// recovered and returned as ErrUnreadable. Errors: ErrNotFound when no code
// is located (also for a nil or tiny image, or an ROI outside it),
// ErrUnreadable when one is located but cannot be read, ErrImageTooLarge
// for images over MaxPixels. DecodeGray keeps no reference to img.
func (d *Decoder) DecodeGray(img *image.Gray) ([]byte, error) {
	if img == nil {
		return nil, d.fail(fmt.Errorf("qr decode: nil image: %w", ErrNotFound))
	}
	r, err := d.region(img.Bounds())
	if err != nil {
		return nil, d.fail(err)
	}
	return d.decodePlane(view(img, r))
}

// fail clears the last text and returns err.
func (d *Decoder) fail(err error) error {
	d.text = ""
	return err
}

// region checks the image size and returns the rectangle to search.
func (d *Decoder) region(b image.Rectangle) (image.Rectangle, error) {
	w, h := b.Dx(), b.Dy()
	if h > 0 && w > MaxPixels/h {
		return image.Rectangle{}, fmt.Errorf("qr decode: %dx%d image, at most %d pixels: %w", w, h, MaxPixels, ErrImageTooLarge)
	}
	r := b
	if roi := d.Options().ROI; roi != (image.Rectangle{}) {
		r = roi.Intersect(b)
	}
	if r.Dx() < minDecodeSide || r.Dy() < minDecodeSide {
		return image.Rectangle{}, fmt.Errorf("qr decode: %dx%d search area: %w", r.Dx(), r.Dy(), ErrNotFound)
	}
	return r, nil
}

// setUp makes the reader and hints on first use.
func (d *Decoder) setUp() {
	if d.reader == nil {
		d.reader = decoder.NewDecoder()
		d.fast = map[gozxing.DecodeHintType]interface{}{}
		d.hard = map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_TRY_HARDER: true}
	}
}

// decodePlane runs the searches of DecodeGray over p.
func (d *Decoder) decodePlane(p plane) ([]byte, error) {
	d.setUp()
	defer func() { d.cur = plane{} }()
	o := d.Options()
	d.grids, d.triples = 0, 0
	first := d.fast
	if o.TryHarder {
		first = d.hard
	}
	polarities := []bool{false}
	if o.TryInverted {
		polarities = append(polarities, true)
	}
	var best error
	keep := func(err error) {
		// A located but unreadable code says more than "nothing here".
		if best == nil || errors.Is(err, ErrUnreadable) && !errors.Is(best, ErrUnreadable) {
			best = err
		}
	}

	// The cheap searches: the image binarized with local thresholds, and
	// with one global threshold (low contrast with flat areas), each
	// searched as it is and inverted, first downscaled if asked; a search
	// runs only where the prescan finds runs in finder proportions.
	// Evidence of a code seen by either (search) decides whether the
	// retries are worth their cost. A hint is less: runs in finder
	// proportions on a row and a column of the local thresholds' image,
	// dark in the middle, that no pair of candidates refuted. (Light in
	// the middle, such runs are mostly the counters of dark letters on a
	// light ground; a light code on a dark screen needs evidence.)
	var evidence, hint [2]bool
	type cheap struct {
		q      plane
		global bool
		black  int  // the global threshold; 0: the histogram's main valley
		mid    bool // local thresholds towards block midpoints (binarizer.local)
	}
	tier := []cheap{{q: p, mid: true}, {q: p, global: true}}
	if k := o.Downscale; k > 1 && p.w/k >= minDecodeSide && p.h/k >= minDecodeSide {
		tier = append([]cheap{{q: downscale(p, k, &d.small)}}, tier...)
	}
	anyRuns, lowHint := false, false
	d.slant = true
	for i := 0; i < len(tier); i++ {
		c := tier[i]
		if c.global && c.black == 0 {
			// Other global thresholds, tried after this one in each
			// polarity with evidence or a hint: where a side of the
			// main threshold holds two peaks of its own, the code's
			// levels may both lie there (a dim screen on a bright
			// counter); and midway between the frame's darkest and
			// lightest levels, which blur leaves to a code's modules
			// when the background's peak fills the histogram's
			// valley.
			// A frame of low contrast with runs in finder
			// proportions counts as a hint in both polarities: a
			// dim code on a bright ground shows neither evidence
			// nor a hint to local thresholds, which blocks across
			// its edge set between the ground and its light level.
			lowHint = anyRuns && d.bin.span < lowContrastSpan
			if evidence[0] || evidence[1] || hint[0] || hint[1] || lowHint {
				for _, t := range moreThresholds(c.q) {
					tier = append(tier, cheap{q: c.q, global: true, black: t})
				}
			}
			if !evidence[0] && !evidence[1] && !lowHint {
				// One threshold reads what local thresholds did not
				// on a frame of low contrast, where the flat blocks
				// inside a code are hard to place; elsewhere only
				// where evidence was seen, and never without a
				// single run in finder proportions.
				continue
			}
		}
		var m *gozxing.BitMatrix
		var crossed [2]bool
		if c.black > 0 {
			// The prescan reads the plane against the threshold;
			// the whole plane is binarized only where it crosses
			// runs in a polarity worth a search.
			t := thresholded{c.q, c.black}
			skip := scanSkip(c.q.h, o.TryHarder)
			for pol := range crossed {
				switch {
				case evidence[pol]:
					crossed[pol] = d.pre.crossings(t, skip, pol, 1)
				case hint[pol] || lowHint:
					crossed[pol] = d.pre.crossings(t, skip, pol, minHintCrossings)
				}
			}
			if !crossed[0] && !crossed[1] {
				continue
			}
			m = d.bin.threshold(c.q, c.black)
		} else {
			var err error
			if m, err = d.binarize(c.q, c.global, c.mid); err != nil {
				keep(err)
				continue
			}
			var runs [2]bool
			runs, crossed = d.pre.finderRuns(m, scanSkip(c.q.h, o.TryHarder))
			anyRuns = anyRuns || runs[0] || runs[1]
		}
		flipped := false
		for _, inv := range polarities {
			pol := b2i(inv)
			if !crossed[pol] {
				keep(ErrNotFound)
				continue
			}
			if inv != flipped {
				m.FlipAll()
				flipped = inv
			}
			d.cur, d.curInv = c.q, inv
			payload, seen, refuted, err := d.search(m, first)
			if err == nil {
				return payload, nil
			}
			keep(err)
			// What the other global thresholds see is left out: they
			// run on less than evidence, and the retries would cost
			// every frame with a hint.
			evidence[pol] = evidence[pol] || seen && c.black == 0
			hint[pol] = hint[pol] || pol == 0 && !c.global && !refuted
		}
	}

	// The retries, in each polarity where the cheap searches saw evidence
	// of a code: the image at half size (averages out noise and
	// blur), sharpened, and small images at double size, which samples
	// the grid more accurately.
	if !evidence[0] && !evidence[1] {
		return nil, d.fail(fmt.Errorf("qr decode: %w", best))
	}
	// The retries do without slanted finder patterns: they run on every
	// textured frame that showed evidence, which would pay for the scan.
	d.slant = false
	n := 0
	add := func(scale int, global bool) {
		d.passes[n] = pass{scale: scale, global: global}
		n++
	}
	if o.Downscale < 2 && p.w/2 >= minBinarize && p.h/2 >= minBinarize {
		add(2, false)
	}
	add(sharpened, false)
	if px := p.w * p.h; px <= maxUpscalePixels || o.TryHarder && px <= maxUpscaleHarder {
		add(upscaled, false)
		add(upscaled, true)
	}
	// Scaled planes are made when a pass first needs them.
	var small, large, sharp plane
	for _, ps := range d.passes[:n] {
		q := p
		switch {
		case ps.scale == sharpened:
			if sharp.pix == nil {
				sharp = sharpen(p, &d.sharp)
			}
			q = sharp
		case ps.scale == upscaled:
			if large.pix == nil {
				large = upscale(p, &d.large)
			}
			q = large
		case ps.scale > 1:
			if small.pix == nil {
				small = downscale(p, ps.scale, &d.small)
			}
			q = small
		}
		m, err := d.binarize(q, ps.global, false)
		if err != nil {
			keep(err)
			continue
		}
		_, crossed := d.pre.finderRuns(m, scanSkip(q.h, true))
		flipped := false
		for _, inv := range polarities {
			if !evidence[b2i(inv)] || !crossed[b2i(inv)] {
				continue
			}
			if inv != flipped {
				m.FlipAll()
				flipped = inv
			}
			d.cur, d.curInv = q, inv
			payload, _, _, err := d.search(m, d.hard)
			if err == nil {
				return payload, nil
			}
			keep(err)
		}
	}
	return nil, d.fail(fmt.Errorf("qr decode: %w", best))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// binarize returns p's bit matrix (set bits dark), with local thresholds
// (towards block midpoints if mid, else block means) or one global
// threshold; planes too small for local thresholds take the global one.
// The matrix is valid until the next call.
func (d *Decoder) binarize(p plane, global, mid bool) (*gozxing.BitMatrix, error) {
	if !global && p.w >= minBinarize && p.h >= minBinarize {
		return d.bin.local(p, mid), nil
	}
	m, ok := d.bin.global(p)
	if !ok {
		return nil, ErrNotFound
	}
	return m, nil
}

// search reads one code in m and reports whether it saw evidence of a
// code that a retry may read: finder pattern candidates that form a
// triple, or a pair completed to one, whose legs show a timing pattern.
// Candidates in a texture or text, or the two of a code cut by the
// frame's edge, rarely do; refuted reports candidates that were no
// evidence.
func (d *Decoder) search(m *gozxing.BitMatrix, hints map[gozxing.DecodeHintType]interface{}) (payload []byte, seen, refuted bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			payload, err = nil, fmt.Errorf("%w: qr library panicked: %v", ErrUnreadable, r)
		}
	}()
	var res *common.DecoderResult
	finder := detector.NewFinderPatternFinder(m, nil)
	info, err := finder.Find(hints)
	found := finder.GetPossibleCenters()
	if err == nil {
		tl, tr, bl := info.GetTopLeft(), info.GetTopRight(), info.GetBottomLeft()
		seen = timingAlong(m, tl, tr, bl) || timingAlong(m, tl, bl, tr)
		var det *common.DetectorResult
		if det, err = detector.NewDetector(m).ProcessFinderPatternInfo(info); err == nil {
			res, err = d.readGrid(det.GetBits(), hints)
		}
	}
	if err != nil {
		// readCandidates tries only triples that pass its checks.
		before := d.triples
		r, terr := d.readCandidates(m, found, nil, hints)
		// Two candidates that could be one code's finder patterns
		// and failed every check show that there is none; a lone one
		// may be all that blur or glare left of a code, if seen on
		// minPairCount rows: one seen on a single row is as often the
		// counter of a letter or a speck of texture.
		seen = seen || d.triples > before || anyCounted(found) && !anyPair(found)
		if terr != nil && seen && len(found) <= 2 && d.slant {
			// Where gozxing's finder saw one or two patterns of a
			// code, with evidence, the others may be squashed by a
			// slant beyond what it accepts. One or two more complete
			// a code; a texture shows many. What they lead to is no
			// evidence: a code cut by the frame's edge shows such
			// runs in its data.
			if more := d.pre.slantedFinders(m, scanSkip(m.GetHeight(), true), found); len(more) >= 1 && len(more) <= 2 {
				if r2, terr2 := d.readCandidates(m, append(append([]*detector.FinderPattern(nil), found...), more...), more, hints); terr2 == nil || errors.As(terr, new(gozxing.NotFoundException)) {
					r, terr = r2, terr2
				}
			}
		}
		if terr == nil {
			res, err = r, nil
		} else if !errors.As(terr, new(gozxing.NotFoundException)) {
			err = terr
		}
	}
	refuted = !seen && len(found) > 0
	if err == nil {
		d.text = res.GetText()
		return payloadOf(res), true, false, nil
	}
	var nf gozxing.NotFoundException
	if errors.As(err, &nf) {
		return nil, seen, refuted, ErrNotFound
	}
	return nil, seen, refuted, fmt.Errorf("%w: %v", ErrUnreadable, err)
}

// minHintCrossings is how many finder patterns, at least, the prescan
// must cross in an image binarized at one of moreThresholds for it to be
// searched on a hint alone.
const minHintCrossings = 3

// lowContrastSpan is the largest block spread (max - min grey level of an
// 8×8 block) of a frame of low contrast, for which the global threshold
// is tried even when local thresholds showed no finder pattern candidate.
const lowContrastSpan = 96

// maxGrids bounds the sampled grids a call reads (each an error-correction
// decode), so that a frame whose finder patterns lead nowhere (a code
// half out of view, a texture) costs a bounded amount. Most frames that
// read need one; on the development frames of the fresh-voucher benchmark
// a budget of 64 lost frames that 160 kept (docs/qr-bench.md).
const maxGrids = 160

// readGrid reads a sampled grid and counts it against maxGrids.
func (d *Decoder) readGrid(bits *gozxing.BitMatrix, hints map[gozxing.DecodeHintType]interface{}) (*common.DecoderResult, error) {
	d.grids++
	return d.reader.Decode(bits, hints)
}

// payloadOf returns the bytes a code carries. gozxing converts byte-mode
// segments to text with their ECI character set or a guessed one; when the
// text is nothing but those segments, the segments themselves are the
// payload. Otherwise the text holds no bytes that the conversion lost
// (numeric, alphanumeric and kanji are characters, not bytes) or mixes
// modes in an order gozxing does not report, and the text is returned.
func payloadOf(res *common.DecoderResult) []byte {
	text := res.GetText()
	segs := res.GetByteSegments()
	if len(segs) == 0 {
		return []byte(text)
	}
	var raw, guessed []byte
	for _, s := range segs {
		raw = append(raw, s...)
		if enc, err := common.StringUtils_guessCharset(s, nil); err == nil {
			if t, err := enc.NewDecoder().Bytes(s); err == nil {
				guessed = append(guessed, t...)
			}
		}
	}
	if string(raw) == text || string(guessed) == text {
		return raw
	}
	if latin1(raw) == text {
		return raw
	}
	return []byte(text)
}

// latin1 returns b read as ISO-8859-1: each byte is the code point.
func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}
