package camera

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/image/webp"
)

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// sized returns a gray image of w by h filled with v, so frames can be
// told apart by size and value.
func sized(w, h int, v uint8) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := range g.Pix {
		g.Pix[i] = v
	}
	return g
}

func nextN(t *testing.T, f FrameSource, n int) []Frame {
	t.Helper()
	var out []Frame
	for range n {
		fr, err := f.Next(context.Background())
		if err != nil {
			t.Fatalf("Next after %d frames: %v", len(out), err)
		}
		out = append(out, fr)
	}
	return out
}

func TestFileFramesDirectory(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "b.png"), sized(20, 10, 200))
	writePNG(t, filepath.Join(dir, "a.png"), colour(sized(10, 10, 100)))
	if err := os.WriteFile(filepath.Join(dir, "c.jpg"), encodeJPEG(t, sized(30, 10, 50)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("skipped"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writePNG(t, filepath.Join(dir, "sub", "0.png"), sized(5, 5, 0))

	f, err := NewFileFrames([]string{dir}, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if f.Len() != 3 {
		t.Fatalf("Len() = %d; want 3 (a.png, b.png, c.jpg)", f.Len())
	}
	frames := nextN(t, f, 3)
	wantW := []int{10, 20, 30}
	wantV := []int{100, 200, 50}
	for i, fr := range frames {
		if fr.Gray.Bounds().Dx() != wantW[i] || abs(int(fr.Gray.Pix[0])-wantV[i]) > 2 || fr.Seq != uint64(i+1) {
			t.Errorf("frame %d (%s): width %d, value %d, seq %d; want %d, %d, %d", i, f.Name(i), fr.Gray.Bounds().Dx(), fr.Gray.Pix[0], fr.Seq, wantW[i], wantV[i], i+1)
		}
	}
	if _, err := f.Next(context.Background()); err != io.EOF {
		t.Errorf("Next after the last frame = %v; want io.EOF", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Next(context.Background()); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Next after Close = %v; want fs.ErrClosed", err)
	}
}

func TestFileFramesWebP(t *testing.T) {
	data, err := os.ReadFile("testdata/gopher.webp")
	if err != nil {
		t.Fatal(err)
	}
	img, err := webp.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFileFrames([]string{"testdata/gopher.webp"}, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	fr := nextN(t, f, 1)[0]
	if fr.Gray.Bounds().Size() != img.Bounds().Size() {
		t.Errorf("webp frame is %v; want %v", fr.Gray.Bounds().Size(), img.Bounds().Size())
	}
	if want := lumaOf(nil, img); !bytes.Equal(fr.Gray.Pix, want.Pix) {
		t.Error("webp frame differs from the decoded image's luminance")
	}
}

func TestFileFramesMJPEGLoop(t *testing.T) {
	dir := t.TempDir()
	var stream bytes.Buffer
	for i := range 3 {
		stream.WriteString("junk")
		stream.Write(encodeJPEG(t, sized(16*(i+1), 16, 128)))
	}
	path := filepath.Join(dir, "clip.mjpeg")
	if err := os.WriteFile(path, stream.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := NewFileFrames([]string{path}, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if f.Len() != 3 || f.Name(1) != path+"#2" {
		t.Fatalf("Len() = %d, Name(1) = %q; want 3, %q", f.Len(), f.Name(1), path+"#2")
	}
	for i, fr := range nextN(t, f, 7) {
		if w := 16 * (i%3 + 1); fr.Gray.Bounds().Dx() != w || fr.Seq != uint64(i+1) {
			t.Errorf("frame %d: width %d, seq %d; want %d, %d", i, fr.Gray.Bounds().Dx(), fr.Seq, w, i+1)
		}
	}
}

// TestFileFramesRate replays at 4 fps in a synctest bubble, whose clock
// is the real one as FileFrames sees it: the time Next spends waiting is
// the pacing, and a caller that is late is not made to catch up.
func TestFileFramesRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		writePNG(t, filepath.Join(dir, "a.png"), sized(8, 8, 1))
		f, err := NewFileFrames([]string{dir}, true, 4)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var waits []time.Duration
		next := func(n int) []Frame {
			var frames []Frame
			for range n {
				before := time.Now()
				frames = append(frames, nextN(t, f, 1)...)
				if d := time.Since(before); d > 0 {
					waits = append(waits, d)
				}
			}
			return frames
		}

		frames := next(3)
		time.Sleep(100 * time.Millisecond) // the caller took a while
		frames = append(frames, next(1)...)
		time.Sleep(time.Second) // the caller fell behind
		frames = append(frames, next(2)...)

		want := []time.Duration{250 * time.Millisecond, 250 * time.Millisecond, 150 * time.Millisecond, 250 * time.Millisecond}
		if !slices.Equal(waits, want) {
			t.Errorf("waits = %v; want %v", waits, want)
		}
		wantAt := []time.Duration{0, 250, 500, 750, 1750, 2000}
		for i, fr := range frames {
			if got := fr.At.Sub(start); got != wantAt[i]*time.Millisecond {
				t.Errorf("frame %d at %v; want %v", i, got, wantAt[i]*time.Millisecond)
			}
		}

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := f.Next(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Next with a done context = %v; want context.Canceled", err)
		}
	})
}

func TestNewFileFramesErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.png")
	if err := os.WriteFile(bad, []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		paths []string
		fps   float64
	}{
		{"empty dir", []string{t.TempDir()}, 0},
		{"no paths", nil, 0},
		{"missing", []string{filepath.Join(dir, "none.png")}, 0},
		{"undecodable", []string{bad}, 0},
		{"negative fps", []string{bad}, -1},
	} {
		if _, err := NewFileFrames(tt.paths, false, tt.fps); err == nil {
			t.Errorf("%s: NewFileFrames(%q, %v) succeeded; want an error", tt.name, tt.paths, tt.fps)
		}
	}
}
