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

	// TryHarder makes the first searches scan every row of the image for
	// finder patterns, for small codes in large frames, at up to twice the
	// cost, and extends the double-size retry to frames up to 640×480
	// (maxUpscaleHarder). Without it, only the retries scan every row.
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
	src   lumaSource
	gray  []byte // conversion of non-Gray images
	small []byte // downscaled plane
	large []byte // upscaled plane
	sharp []byte // sharpened plane

	text   string
	passes [16]pass
}

// Pass scales other than 1 (full size) and n > 1 (downscaled by n).
const (
	upscaled  = -2 // double size, bilinear
	sharpened = -3 // full size, unsharp-masked
)

// pass is one search of a frame.
type pass struct {
	scale    int // 1 full size, n > 1 downscaled by n, upscaled or sharpened
	inverted bool
	global   bool // one threshold for the image instead of local ones
	hints    map[gozxing.DecodeHintType]interface{}
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
// Only the ROI is searched. The searches stop at the first code read, in
// this order, each followed by the same search inverted if TryInverted:
// the downscaled image (with Downscale), the full image, the full image
// scanning every row (unless TryHarder already does), the full image with
// one global threshold, the image at half size, the image sharpened, and
// for images of at most 400×400 pixels (640×480 with TryHarder) the image
// at double size, with local and then with one global threshold. Within
// each search, when gozxing's choice of finder patterns does not read, the
// other plausible triples are tried with a slant-tolerant size estimate
// and a grid sampled cell by cell between alignment patterns (triples.go,
// grid.go). A frame that reads costs one search; a frame without a
// code costs all of them (about 6.5 to 23 ms for 640×480 on 2-core x86 servers:
// BenchmarkDecodeGray640x480/empty); set an ROI or Downscale to bound it.
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

// decodePlane runs the searches of DecodeGray over p.
func (d *Decoder) decodePlane(p plane) ([]byte, error) {
	if d.reader == nil {
		d.reader = decoder.NewDecoder()
		d.fast = map[gozxing.DecodeHintType]interface{}{}
		d.hard = map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_TRY_HARDER: true}
	}
	o := d.Options()
	first := d.fast
	if o.TryHarder {
		first = d.hard
	}
	n := 0
	add := func(scale int, global bool, hints map[gozxing.DecodeHintType]interface{}) {
		d.passes[n] = pass{scale, false, global, hints}
		n++
		if o.TryInverted {
			d.passes[n] = pass{scale, true, global, hints}
			n++
		}
	}
	if k := o.Downscale; k > 1 && p.w/k >= minDecodeSide && p.h/k >= minDecodeSide {
		add(k, false, first)
	}
	add(1, false, first)
	if !o.TryHarder {
		add(1, false, d.hard)
	}
	// Retries for what local thresholds miss: one threshold for the whole
	// image (low contrast with flat areas), and the image at half size,
	// which averages out noise and blur.
	add(1, true, d.hard)
	if o.Downscale < 2 && p.w/2 >= minBinarize && p.h/2 >= minBinarize {
		add(2, false, d.hard)
	}
	add(sharpened, false, d.hard)
	// Small images have few pixels a module; sampling the grid is more
	// accurate on a smooth double-size copy.
	if px := p.w * p.h; px <= maxUpscalePixels || o.TryHarder && px <= maxUpscaleHarder {
		add(upscaled, false, d.hard)
		add(upscaled, true, d.hard)
	}

	// Scaled planes are made when a pass first needs them.
	var small, large, sharp plane
	var best error
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
		payload, err := d.search(q, ps)
		if err == nil {
			return payload, nil
		}
		// A located but unreadable code says more than "nothing here".
		if best == nil || errors.Is(err, ErrUnreadable) && !errors.Is(best, ErrUnreadable) {
			best = err
		}
	}
	d.src.reset(plane{})
	return nil, d.fail(fmt.Errorf("qr decode: %w", best))
}

// search binarizes p, inverted or not, and reads one code.
func (d *Decoder) search(p plane, ps pass) (payload []byte, err error) {
	hints := ps.hints
	defer func() {
		if r := recover(); r != nil {
			payload, err = nil, fmt.Errorf("%w: qr library panicked: %v", ErrUnreadable, r)
		}
	}()
	var m *gozxing.BitMatrix
	if !ps.global && p.w >= minBinarize && p.h >= minBinarize {
		m = d.bin.hybrid(p)
	} else {
		d.src.reset(p)
		m, err = gozxing.NewGlobalHistgramBinarizer(&d.src).GetBlackMatrix()
		d.src.reset(plane{})
		if err != nil {
			return nil, ErrNotFound
		}
	}
	if ps.inverted {
		m.FlipAll()
	}
	var res *common.DecoderResult
	finder := detector.NewFinderPatternFinder(m, nil)
	info, err := finder.Find(hints)
	if err == nil {
		var det *common.DetectorResult
		if det, err = detector.NewDetector(m).ProcessFinderPatternInfo(info); err == nil {
			res, err = d.reader.Decode(det.GetBits(), hints)
		}
	}
	if err != nil {
		if r, terr := d.readCandidates(m, finder.GetPossibleCenters(), hints); terr == nil {
			res, err = r, nil
		} else if !errors.As(terr, new(gozxing.NotFoundException)) {
			err = terr
		}
	}
	if err == nil {
		d.text = res.GetText()
		return payloadOf(res), nil
	}
	var nf gozxing.NotFoundException
	if errors.As(err, &nf) {
		return nil, ErrNotFound
	}
	return nil, fmt.Errorf("%w: %v", ErrUnreadable, err)
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
