package qr

import (
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/makiuchi-d/gozxing/qrcode/detector"
)

// Images that gozxing's own reader (with TRY_HARDER and PURE_BARCODE off)
// cannot read, and that the second chance of triples.go and grid.go
// reads: slanted vouchers whose finder patterns differ in size by more
// than gozxing allows, and photos whose grid a single transform samples
// wrongly (qrcode-3/22 at a steep slant, qrcode-3/25 bent: version 7
// codes whose alignment patterns only the template match finds).
func TestSecondChance(t *testing.T) {
	type hard struct {
		name string
		img  image.Image
		want string
		text bool // compare LastText (the corpus gives texts)
	}
	var cases []hard
	for _, i := range []int{2, 3, 7} {
		img, want, err := renderFrame("perspective", i)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, hard{name: "voucher-perspective/" + string(rune('0'+i)), img: img, want: want})
	}
	for _, name := range []string{"qrcode-1/13", "qrcode-3/21", "qrcode-3/22", "qrcode-3/23", "qrcode-3/25"} {
		path := filepath.Join("testdata", "corpus", name)
		f, err := os.Open(path + ".webp")
		if err != nil {
			t.Fatal(err)
		}
		img, _, err := image.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(path + ".txt")
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, hard{name: name, img: img, want: string(want), text: true})
	}

	hints := map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_TRY_HARDER: true}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, "/", "_"), func(t *testing.T) {
			bmp, err := gozxing.NewBinaryBitmapFromImage(c.img)
			if err != nil {
				t.Fatal(err)
			}
			if res, err := qrcode.NewQRCodeReader().Decode(bmp, hints); err == nil && res.GetText() == c.want {
				t.Fatalf("gozxing alone reads %s: the case no longer needs the second chance", c.name)
			}
			var d Decoder
			got, err := d.Decode(c.img)
			if c.text {
				got = []byte(d.LastText())
			}
			if err != nil || string(got) != c.want {
				t.Errorf("%s: got %q, %v; want %q", c.name, got, err, c.want)
			}
		})
	}
}

func TestDimensions(t *testing.T) {
	for _, c := range []struct {
		across, down float64
		want         []int
	}{
		// Legs that agree: the size they give, then its neighbours.
		{14, 14, []int{21, 25}},
		{50, 50, []int{57, 53, 61}},
		// Legs that disagree by two versions: every size between and one
		// beyond each, nearest the mean first, at most maxDimensions.
		{37.3, 46.6, []int{49, 45, 53, 41, 57}},
		// Never beyond version 40.
		{170, 170, []int{177, 173}},
	} {
		got := dimensions(c.across, c.down)
		if len(got) != len(c.want) {
			t.Errorf("dimensions(%v, %v) = %v; want %v", c.across, c.down, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("dimensions(%v, %v) = %v; want %v", c.across, c.down, got, c.want)
				break
			}
		}
	}
}

// A finder-like pattern in a code's data, taken for a finder pattern with
// the two top ones (gozxing's finder stops scanning once three candidates
// of one module size were each seen twice, before the bottom-left one),
// pairs with both: the pair of the two real ones, whose leg shows the
// timing pattern, must be among those completed, whatever the order of
// the candidates.
func TestPairsTimingFirst(t *testing.T) {
	text := randomVoucher(rand.New(rand.NewPCG(7, 43)), 300)
	const ms = 4
	img, err := Encode(text, 260, "M")
	if err != nil {
		t.Fatal(err)
	}
	m, err := gozxing.NewBitMatrix(img.Rect.Dx(), img.Rect.Dy())
	if err != nil {
		t.Fatal(err)
	}
	for y := range img.Rect.Dy() {
		for x := range img.Rect.Dx() {
			if img.GrayAt(x, y).Y < 128 {
				m.Set(x, y)
			}
		}
	}
	dim := 57 // version 10
	q := float64(img.Rect.Dx()-dim*ms) / 2
	at := func(col, row float64) *detector.FinderPattern {
		return detector.NewFinderPattern(q+col*ms, q+row*ms, ms, 2)
	}
	top := []*detector.FinderPattern{at(3.5, 3.5), at(float64(dim)-3.5, 3.5)}
	for _, fake := range [][2]float64{{32, 36}, {40, 20}, {20, 44}} {
		for order, cs := range [][]*detector.FinderPattern{
			{at(fake[0], fake[1]), top[0], top[1]},
			{top[0], at(fake[0], fake[1]), top[1]},
		} {
			var d Decoder
			d.setUp()
			res, err := d.readCandidates(m, cs, nil, d.fast)
			if err != nil {
				t.Errorf("data pattern at module (%v, %v), candidate order %d: %v", fake[0], fake[1], order, err)
				continue
			}
			if res.GetText() != text {
				t.Errorf("data pattern at module (%v, %v): read %q, want %q", fake[0], fake[1], res.GetText(), text)
			}
		}
	}
}
