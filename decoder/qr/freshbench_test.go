package qr

import (
	"fmt"
	"image"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// freshRun is one run of the fresh-voucher benchmark.
type freshRun struct {
	seed     uint64
	vouchers []string
	codes    []*image.Gray
	perPlace int // frames of each voucher in each placement
	dir      string
	places   []placement

	// frames[p] lists placement p's frames.
	frames [][]freshShot
	empty  []emptyShot
}

type freshShot struct {
	voucher int
	path    string
	ours    bool
	took    time.Duration
	tools   []bool
}

type emptyShot struct {
	kind          string
	path          string
	ours, plain   time.Duration
	oursRead      bool
	tools         []time.Duration
	toolsReadSome []bool
}

// frameSeed gives every frame its own random stream: frame k of voucher
// v in the named placement is the same whichever placements a run draws.
func frameSeed(v int, place string, k int) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range []byte(place) {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h ^ uint64(v)<<20 ^ uint64(k)
}

// newFreshRun issues n vouchers and renders each in every placement
// perPlace times, writing the frames as PNG files under dir (decoded
// again by every reader, ours included, so nothing large stays in
// memory). Frames are drawn on all CPUs; a frame whose file is already
// there is kept (dir holds one seed's frames).
func newFreshRun(t testing.TB, seed uint64, n, perPlace int, places []placement, empties int, dir string) *freshRun {
	t.Helper()
	texts, err := freshVouchers(seed, n)
	if err != nil {
		t.Fatal(err)
	}
	run := &freshRun{seed: seed, vouchers: texts, perPlace: perPlace, dir: dir, places: places, frames: make([][]freshShot, len(places))}
	for _, text := range texts {
		code, err := moduleMatrix(text)
		if err != nil {
			t.Fatal(err)
		}
		run.codes = append(run.codes, code)
	}
	type job struct{ p, v, k int }
	jobs := make(chan job)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for p := range places {
		run.frames[p] = make([]freshShot, n*perPlace)
		if err := os.MkdirAll(filepath.Join(dir, strconv.Itoa(p)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				path := filepath.Join(dir, strconv.Itoa(j.p), fmt.Sprintf("v%03d-%d.png", j.v, j.k))
				var err error
				if !exists(path) {
					r := rand.New(rand.NewPCG(seed, frameSeed(j.v, places[j.p].name, j.k)))
					var img *image.Gray
					if img, err = freshFrame(run.codes[j.v], places[j.p], r); err == nil {
						err = writePNGFile(path, img)
					}
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				run.frames[j.p][j.v*perPlace+j.k] = freshShot{voucher: j.v, path: path}
			}
		}()
	}
	for p := range places {
		for v := range n {
			for k := range perPlace {
				jobs <- job{p, v, k}
			}
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range empties {
		kind := emptyKinds[i%len(emptyKinds)]
		path := filepath.Join(dir, "empty", fmt.Sprintf("%03d.png", i))
		if !exists(path) {
			r := rand.New(rand.NewPCG(seed, 1<<40|uint64(i)))
			img, err := emptyFrame(kind, r, run.codes[i%len(run.codes)])
			if err != nil {
				t.Fatal(err)
			}
			if err := writePNGFile(path, img); err != nil {
				t.Fatal(err)
			}
		}
		run.empty = append(run.empty, emptyShot{kind: kind, path: path})
	}
	return run
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// readGray loads a PNG frame written by newFreshRun.
func readGray(path string) (*image.Gray, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, err
	}
	g, ok := img.(*image.Gray)
	if !ok {
		return nil, fmt.Errorf("%s: %T, want *image.Gray", path, img)
	}
	return g, nil
}

// decodeOurs reads every frame with d, timing one decode of each in CPU
// time of the decoding thread.
func (run *freshRun) decodeOurs(t testing.TB, d *Decoder) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for p := range run.frames {
		for i := range run.frames[p] {
			s := &run.frames[p][i]
			img, err := readGray(s.path)
			if err != nil {
				t.Fatal(err)
			}
			start := threadCPU()
			got, err := d.DecodeGray(img)
			s.took = threadCPU() - start
			s.ours = err == nil && string(got) == run.vouchers[s.voucher]
			if !s.ours && os.Getenv("WICKET_QR_VERBOSE") != "" {
				t.Logf("not read: %s: %v", s.path, err)
			}
		}
	}
}

// timeEmpty times ours and plain gozxing (its QR reader with default
// hints on a hybrid binarizer: one search, no retries) on every no-code
// frame, median of three runs each, in CPU time of the decoding thread.
func (run *freshRun) timeEmpty(t testing.TB, d *Decoder) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	plain := qrcode.NewQRCodeReader()
	for i := range run.empty {
		e := &run.empty[i]
		img, err := readGray(e.path)
		if err != nil {
			t.Fatal(err)
		}
		src := gozxing.NewLuminanceSourceFromImage(img)
		var ours, theirs []time.Duration
		for range 3 {
			start := threadCPU()
			_, err := d.DecodeGray(img)
			ours = append(ours, threadCPU()-start)
			e.oursRead = err == nil
			bmp, _ := gozxing.NewBinaryBitmap(gozxing.NewHybridBinarizer(src))
			start = threadCPU()
			_, _ = plain.Decode(bmp, nil)
			theirs = append(theirs, threadCPU()-start)
		}
		e.ours, e.plain = median(ours), median(theirs)
	}
}

// batchTool runs tl once over paths and returns the text it read from
// each (by path) and the CPU time (user and system) of the process.
func batchTool(tl *tool, paths []string) (map[string]string, time.Duration, error) {
	cmd := exec.Command(tl.path, append(slices.Clone(tl.args), paths...)...)
	out, err := cmd.Output()
	if _, exit := err.(*exec.ExitError); err != nil && !exit {
		return nil, 0, err
	}
	took := cpuTime(cmd)
	got := map[string]string{}
	if tl.bin == "ZXingReader" {
		// One line a symbol: PATH QRCode "TEXT" (base45 needs no escapes).
		for _, line := range strings.Split(string(out), "\n") {
			path, rest, ok := strings.Cut(line, " QRCode \"")
			if ok && strings.HasSuffix(rest, "\"") {
				if _, dup := got[path]; !dup {
					got[path] = strings.TrimSuffix(rest, "\"")
				}
			}
		}
		return got, took, nil
	}
	// zbar's XML: <source href='PATH'> ... <data><![CDATA[TEXT]]></data>.
	for _, src := range strings.Split(string(out), "<source href='")[1:] {
		path, rest, _ := strings.Cut(src, "'>")
		if _, data, ok := strings.Cut(rest, "<data><![CDATA["); ok {
			text, _, _ := strings.Cut(data, "]]></data>")
			got[path] = text
		}
	}
	return got, took, nil
}

// runTools scores each installed tool on every placement (one process per
// placement) and times it on each no-code frame (one process per frame,
// median of three, minus the tool's start-up).
func (run *freshRun) runTools(t testing.TB, tools []*tool) [][]time.Duration {
	t.Helper()
	perFrame := make([][]time.Duration, len(run.frames)) // [placement][tool]: mean per frame
	for p := range run.frames {
		perFrame[p] = make([]time.Duration, len(tools))
		for i := range run.frames[p] {
			run.frames[p][i].tools = make([]bool, len(tools))
		}
		for ti, tl := range tools {
			if tl.path == "" {
				continue
			}
			paths := make([]string, len(run.frames[p]))
			for i, s := range run.frames[p] {
				paths[i] = s.path
			}
			got, took, err := batchTool(tl, paths)
			if err != nil {
				t.Fatalf("%s: %v", tl.name, err)
			}
			for i := range run.frames[p] {
				s := &run.frames[p][i]
				s.tools[ti] = got[s.path] == run.vouchers[s.voucher]
			}
			perFrame[p][ti] = max(took-tl.startup, 0) / time.Duration(len(paths))
		}
	}
	for i := range run.empty {
		e := &run.empty[i]
		e.tools = make([]time.Duration, len(tools))
		e.toolsReadSome = make([]bool, len(tools))
		for ti, tl := range tools {
			if tl.path == "" {
				continue
			}
			var ts []time.Duration
			for range 3 {
				got, took, err := batchTool(tl, []string{e.path})
				if err != nil {
					t.Fatalf("%s: %v", tl.name, err)
				}
				ts = append(ts, took)
				e.toolsReadSome[ti] = got[e.path] != ""
			}
			e.tools[ti] = max(median(ts)-tl.startup, 0)
		}
	}
	return perFrame
}

// voucherShares returns, for placement p (or all placements when p < 0),
// each voucher's share of frames that ours read.
func (run *freshRun) voucherShares(p int) []float64 {
	read := make([]int, len(run.vouchers))
	all := make([]int, len(run.vouchers))
	for q := range run.frames {
		if p >= 0 && q != p {
			continue
		}
		for _, s := range run.frames[q] {
			all[s.voucher]++
			if s.ours {
				read[s.voucher]++
			}
		}
	}
	shares := make([]float64, len(read))
	for v := range read {
		shares[v] = float64(read[v]) / float64(max(all[v], 1))
	}
	return shares
}

// quantile returns the q-quantile (nearest rank) of ts.
func quantile(ts []time.Duration, q float64) time.Duration {
	if len(ts) == 0 {
		return 0
	}
	s := slices.Clone(ts)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// envInt reads a positive integer from the environment, or def.
func envInt(t testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// TestFreshBench issues fresh random vouchers, renders them in every
// placement, and scores ours, zxing-cpp and zbar on the same frames; it
// also times the three on frames without a code. It runs only with
// WICKET_QR_FRESH=1 (scripts/qrbench.sh) and writes a Markdown part to
// $WICKET_QR_FRESH_REPORT. WICKET_QR_SEED repeats a run; WICKET_QR_VOUCHERS,
// WICKET_QR_FRAMES (per voucher and placement) and WICKET_QR_EMPTY size it;
// WICKET_QR_TOOLS=0 leaves the other readers out; WICKET_QR_PLACES (names
// separated by commas) keeps only those placements, for development.
func TestFreshBench(t *testing.T) {
	if os.Getenv("WICKET_QR_FRESH") != "1" {
		t.Skip("set WICKET_QR_FRESH=1 to run the fresh-voucher benchmark (scripts/qrbench.sh)")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("WICKET_QR_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("WICKET_QR_SEED=%q: %v", s, err)
		}
	}
	n := envInt(t, "WICKET_QR_VOUCHERS", 200)
	k := envInt(t, "WICKET_QR_FRAMES", 1)
	empties := envInt(t, "WICKET_QR_EMPTY", 120)
	// WICKET_QR_DIR keeps the frames between runs of one seed.
	dir := t.TempDir()
	if keep := os.Getenv("WICKET_QR_DIR"); keep != "" {
		dir = filepath.Join(keep, strconv.FormatUint(seed, 10))
	}
	places := placements
	if names := os.Getenv("WICKET_QR_PLACES"); names != "" {
		places = nil
		for _, pl := range placements {
			if slices.Contains(strings.Split(names, ","), pl.name) {
				places = append(places, pl)
			}
		}
		if len(places) == 0 {
			t.Fatalf("WICKET_QR_PLACES=%q: no such placement", names)
		}
	}
	start := time.Now()
	run := newFreshRun(t, seed, n, k, places, empties, dir)
	t.Logf("seed %d: %d vouchers (%d–%d characters), %d frames, %d without a code, drawn in %v",
		seed, n, minLen(run.vouchers), maxLen(run.vouchers), n*k*len(placements), empties, time.Since(start).Round(time.Second))

	var d Decoder
	run.decodeOurs(t, &d)
	run.timeEmpty(t, &d)
	tools := []*tool{
		{name: "zxing-cpp", bin: "ZXingReader", args: []string{"-1", "-format", "QRCode"}},
		{name: "zbar", bin: "zbarimg", args: []string{"--xml", "-q", "--nodbus", "-Sdisable", "-Sqrcode.enable"}},
	}
	if os.Getenv("WICKET_QR_TOOLS") != "0" {
		for _, tl := range tools {
			if path, err := exec.LookPath(tl.bin); err == nil {
				tl.path = path
				tl.startup = cpuStartup(t, tl, dir)
			} else {
				t.Logf("%s: %s not installed, skipped", tl.name, tl.bin)
			}
		}
	}
	perFrame := run.runTools(t, tools)
	report := run.report(tools, perFrame)
	t.Log("\n" + report)
	if out := os.Getenv("WICKET_QR_FRESH_REPORT"); out != "" {
		if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// cpuStartup is the CPU time of tl on a missing file: process start,
// dynamic linking and library set-up, no decoding (median of seven runs).
func cpuStartup(t testing.TB, tl *tool, dir string) time.Duration {
	var ts []time.Duration
	for range 7 {
		_, took, err := batchTool(tl, []string{filepath.Join(dir, "missing.png")})
		if err != nil {
			t.Fatalf("%s: %v", tl.name, err)
		}
		ts = append(ts, took)
	}
	return median(ts)
}

func minLen(ss []string) int {
	n := len(ss[0])
	for _, s := range ss {
		n = min(n, len(s))
	}
	return n
}

func maxLen(ss []string) int {
	n := 0
	for _, s := range ss {
		n = max(n, len(s))
	}
	return n
}

// report formats the run as a Markdown part of the QR section.
func (run *freshRun) report(tools []*tool, perFrame [][]time.Duration) string {
	var b strings.Builder
	names := readerNames(tools, "not run")
	fmt.Fprintf(&b, "\n### Fresh vouchers\n\n")
	fmt.Fprintf(&b, "Seed %d (`WICKET_QR_SEED=%d scripts/qrbench.sh` repeats this run): %d vouchers issued with random claims "+
		"(16-byte ID, 32-byte subject, masked name, optional test and vaccination), each signed by `decoder.Issue` with an "+
		"Ed25519 key generated for it, %d–%d characters, drawn by `Encode` at level %s as for PNG vouchers; "+
		"each rendered %d times in each of %d placements into 640×480 grey frames (2×2 supersampled, "+
		"Gaussian lens blur σ 0.5 px, sensor noise σ 2.5, uneven light), and %d frames without a code. "+
		"Unless a placement says otherwise a code has 3.6–4.6 px a module and is turned by up to 3°. "+
		"All readers read the same PNG files. Times are CPU time, not wall time, so that other work on the machine does not count. "+
		"Ours: `Decoder.DecodeGray` with DefaultOptions, one run a frame in process, CPU time of the decoding thread "+
		"(PNG decoding excluded). The other tools: one process a placement over all its frames (`ZXingReader -1 -format QRCode`, "+
		"`zbarimg --xml -Sdisable -Sqrcode.enable`); their time per frame is (the process's user+system time − that of a run on a missing file) / frames, "+
		"a mean that includes reading the PNG file.\n\n",
		run.seed, run.seed, len(run.vouchers), minLen(run.vouchers), maxLen(run.vouchers), DefaultLevel,
		run.perPlace, len(run.frames), len(run.empty))
	if run.seed == devSeed || slices.Contains(slantDevSeeds[:], run.seed) || slices.Contains(laterDevSeeds[:], run.seed) {
		fmt.Fprintf(&b, "This is a seed the decoder was developed on: its figures may flatter it.\n\n")
	} else {
		fmt.Fprintf(&b, "The decoder was developed on the frames of seed %d, of seeds %d, %d and %d in the strong perspective, JPEG q20 and blur placements (and 2002 in low contrast) only, "+
			"and of seeds %d and %d (the lost frames of earlier runs); "+
			"this run's seed was drawn for it and its frames were not looked at before.\n\n", devSeed, slantDevSeeds[0], slantDevSeeds[1], slantDevSeeds[2], laterDevSeeds[0], laterDevSeeds[1])
	}
	b.WriteString("| placement | frames | read " + strings.Join(names, " | read ") +
		" | ours: worst voucher | ms/frame ours (median) | ms/frame " + strings.Join(names[1:], " (mean) | ms/frame ") + " (mean) |\n")
	b.WriteString("|---|---|" + strings.Repeat("---|", len(names)) + "---|" + strings.Repeat("---|", len(names)) + "\n")
	totals := make([]int, len(names))
	frames := 0
	for p, pl := range run.places {
		counts := make([]int, len(names))
		var took []time.Duration
		for _, s := range run.frames[p] {
			if s.ours {
				counts[0]++
			}
			for ti := range tools {
				if s.tools[ti] {
					counts[ti+1]++
				}
			}
			took = append(took, s.took)
		}
		n := len(run.frames[p])
		frames += n
		fmt.Fprintf(&b, "| %s | %d", pl.name, n)
		for i, c := range counts {
			totals[i] += c
			if i > 0 && tools[i-1].path == "" {
				b.WriteString(" | n/a")
				continue
			}
			fmt.Fprintf(&b, " | %s", pct1(c, n))
		}
		fmt.Fprintf(&b, " | %.0f%% | %.1f", 100*slices.Min(run.voucherShares(p)), ms(median(took)))
		for ti, tl := range tools {
			if tl.path == "" {
				b.WriteString(" | n/a")
				continue
			}
			fmt.Fprintf(&b, " | %.1f", ms(perFrame[p][ti]))
		}
		b.WriteString(" |\n")
	}
	fmt.Fprintf(&b, "| **all** | %d", frames)
	for i, c := range totals {
		if i > 0 && tools[i-1].path == "" {
			b.WriteString(" | n/a")
			continue
		}
		fmt.Fprintf(&b, " | %s", pct1(c, frames))
	}
	b.WriteString(" | | |" + strings.Repeat(" |", len(tools)) + "\n\n")

	shares := run.voucherShares(-1)
	below := 0
	for _, s := range shares {
		if s < 0.95 {
			below++
		}
	}
	fmt.Fprintf(&b, "Ours, per voucher over all its %d frames: worst %.1f%%, %d of %d vouchers below 95%%.\n\n",
		len(run.frames)*run.perPlace, 100*slices.Min(shares), below, len(shares))

	b.WriteString("Frames without a code (")
	kinds := map[string]int{}
	for _, e := range run.empty {
		kinds[e.kind]++
	}
	var ks []string
	for _, k := range emptyKinds {
		ks = append(ks, fmt.Sprintf("%d %s", kinds[k], k))
	}
	b.WriteString(strings.Join(ks, ", ") + "): time per frame. Ours and plain gozxing " +
		"(`qrcode.QRCodeReader.Decode` with no hints on gozxing's `HybridBinarizer`, the luminance source built outside the timing: " +
		"one search, no retries) in process, thread CPU time, median of 3 runs a frame; the other tools one process a frame, " +
		"user+system time, median of 3 runs, minus that of the start-up (process start, no decoding; a run on a missing file), so PNG reading is included.\n\n")
	b.WriteString("| reader | median ms | p90 ms | max ms | frames read as a code |\n|---|---|---|---|---|\n")
	col := func(name string, get func(e emptyShot) time.Duration, read func(e emptyShot) bool) {
		var ts []time.Duration
		n := 0
		for _, e := range run.empty {
			ts = append(ts, get(e))
			if read != nil && read(e) {
				n++
			}
		}
		readS := fmt.Sprint(n)
		if read == nil {
			readS = "–"
		}
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.2f | %s |\n", name, ms(quantile(ts, 0.5)), ms(quantile(ts, 0.9)), ms(slices.Max(ts)), readS)
	}
	col("ours", func(e emptyShot) time.Duration { return e.ours }, func(e emptyShot) bool { return e.oursRead })
	col("plain gozxing", func(e emptyShot) time.Duration { return e.plain }, nil)
	for ti, tl := range tools {
		if tl.path == "" {
			continue
		}
		col(tl.name, func(e emptyShot) time.Duration { return e.tools[ti] }, func(e emptyShot) bool { return e.toolsReadSome[ti] })
	}
	if len(tools) > 0 {
		var parts []string
		for _, tl := range tools {
			if tl.path != "" {
				parts = append(parts, fmt.Sprintf("%s %.1f ms", tl.name, ms(tl.startup)))
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(&b, "\nStart-up subtracted: %s.\n", strings.Join(parts, ", "))
		}
	}
	return b.String()
}

func pct1(ok, n int) string {
	if n == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(ok)/float64(n))
}

// devSeed is the seed whose frames the decoder's general techniques were
// developed and checked on; reports of other seeds are the ones to trust.
const devSeed = 1001

// slantDevSeeds are the seeds whose strong perspective and JPEG q20 frames
// the slanted finder pattern search (slantedFinders) was developed on, and
// whose blur frames the block midpoints of binarizer.local were.
var slantDevSeeds = [3]uint64{2002, 3003, 4004}

// laterDevSeeds are the seeds of earlier benchmark runs whose lost frames
// the grey-level grids and the low-contrast hint were developed on.
var laterDevSeeds = [2]uint64{1796581044376123415, 1796583082005230535}

// freshFloor is how many of the 6 frames of each placement in
// TestFreshFloor the decoder must read: what it read when the floor was
// last raised. The set is deterministic (fixed seed), so a regression
// shows as a frame lost, not as noise.
var freshFloor = map[string]int{
	"square":             6,
	"rotation 30°":       6,
	"rotation 45°":       6,
	"perspective":        6,
	"perspective + 40°":  6,
	"strong perspective": 5,
	"hand-held":          6,
	"small":              6,
	"inverted":           6,
	"blur":               6,
	"low contrast":       6,
	"glare on finder":    6,
	"JPEG q20":           6,
	"shadow":             6,
}

// TestFreshFloor renders a few fresh vouchers in a few placements, with a
// fixed seed, and checks that the decoder reads at least as many as it
// did (freshFloor), and reads nothing in frames without a code.
func TestFreshFloor(t *testing.T) {
	const seed, vouchers, empties = 7, 6, 8
	texts, err := freshVouchers(seed, vouchers)
	if err != nil {
		t.Fatal(err)
	}
	codes := make([]*image.Gray, vouchers)
	for v, text := range texts {
		if codes[v], err = moduleMatrix(text); err != nil {
			t.Fatal(err)
		}
	}
	// The frames are those of the benchmark with this seed, drawn and
	// read in memory.
	var d Decoder
	for _, pl := range placements {
		floor, ok := freshFloor[pl.name]
		if !ok {
			continue
		}
		read := 0
		for v := range vouchers {
			img, err := freshFrame(codes[v], pl, rand.New(rand.NewPCG(seed, frameSeed(v, pl.name, 0))))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := d.DecodeGray(img); err == nil && string(got) == texts[v] {
				read++
			}
		}
		if read < floor {
			t.Errorf("%s: read %d of %d frames; want at least %d", pl.name, read, vouchers, floor)
		}
		t.Logf("%s: %d/%d", pl.name, read, vouchers)
	}
	for i := range empties {
		kind := emptyKinds[i%len(emptyKinds)]
		img, err := emptyFrame(kind, rand.New(rand.NewPCG(seed, 1<<40|uint64(i))), codes[i%vouchers])
		if err != nil {
			t.Fatal(err)
		}
		if got, err := d.DecodeGray(img); err == nil {
			t.Errorf("%s frame %d: read %q; want no code", kind, i, got)
		}
	}
}
