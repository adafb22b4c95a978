package card

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
)

// maxFontFileLen bounds a font file read from disk. The largest common CJK
// files (Noto Sans CJK collections) are about 20 MiB.
const maxFontFileLen = 64 << 20

// fontSearchPaths are tried in order when Card.FontPath is empty: Debian and
// Ubuntu packages first (fonts-wqy-microhei, fonts-wqy-zenhei,
// fonts-noto-cjk, fonts-droid-fallback), then the same fonts where Fedora
// and Arch put them.
var fontSearchPaths = []string{
	"/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
	"/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
	"/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
	"/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
	"/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
	"/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
	"/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
	"/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
}

// cjkProbe holds the runes of the card's own Chinese labels: a font that
// lacks any of them is not used for Chinese.
var cjkProbe = []rune(zhLabels())

// latinProbe tells a CJK font with its own Latin letters from a fallback
// font that has only some digits and punctuation.
var latinProbe = []rune("AZaz09")

// fonts is what a card is drawn with. Each is a chain: a rune is drawn
// with the first font in the chain that has it, so a CJK font without
// Latin letters (Droid Sans Fallback) borrows them from the Go fonts.
type fonts struct {
	text []*sfnt.Font // names, labels and values
	bold []*sfnt.Font // the name and the title
	mono []*sfnt.Font // the fingerprint
	desc string       // the CJK font used, for Result.Font
	cjk  bool         // the chains can show Chinese
}

// loadFonts picks the CJK font: path if set (an unreadable or invalid file
// is an error; one without Chinese glyphs is used, with Result.Fallback
// set), else the first font in fontSearchPaths with the card's Chinese
// labels, else none. The built-in Go fonts complete every chain.
func loadFonts(path string) (*fonts, error) {
	var builtin [3]*sfnt.Font
	for i, ttf := range [][]byte{goregular.TTF, gobold.TTF, gomono.TTF} {
		f, err := opentype.Parse(ttf)
		if err != nil {
			return nil, fmt.Errorf("card: parse built-in font: %w", err)
		}
		builtin[i] = f
	}
	fs := &fonts{
		text: []*sfnt.Font{builtin[0]},
		bold: []*sfnt.Font{builtin[1]},
		mono: []*sfnt.Font{builtin[2], builtin[0]},
		desc: BuiltinFont,
	}
	use := func(f *sfnt.Font, desc string) {
		fs.text = []*sfnt.Font{f, builtin[0]}
		fs.bold = []*sfnt.Font{f, builtin[1]}
		if !hasAll(f, latinProbe) {
			// Latin first, so words and numbers come from one font.
			fs.text = []*sfnt.Font{builtin[0], f}
			fs.bold = []*sfnt.Font{builtin[1], f}
		}
		fs.mono = []*sfnt.Font{builtin[2], f}
		fs.desc = desc
		fs.cjk = hasAll(f, cjkProbe)
	}
	if path != "" {
		f, name, err := openFont(path)
		if err != nil {
			return nil, fmt.Errorf("card: %w: FontPath %s: %v; point it to a .ttf, .otf or .ttc file", ErrFont, path, err)
		}
		use(f, path+" ("+name+")")
		return fs, nil
	}
	for _, p := range fontSearchPaths {
		f, name, err := openFont(p)
		if err == nil && hasAll(f, cjkProbe) {
			use(f, p+" ("+name+")")
			break
		}
	}
	return fs, nil
}

// openFont reads a font file or collection and returns the font in it that
// covers the most of cjkProbe, preferring a Simplified Chinese cut ("SC" in
// the family name) of a collection such as Noto Sans CJK.
func openFont(path string) (*sfnt.Font, string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxFontFileLen+1))
	if err != nil {
		return nil, "", err
	}
	if len(data) > maxFontFileLen {
		return nil, "", fmt.Errorf("larger than %d MiB", maxFontFileLen>>20)
	}
	fonts, err := parseFonts(data)
	if err != nil {
		return nil, "", err
	}
	var (
		best      *sfnt.Font
		bestName  string
		bestScore = -1
		buf       sfnt.Buffer
	)
	for _, f := range fonts {
		name, _ := f.Name(&buf, sfnt.NameIDFamily)
		score := 2 * covered(f, cjkProbe)
		if strings.Contains(name, " SC") {
			score++
		}
		if score > bestScore {
			best, bestName, bestScore = f, name, score
		}
	}
	return best, bestName, nil
}

// Font file structure bounds, from the OpenType specification and sfnt.
const (
	maxFontsInFile = 64  // a TTC holds a handful; Noto CJK has 10
	maxNumTables   = 256 // what sfnt accepts
)

// parseFonts returns every font in a font file (.ttf, .otf) or collection
// (.ttc, .otc) that sfnt can parse. WenQuanYi's files, among others, have
// tables that do not start on 4-byte boundaries, which sfnt rejects; such a
// font is parsed from a copy with its tables realigned.
func parseFonts(data []byte) ([]*sfnt.Font, error) {
	offsets, err := fontOffsets(data)
	if err != nil {
		return nil, err
	}
	coll, collErr := opentype.ParseCollection(data)
	var (
		fonts    []*sfnt.Font
		firstErr error
	)
	for i, off := range offsets {
		var f *sfnt.Font
		err := collErr
		if collErr == nil && i < coll.NumFonts() {
			f, err = coll.Font(i)
		}
		if err != nil {
			var aligned []byte
			if aligned, err = alignFont(data, off); err == nil {
				f, err = opentype.Parse(aligned)
			}
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		fonts = append(fonts, f)
	}
	if len(fonts) == 0 {
		return nil, firstErr
	}
	return fonts, nil
}

var errFontFile = errors.New("not a font file")

// fontOffsets returns where each font's table directory starts: after the
// "ttcf" header of a collection, or at 0 for a single font.
func fontOffsets(data []byte) ([]int, error) {
	if len(data) < 12 {
		return nil, errFontFile
	}
	if string(data[:4]) != "ttcf" {
		return []int{0}, nil
	}
	n := int(binary.BigEndian.Uint32(data[8:]))
	if n < 1 || n > maxFontsInFile || 12+4*n > len(data) {
		return nil, fmt.Errorf("%w: collection of %d fonts", errFontFile, n)
	}
	offsets := make([]int, n)
	for i := range offsets {
		offsets[i] = int(binary.BigEndian.Uint32(data[12+4*i:]))
	}
	return offsets, nil
}

// alignFont copies the font whose table directory starts at off into a
// standalone font file in which every table starts on a 4-byte boundary.
// Table checksums do not depend on offsets and stay valid.
func alignFont(data []byte, off int) ([]byte, error) {
	if off < 0 || off > len(data)-12 {
		return nil, fmt.Errorf("%w: font offset %d", errFontFile, off)
	}
	numTables := int(binary.BigEndian.Uint16(data[off+4:]))
	dirLen := 12 + 16*numTables
	if numTables == 0 || numTables > maxNumTables || dirLen > len(data)-off {
		return nil, fmt.Errorf("%w: %d tables", errFontFile, numTables)
	}
	dir := data[off : off+dirLen]
	size := dirLen
	for i := 0; i < numTables; i++ {
		rec := dir[12+16*i:]
		o, n := binary.BigEndian.Uint32(rec[8:]), binary.BigEndian.Uint32(rec[12:])
		if uint64(o)+uint64(n) > uint64(len(data)) {
			return nil, fmt.Errorf("%w: table outside the file", errFontFile)
		}
		size += int(n+3) &^ 3
		if size > maxFontFileLen {
			return nil, fmt.Errorf("%w: tables larger than %d MiB", errFontFile, maxFontFileLen>>20)
		}
	}
	out := make([]byte, dirLen, size)
	copy(out, dir)
	for i := 0; i < numTables; i++ {
		rec := out[12+16*i:]
		o, n := binary.BigEndian.Uint32(rec[8:]), binary.BigEndian.Uint32(rec[12:])
		binary.BigEndian.PutUint32(rec[8:], uint32(len(out)))
		out = append(out, data[o:o+n]...)
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
	}
	return out, nil
}

// hasGlyph reports whether f draws r itself rather than as .notdef.
func hasGlyph(f *sfnt.Font, r rune) bool {
	var buf sfnt.Buffer
	i, err := f.GlyphIndex(&buf, r)
	return err == nil && i != 0
}

func covered(f *sfnt.Font, rs []rune) int {
	n := 0
	for _, r := range rs {
		if hasGlyph(f, r) {
			n++
		}
	}
	return n
}

func hasAll(f *sfnt.Font, rs []rune) bool { return covered(f, rs) == len(rs) }

// find returns the index of the first font in chain that has r, or -1.
func find(chain []*sfnt.Font, r rune) int {
	for i, f := range chain {
		if hasGlyph(f, r) {
			return i
		}
	}
	return -1
}

// chainFace is a font.Face over a font chain: each rune comes from the first
// face whose font has it (the first face when none has).
type chainFace struct {
	fonts []*sfnt.Font
	faces []font.Face
}

var _ font.Face = (*chainFace)(nil)

// newChainFace returns the chain at px pixels (the card is drawn at one
// pixel a point). Close closes every face.
func newChainFace(chain []*sfnt.Font, px float64) (*chainFace, error) {
	c := &chainFace{fonts: chain}
	for _, f := range chain {
		fc, err := opentype.NewFace(f, &opentype.FaceOptions{Size: px, DPI: 72, Hinting: font.HintingFull})
		if err != nil {
			c.Close()
			return nil, err
		}
		c.faces = append(c.faces, fc)
	}
	return c, nil
}

func (c *chainFace) pick(r rune) font.Face {
	if i := find(c.fonts, r); i > 0 {
		return c.faces[i]
	}
	return c.faces[0]
}

func (c *chainFace) Close() error {
	for _, f := range c.faces {
		f.Close()
	}
	return nil
}

func (c *chainFace) Glyph(dot fixed.Point26_6, r rune) (image.Rectangle, image.Image, image.Point, fixed.Int26_6, bool) {
	return c.pick(r).Glyph(dot, r)
}

func (c *chainFace) GlyphBounds(r rune) (fixed.Rectangle26_6, fixed.Int26_6, bool) {
	return c.pick(r).GlyphBounds(r)
}

func (c *chainFace) GlyphAdvance(r rune) (fixed.Int26_6, bool) {
	return c.pick(r).GlyphAdvance(r)
}

// Kern kerns two runes drawn from the same font; across fonts it is 0.
func (c *chainFace) Kern(r0, r1 rune) fixed.Int26_6 {
	f0, f1 := c.pick(r0), c.pick(r1)
	if f0 != f1 {
		return 0
	}
	return f0.Kern(r0, r1)
}

// Metrics are the first font's.
func (c *chainFace) Metrics() font.Metrics { return c.faces[0].Metrics() }
