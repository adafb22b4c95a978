package card

import (
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/image/font"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"

	"wicket/decoder/qr"
)

// Card size: ID-1 (ISO/IEC 7810), 85.60 × 53.98 mm, at DPI dots per inch.
const (
	DPI    = 300
	Width  = 1011 // 85.60 mm
	Height = 638  // 53.98 mm
)

// maxFieldLen bounds each text field of a Card, in bytes. Claims are at most
// 64 bytes (decoder.MaxIssuerLen, decoder.MaxNameLen); a field that long no
// longer fits its line and is cut with "…" anyway.
const maxFieldLen = 256

// BuiltinFont is Result.Font when no CJK font was found.
const BuiltinFont = "Go fonts (built in, Latin only)"

// Sentinel errors.
var (
	// ErrInvalid: a Card field is missing or has a value Render does not
	// know; the message names the field and the values allowed.
	ErrInvalid = errors.New("invalid card")
	// ErrFont: Card.FontPath is set but is not a readable font file.
	ErrFont = errors.New("unusable font")
)

// Card is what is printed on one voucher card.
type Card struct {
	// Text is the voucher text the QR code carries, e.g. "WK1:...".
	Text string
	// Colour is the code colour: "green", "yellow" or "red".
	Colour string
	// MaskedName is the holder's name as printed, already masked
	// (e.g. "张*明"); Render prints it as given.
	MaskedName string
	// Class is the holder class: "child", "elderly" or "adult".
	Class string
	// Issuer names who issued the voucher.
	Issuer string
	// Kind is the voucher kind, as it should be printed.
	Kind string
	// Expires is when the voucher expires; the date is printed in
	// Expires' own location.
	Expires time.Time
	// VoucherID is the whole voucher id in hex, as `wicketctl revoke
	// -voucher-id` takes it: printed in full, in groups of four in a
	// monospaced font, so staff can read it out and revoke exactly it.
	VoucherID string
	// FontPath optionally names a .ttf, .otf or .ttc font with Chinese
	// glyphs. Empty means search the usual system paths.
	FontPath string
	// Photo is the holder's photo (ReadPhoto), printed beside the name
	// for the attendant to compare with the face; nil prints none. It is
	// only drawn: the QR code and everything else on the card are the
	// same with or without it.
	Photo image.Image
}

// Result is a rendered card and how it was drawn.
type Result struct {
	// Image is the card, Width × Height pixels at DPI.
	Image *image.RGBA
	// Font is the text font used: its path and family name, or
	// BuiltinFont.
	Font string
	// Fallback is true when no CJK font was found: labels are in English
	// only and Chinese characters are printed as '*'.
	Fallback bool
	// Warnings are messages for the operator: the fallback above, and
	// characters the font could not draw.
	Warnings []string
}

type colourSpec struct {
	fill   color.RGBA
	ink    color.RGBA // text on the band
	zh, en string
}

var colours = map[string]colourSpec{
	"green":  {fill: rgb(0x1a9e4b), ink: rgb(0xffffff), zh: "绿码", en: "GREEN"},
	"yellow": {fill: rgb(0xf2c200), ink: rgb(0x1a1a1a), zh: "黄码", en: "YELLOW"},
	"red":    {fill: rgb(0xd7263d), ink: rgb(0xffffff), zh: "红码", en: "RED"},
}

type label struct{ zh, en string }

var classes = map[string]label{
	"child":   {"儿童", "Child"},
	"elderly": {"老年人", "Elderly"},
	"adult":   {"成人", "Adult"},
}

var (
	titleLabel  = label{"健康码凭证", "Health code voucher"}
	kindLabel   = label{"票种", "Kind"}
	issuerLabel = label{"签发", "Issuer"}
	expiryLabel = label{"有效期至", "Valid until"}
	idLabel     = label{"凭证号", "Voucher ID"}
)

// zhLabels returns every Chinese string the card prints itself.
func zhLabels() string {
	var b strings.Builder
	for _, l := range []label{titleLabel, kindLabel, issuerLabel, expiryLabel, idLabel} {
		b.WriteString(l.zh)
	}
	for _, k := range []string{"child", "elderly", "adult"} {
		b.WriteString(classes[k].zh)
	}
	for _, k := range []string{"green", "yellow", "red"} {
		b.WriteString(colours[k].zh)
	}
	return b.String()
}

var (
	ink   = rgb(0x111111)
	muted = rgb(0x6b6b6b)
)

func rgb(v uint32) color.RGBA {
	return color.RGBA{uint8(v >> 16), uint8(v >> 8), uint8(v), 0xff}
}

// Layout, in pixels at 300 dpi (11.8 px a millimetre).
const (
	bandH   = 104 // colour band at the top, 8.8 mm
	stripH  = 14  // colour strip at the bottom
	margin  = 44  // left text margin, 3.7 mm
	qrSize  = 500 // QR side including its quiet zone, 42 mm
	qrRight = 20  // gap between the QR and the right edge
	gutter  = 8   // gap between the text column and the QR's quiet zone

	// The photo box, top left under the band: 16.3 × 21.7 mm (3:4),
	// with photoGap to the text beside it.
	photoTop = bandH + 16
	photoW   = 192
	photoH   = 256
	photoGap = 20

	// minModulePx is the smallest QR module printed: 4 px is 0.34 mm,
	// which gate cameras read at arm's length. A 400-character voucher at
	// level M gets 6 px; the limit is reached near 1300 characters.
	minModulePx = 4
)

// modulePixels returns the module size of the QR code in img, from the top
// edge of its top-left finder pattern: the first dark run in the image,
// which is 7 modules long. It returns 0 when there is no dark pixel.
func modulePixels(img image.Image) int {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		run := 0
		for x := b.Min.X; x < b.Max.X; x++ {
			if r, _, _, _ := img.At(x, y).RGBA(); r < 0x8000 {
				run++
			} else if run > 0 {
				break
			}
		}
		if run > 0 {
			return run / 7
		}
	}
	return 0
}

// validate checks c and names the first bad field.
func validate(c Card) (colourSpec, label, error) {
	spec, ok := colours[c.Colour]
	if !ok {
		return colourSpec{}, label{}, fmt.Errorf("card: %w: Colour %q; use green, yellow or red", ErrInvalid, c.Colour)
	}
	class, ok := classes[c.Class]
	if !ok {
		return colourSpec{}, label{}, fmt.Errorf("card: %w: Class %q; use child, elderly or adult", ErrInvalid, c.Class)
	}
	if c.Text == "" {
		return colourSpec{}, label{}, fmt.Errorf("card: %w: Text is empty; set the voucher text", ErrInvalid)
	}
	if c.Expires.IsZero() {
		return colourSpec{}, label{}, fmt.Errorf("card: %w: Expires is not set; set the voucher's expiry", ErrInvalid)
	}
	for _, f := range []struct{ name, v string }{
		{"MaskedName", c.MaskedName}, {"Issuer", c.Issuer}, {"Kind", c.Kind}, {"VoucherID", c.VoucherID},
	} {
		switch {
		case f.v == "":
			return colourSpec{}, label{}, fmt.Errorf("card: %w: %s is empty", ErrInvalid, f.name)
		case len(f.v) > maxFieldLen:
			return colourSpec{}, label{}, fmt.Errorf("card: %w: %s is %d bytes, at most %d", ErrInvalid, f.name, len(f.v), maxFieldLen)
		case !utf8.ValidString(f.v):
			return colourSpec{}, label{}, fmt.Errorf("card: %w: %s is not valid UTF-8", ErrInvalid, f.name)
		}
	}
	if c.Photo != nil && c.Photo.Bounds().Empty() {
		return colourSpec{}, label{}, fmt.Errorf("card: %w: Photo is an empty image", ErrInvalid)
	}
	if _, err := hex.DecodeString(c.VoucherID); err != nil || len(c.VoucherID) > 2*maxIDBytes {
		return colourSpec{}, label{}, fmt.Errorf("card: %w: VoucherID %q: want the whole id in hex, at most %d bytes (a longer id cannot be printed in full)", ErrInvalid, c.VoucherID, maxIDBytes)
	}
	return spec, class, nil
}

// maxIDBytes is the longest voucher id a card prints in full: two lines of
// four groups of four hex digits fill the text column. wicketctl issues
// 16-byte ids.
const maxIDBytes = 16

// idLines splits a hex voucher id into lines of up to four groups of four
// digits, so every digit is printed and each is easy to read out.
func idLines(id string) []string {
	var lines []string
	for len(id) > 0 {
		n := min(len(id), 16)
		var groups []string
		for g := 0; g < n; g += 4 {
			groups = append(groups, id[g:min(g+4, n)])
		}
		lines = append(lines, strings.Join(groups, " "))
		id = id[n:]
	}
	return lines
}

// Render draws c. It reads the font file on every call and writes nothing;
// it is safe for concurrent use. The QR code is at level M, 500 pixels
// (42 mm) square with its quiet zone.
//
// Errors: ErrInvalid for a bad field, including a Text so long that its QR
// modules would be under minModulePx pixels; ErrFont for a bad FontPath;
// the qr package's ErrText when Text fits no QR code. A missing CJK font is
// not an error: see Result.Fallback.
func Render(c Card) (*Result, error) {
	spec, class, err := validate(c)
	if err != nil {
		return nil, err
	}
	code, err := qr.Encode(c.Text, qrSize, qr.DefaultLevel)
	if err != nil {
		return nil, fmt.Errorf("card: Text: %w", err)
	}
	if m := modulePixels(code); m < minModulePx {
		return nil, fmt.Errorf("card: %w: Text of %d bytes gives %d-pixel QR modules, at least %d are needed to scan a print; shorten the text",
			ErrInvalid, len(c.Text), m, minModulePx)
	}
	fs, err := loadFonts(c.FontPath)
	if err != nil {
		return nil, err
	}

	res := &Result{
		Image:    image.NewRGBA(image.Rect(0, 0, Width, Height)),
		Font:     fs.desc,
		Fallback: !fs.cjk,
	}
	if res.Fallback {
		what := "no font with Chinese glyphs found"
		if c.FontPath != "" {
			what = "FontPath " + c.FontPath + " has no Chinese glyphs"
		}
		res.Warnings = append(res.Warnings, what+"; labels are in English only and Chinese text is printed as '*'; install a CJK font (Debian: apt-get install fonts-wqy-microhei) or set the font path")
	}
	r := &renderer{img: res.Image, fonts: fs, res: res}
	defer r.close()
	if err := r.draw(c, spec, class, code); err != nil {
		return nil, err
	}
	return res, nil
}

type renderer struct {
	img   *image.RGBA
	fonts *fonts
	res   *Result
	faces []*chainFace
}

func (r *renderer) face(chain []*sfnt.Font, px float64) (*chainFace, error) {
	fc, err := newChainFace(chain, px)
	if err != nil {
		return nil, fmt.Errorf("card: font face: %w", err)
	}
	r.faces = append(r.faces, fc)
	return fc, nil
}

func (r *renderer) close() {
	for _, f := range r.faces {
		f.Close()
	}
}

// say picks the label's text for the font: both languages, or English.
func (r *renderer) say(l label) string {
	if r.fonts.cjk {
		return l.zh + " " + l.en
	}
	return l.en
}

func (r *renderer) draw(c Card, spec colourSpec, class label, code *image.Gray) error {
	img := r.img
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	fill := image.NewUniform(spec.fill)
	draw.Draw(img, image.Rect(0, 0, Width, bandH), fill, image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(0, Height-stripH, Width, Height), fill, image.Point{}, draw.Src)

	qrX := Width - qrRight - qrSize
	qrY := bandH + (Height-stripH-bandH-qrSize)/2
	draw.Draw(img, image.Rect(qrX, qrY, qrX+qrSize, qrY+qrSize), code, image.Point{}, draw.Src)

	title, err := r.face(r.fonts.bold, 40)
	if err != nil {
		return err
	}
	colourWord, err := r.face(r.fonts.bold, 46)
	if err != nil {
		return err
	}
	name, err := r.face(r.fonts.bold, 68)
	if err != nil {
		return err
	}
	body, err := r.face(r.fonts.text, 36)
	if err != nil {
		return err
	}
	small, err := r.face(r.fonts.text, 24)
	if err != nil {
		return err
	}
	mono, err := r.face(r.fonts.mono, 32)
	if err != nil {
		return err
	}

	// Band: title on the left, the colour in words on the right, so the
	// card still reads without colour vision.
	word := spec.en
	if r.fonts.cjk {
		word = spec.zh + " " + spec.en
	}
	bandBase := bandH/2 + 16
	wordW := font.MeasureString(colourWord, word).Ceil()
	r.text(colourWord, "", word, Width-qrRight-24-wordW, bandBase, spec.ink, wordW+1)
	r.text(title, "", r.say(titleLabel), margin, bandBase, spec.ink, Width-qrRight-24-wordW-margin-24)

	kind := row{kindLabel, "Kind", []string{c.Kind}, body}
	issuer := row{issuerLabel, "Issuer", []string{c.Issuer}, body}
	expiry := row{expiryLabel, "", []string{c.Expires.Format(time.DateOnly)}, body}
	id := row{idLabel, "VoucherID", idLines(c.VoucherID), mono}
	colW := qrX + gutter - margin
	if c.Photo == nil {
		y := bandH + 84
		r.text(name, "MaskedName", c.MaskedName, margin, y, ink, colW)
		y += 52
		r.text(body, "", r.say(class), margin, y, ink, colW)
		r.rows(small, margin, y+20, colW, kind, issuer, expiry, id)
		return nil
	}
	// With a photo: the photo top left; the name, class, kind and expiry
	// beside it; the issuer and the voucher id below it, full width.
	box := image.Rect(margin, photoTop, margin+photoW, photoTop+photoH)
	drawPhoto(img, box, c.Photo)
	nameBeside, err := r.face(r.fonts.bold, 48)
	if err != nil {
		return err
	}
	x := box.Max.X + photoGap
	w := qrX + gutter - x
	y := photoTop + 48
	r.text(nameBeside, "MaskedName", c.MaskedName, x, y, ink, w)
	y += 44
	r.text(body, "", r.say(class), x, y, ink, w)
	r.rows(small, x, y, w, kind, expiry)
	r.rows(small, margin, box.Max.Y, colW, issuer, id)
	return nil
}

// row is a labelled field of the card: its label, the Card field it
// prints (for warnings; "" for the card's own text), its lines and face.
type row struct {
	l     label
	field string
	v     []string
	face  *chainFace
}

// rows prints each row's label in small and its lines below it, from
// baseline y down, at x and at most w pixels wide.
func (r *renderer) rows(small *chainFace, x, y, w int, rows ...row) {
	for _, f := range rows {
		y += 36
		r.text(small, "", r.say(f.l), x, y, muted, w)
		y += 4
		for _, v := range f.v {
			y += 38
			r.text(f.face, f.field, v, x, y, ink, w)
		}
	}
}

// text draws s with its baseline at (x, y), cut with an ellipsis to maxW
// pixels. Runes no font of fc can draw become '*'; if field is set, that is
// reported in the Result's warnings.
func (r *renderer) text(fc *chainFace, field, s string, x, y int, col color.Color, maxW int) {
	var b strings.Builder
	missing := 0
	for _, c := range s {
		if find(fc.fonts, c) >= 0 {
			b.WriteRune(c)
		} else {
			b.WriteByte('*')
			missing++
		}
	}
	s = b.String()
	if missing > 0 && field != "" && !r.res.Fallback {
		r.res.Warnings = append(r.res.Warnings, fmt.Sprintf("%s: %d character(s) the font cannot draw were printed as '*'", field, missing))
	}
	if font.MeasureString(fc, s).Ceil() > maxW {
		ellipsis := "…"
		if find(fc.fonts, '…') < 0 {
			ellipsis = "..."
		}
		rs := []rune(s)
		for len(rs) > 0 && font.MeasureString(fc, string(rs)+ellipsis).Ceil() > maxW {
			rs = rs[:len(rs)-1]
		}
		s = string(rs) + ellipsis
		if field != "" {
			r.res.Warnings = append(r.res.Warnings, field+": too long for its line; cut with "+ellipsis)
		}
	}
	d := font.Drawer{Dst: r.img, Src: image.NewUniform(col), Face: fc, Dot: fixed.P(x, y)}
	d.DrawString(s)
}
