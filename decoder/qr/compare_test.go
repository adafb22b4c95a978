package qr

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // corpus images
	"image/png"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	_ "golang.org/x/image/webp" // corpus images
)

// TestCompare measures decode rate and speed of this package against
// zxing-cpp (ZXingReader) and zbar (zbarimg) on the photo corpus and on
// rendered vouchers, and writes a Markdown section to $WICKET_QR_REPORT.
// It runs only with WICKET_QR_COMPARE=1 (scripts/qrbench.sh); tools that
// are not installed are skipped and reported as such.
func TestCompare(t *testing.T) {
	if os.Getenv("WICKET_QR_COMPARE") != "1" {
		t.Skip("set WICKET_QR_COMPARE=1 to run the comparison (scripts/qrbench.sh)")
	}
	dir := t.TempDir()
	sets := append(corpusSets(t, dir), renderedSets(t, dir)...)

	tools := []*tool{
		{name: "zxing-cpp", bin: "ZXingReader", args: []string{"-format", "QRCode"}, parse: parseZXing},
		{name: "zbar", bin: "zbarimg", args: []string{"--raw", "-q", "-Sdisable", "-Sqrcode.enable"}, parse: parseZbar},
	}
	for _, tl := range tools {
		path, err := exec.LookPath(tl.bin)
		if err != nil {
			t.Logf("%s: %s not installed, skipped", tl.name, tl.bin)
			continue
		}
		tl.path = path
		tl.startup = tl.measureStartup(t, dir)
		t.Logf("%s: %s, process start-up %.1f ms", tl.name, path, ms(tl.startup))
	}

	var rows []string
	var d Decoder
	for _, s := range sets {
		ok, med := s.ours(&d)
		row := fmt.Sprintf("| %s | %d | %s", s.name, len(s.items), pct(ok, len(s.items)))
		times := []string{fmt.Sprintf("%.1f", ms(med))}
		for _, tl := range tools {
			if tl.path == "" {
				row += " | n/a"
				times = append(times, "n/a")
				continue
			}
			tok, per := tl.run(t, s)
			row += " | " + pct(tok, len(s.items))
			times = append(times, fmt.Sprintf("%.1f", ms(per)))
		}
		row += " | " + strings.Join(times, " | ") + " |"
		t.Log(row)
		rows = append(rows, row)
	}

	report := reportHeader(tools) + strings.Join(rows, "\n") + "\n"
	if out := os.Getenv("WICKET_QR_REPORT"); out != "" {
		if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type item struct {
	img  image.Image
	path string // PNG on disk for the external tools
	want string
	// text: compare the Decoder's LastText (the corpus gives texts, some
	// in Shift_JIS codes); otherwise compare the payload bytes.
	text bool
	// part: one symbol of a structured-append sequence whose whole text
	// is want; its own text must be a non-empty piece of want.
	part bool
}

// match reports whether got is a correct read of it.
func (it item) match(got string) bool {
	if it.part {
		return got != "" && strings.Contains(it.want, got)
	}
	return got == it.want
}

type imageSet struct {
	name  string
	items []item
}

// ours decodes every image three times and returns how many read
// correctly and the median over images of each image's median time, in
// CPU time of the decoding thread.
func (s imageSet) ours(d *Decoder) (int, time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ok := 0
	per := make([]time.Duration, 0, len(s.items))
	for _, it := range s.items {
		var ts []time.Duration
		var got []byte
		var err error
		for range 3 {
			start := threadCPU()
			got, err = d.Decode(it.img)
			ts = append(ts, threadCPU()-start)
		}
		if it.text {
			got = []byte(d.LastText())
		}
		if err == nil && it.match(string(got)) {
			ok++
		} else if os.Getenv("WICKET_QR_VERBOSE") != "" {
			fmt.Printf("%s %s: %v\n", s.name, filepath.Base(it.path), err)
		}
		per = append(per, median(ts))
	}
	return ok, median(per)
}

func corpusSets(t *testing.T, dir string) []imageSet {
	root := filepath.Join("testdata", "corpus")
	names, err := filepath.Glob(filepath.Join(root, "qrcode-*"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no corpus in %s: %v", root, err)
	}
	var sets []imageSet
	for _, setDir := range names {
		s := imageSet{name: filepath.Base(setDir)}
		entries, err := os.ReadDir(setDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			if ext != ".png" && ext != ".jpg" && ext != ".webp" {
				continue
			}
			base := strings.TrimSuffix(e.Name(), ext)
			want, err := os.ReadFile(filepath.Join(setDir, base+".txt"))
			part := false
			if errors.Is(err, fs.ErrNotExist) {
				// N-MM.png: symbol MM of the sequence whose text is N.txt.
				seq, _, _ := strings.Cut(base, "-")
				want, err = os.ReadFile(filepath.Join(setDir, seq+".txt"))
				part = true
			}
			if err != nil {
				t.Fatalf("%s: no expected text: %v", e.Name(), err)
			}
			f, err := os.Open(filepath.Join(setDir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			img, _, err := image.Decode(f)
			f.Close()
			if err != nil {
				t.Fatalf("%s: %v", e.Name(), err)
			}
			s.items = append(s.items, item{
				img:  img,
				path: writePNG(t, filepath.Join(dir, s.name), base, img),
				want: string(want),
				text: true,
				part: part,
			})
		}
		sets = append(sets, s)
	}
	return sets
}

func renderedSets(t *testing.T, dir string) []imageSet {
	var sets []imageSet
	for _, name := range renderSets {
		s := imageSet{name: "voucher-" + name}
		for i := range renderPerSet {
			img, text, err := renderFrame(name, i)
			if err != nil {
				t.Fatal(err)
			}
			s.items = append(s.items, item{
				img:  img,
				path: writePNG(t, filepath.Join(dir, s.name), fmt.Sprint(i), img),
				want: text,
			})
		}
		sets = append(sets, s)
	}
	return sets
}

// writePNG writes img as dir/name.png, so every tool reads the same
// lossless pixels whatever the corpus format.
func writePNG(t *testing.T, dir, name string, img image.Image) string {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := writePNGFile(path, img); err != nil {
		t.Fatal(err)
	}
	return path
}

// writePNGFile writes img to path as PNG.
func writePNGFile(path string, img image.Image) error {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

type tool struct {
	name, bin, path string
	args            []string
	parse           func(out []byte) string
	startup         time.Duration
}

// run reads each image of s in its own process for the decode rate, then
// times one process over all the images (CPU time, median of three runs)
// and returns (that time - start-up) / images.
func (tl *tool) run(t *testing.T, s imageSet) (int, time.Duration) {
	ok := 0
	paths := make([]string, len(s.items))
	for i, it := range s.items {
		paths[i] = it.path
		out, _ := exec.Command(tl.path, append(slices.Clone(tl.args), it.path)...).Output()
		if it.match(tl.parse(out)) {
			ok++
		}
	}
	var ts []time.Duration
	for range 3 {
		cmd := exec.Command(tl.path, append(slices.Clone(tl.args), paths...)...)
		cmd.Stdout, cmd.Stderr = nil, nil
		if err := cmd.Run(); err != nil {
			if _, exit := err.(*exec.ExitError); !exit {
				t.Fatalf("%s: %v", tl.name, err)
			}
		}
		ts = append(ts, cpuTime(cmd))
	}
	return ok, max(median(ts)-tl.startup, 0) / time.Duration(len(paths))
}

// measureStartup times the tool on a missing file: process start, dynamic
// linking and library set-up, no decoding (median of seven runs).
func (tl *tool) measureStartup(t *testing.T, dir string) time.Duration {
	missing := filepath.Join(dir, "missing.png")
	var ts []time.Duration
	for range 7 {
		cmd := exec.Command(tl.path, append(slices.Clone(tl.args), missing)...)
		_ = cmd.Run()
		ts = append(ts, cpuTime(cmd))
	}
	return median(ts)
}

// cpuTime is the user and system time of a command that has run.
func cpuTime(cmd *exec.Cmd) time.Duration {
	if cmd.ProcessState == nil {
		return 0
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// parseZXing returns the first Text field of ZXingReader's report.
func parseZXing(out []byte) string {
	const pre, post = "Text:       \"", "\"\nBytes:"
	s := string(out)
	i := strings.Index(s, pre)
	if i < 0 {
		return ""
	}
	s = s[i+len(pre):]
	j := strings.Index(s, post)
	if j < 0 {
		return ""
	}
	return s[:j]
}

// parseZbar returns zbarimg's raw output without the newline it adds after
// each symbol.
func parseZbar(out []byte) string {
	return strings.TrimSuffix(string(out), "\n")
}

func median(ts []time.Duration) time.Duration {
	if len(ts) == 0 {
		return 0
	}
	s := slices.Clone(ts)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func pct(ok, n int) string {
	if n == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(ok)/float64(n))
}

func reportHeader(tools []*tool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## QR decoding\n\n")
	fmt.Fprintf(&b, "Generated by `make bench-qr` (scripts/qrbench.sh, which runs "+
		"`WICKET_QR_COMPARE=1 go test -run TestCompare ./decoder/qr`, then TestFreshBench for the fresh vouchers below) on %s: %s/%s, %s, %d CPUs, %s; %s.\n",
		time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, cpuModel(), runtime.NumCPU(), runtime.Version(), toolVersions(tools))
	fmt.Fprintf(&b, "Image sets: the photo corpus in decoder/qr/testdata/corpus (qrcode-N, expected text in N.txt) "+
		"and %d sets of %d rendered 640×480 frames of a 300-character `WK1:` base45 voucher "+
		"(version 10, level M, 3.4–4.6 px a module; seeded, so identical on every run): clean (±3° tilt), "+
		"Gaussian blur σ 0.9–1.8 px, rotation 5–30°, perspective skew (corners moved 8–18%%), "+
		"low contrast (40–70 grey levels between dark and light), inverted (dark mode), Gaussian noise σ 18–35.\n\n", len(renderSets), renderPerSet)
	b.WriteString("Decoded is an exact match with the expected text (corpus: gozxing's text, as both tools print text; " +
		"vouchers: the payload bytes); for qrcode-7, four symbols of one structured-append text, each symbol's " +
		"text must be a non-empty piece of the whole. Every tool reads the same PNG files (webp and jpg corpus images are " +
		"converted to PNG first). Times are CPU time, so that other work on the machine does not count. " +
		"Ours: `Decoder.Decode` with DefaultOptions on the already-loaded image, " +
		"CPU time of the decoding thread; median over images of the median of 3 runs each, so image-file decoding is excluded. ")
	b.WriteString("zxing-cpp: `ZXingReader -format QRCode` (its defaults: try harder, rotations, downscaling; this " +
		"version has no inverted retry, hence its 0% on inverted frames); " +
		"zbar: `zbarimg --raw -q -Sdisable -Sqrcode.enable`. Their decode rate comes from one process per image. " +
		"Their time per frame is the user+system time of one process over all images of the set (median of 3 runs), minus that of the process " +
		"start-up (median of 7 runs on a missing file), divided by the number of images: a mean, not a median, " +
		"and it includes reading and decoding the PNG file, which our figure does not.\n\n")
	names := readerNames(tools, "not installed")
	b.WriteString("| set | images | decoded " + strings.Join(names, " | decoded ") +
		" | ms/frame " + strings.Join(names, " | ms/frame ") + " |\n")
	b.WriteString("|---|---|" + strings.Repeat("---|", 2*len(names)) + "\n")
	return b.String()
}

// readerNames names ours and each tool as a column heading; a tool that
// did not run gets the reason in parentheses.
func readerNames(tools []*tool, missing string) []string {
	names := []string{"ours"}
	for _, tl := range tools {
		n := tl.name
		if tl.path == "" {
			n += " (" + missing + ")"
		}
		names = append(names, n)
	}
	return names
}

// cpuModel names the processor, from /proc/cpuinfo where there is one.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// toolVersions names the Debian packages of the tools, where dpkg knows them.
func toolVersions(tools []*tool) string {
	pkgs := map[string]string{"ZXingReader": "zxing-cpp-tools", "zbarimg": "zbar-tools"}
	var parts []string
	for _, tl := range tools {
		v := "not installed"
		if tl.path != "" {
			v = "version unknown"
			out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", pkgs[tl.bin]).Output()
			if err == nil && len(out) > 0 {
				v = string(out)
			}
		}
		parts = append(parts, fmt.Sprintf("%s %s", pkgs[tl.bin], v))
	}
	return strings.Join(parts, ", ")
}
