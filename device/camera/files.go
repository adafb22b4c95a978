package camera

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/jpeg" // registers JPEG for image.Decode
	_ "image/png"  // registers PNG for image.Decode
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "golang.org/x/image/webp" // registers WebP for image.Decode

	"wicket/internal/clock"
)

// FileFrames replays images from files as frames, for demos and tests.
// Every image is converted to gray once, when FileFrames is made.
type FileFrames struct {
	frames   []*image.Gray
	names    []string
	loop     bool
	interval time.Duration

	clock clock.Clock

	i      int
	seq    uint64
	due    time.Time
	closed bool
}

var _ FrameSource = (*FileFrames)(nil)

// imageExts are the file name extensions read from a directory.
var imageExts = map[string]bool{".png": true, ".jpg": true, ".jpeg": true, ".webp": true, ".mjpg": true, ".mjpeg": true}

// NewFileFrames reads the images in paths, in order. A path may be a
// PNG, JPEG or WebP image; an MJPEG stream file (".mjpg" or ".mjpeg":
// concatenated JPEGs), each JPEG in it a frame; or a directory, whose
// files with those extensions are read in name order (subdirectories are
// not entered). Next replays them at fps frames a second (as fast as
// asked if fps is 0), from the first again if loop is set, else ending
// with io.EOF.
//
// Errors: ErrConfig for a bad fps or no images at all; a file that cannot
// be read or decoded, or an image larger than MaxFrameSide, is an error
// naming the file.
func NewFileFrames(paths []string, loop bool, fps float64) (*FileFrames, error) {
	if fps < 0 || math.IsNaN(fps) || math.IsInf(fps, 0) {
		return nil, fmt.Errorf("%w: fps %v: use a positive rate, or 0 for no pacing", ErrConfig, fps)
	}
	f := &FileFrames{loop: loop, clock: clock.Real()}
	if fps > 0 {
		f.interval = time.Duration(float64(time.Second) / fps)
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("frame files: %w", err)
		}
		if !st.IsDir() {
			if err := f.add(p); err != nil {
				return nil, err
			}
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("frame files: %w", err)
		}
		for _, e := range entries {
			if e.Type().IsRegular() && imageExts[strings.ToLower(filepath.Ext(e.Name()))] {
				if err := f.add(filepath.Join(p, e.Name())); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(f.frames) == 0 {
		return nil, fmt.Errorf("%w: no images in %q: give PNG, JPEG, WebP or MJPEG files or a directory of them", ErrConfig, paths)
	}
	return f, nil
}

// add reads the frames of one file.
func (f *FileFrames) add(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("frame files: %w", err)
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".mjpg", ".mjpeg":
		r := NewMJPEGReader(bytes.NewReader(data))
		for n := 1; ; n++ {
			jpg, err := r.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("frame files: %s: frame %d: %w", path, n, err)
			}
			g, err := JPEGToGray(nil, jpg)
			if err != nil {
				return fmt.Errorf("frame files: %s: frame %d: %w", path, n, err)
			}
			if err := f.push(g, fmt.Sprintf("%s#%d", path, n)); err != nil {
				return err
			}
		}
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("frame files: %s: %w", path, err)
	}
	if cfg.Width > MaxFrameSide || cfg.Height > MaxFrameSide {
		return fmt.Errorf("frame files: %s: %dx%d image, at most %d a side", path, cfg.Width, cfg.Height, MaxFrameSide)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("frame files: %s: %w", path, err)
	}
	return f.push(lumaOf(nil, img), path)
}

func (f *FileFrames) push(g *image.Gray, name string) error {
	if len(f.frames) >= MaxFileFrames {
		return fmt.Errorf("frame files: %s: more than %d frames", name, MaxFileFrames)
	}
	f.frames = append(f.frames, g)
	f.names = append(f.names, name)
	return nil
}

// Len returns the number of frames in one pass.
func (f *FileFrames) Len() int { return len(f.frames) }

// Name returns the file (and frame number, for MJPEG files) of frame i of
// a pass, counting from 0.
func (f *FileFrames) Name(i int) string { return f.names[i] }

// Next waits until the next frame is due and returns it; the images are
// shared between passes and must not be modified. It returns io.EOF after
// the last frame unless looping, ctx.Err() if ctx is done first, and
// fs.ErrClosed after Close.
func (f *FileFrames) Next(ctx context.Context) (Frame, error) {
	if f.closed {
		return Frame{}, fs.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return Frame{}, err
	}
	if f.i == len(f.frames) {
		if !f.loop {
			return Frame{}, io.EOF
		}
		f.i = 0
	}
	if f.interval > 0 {
		now := f.clock.Now()
		if f.due.IsZero() {
			f.due = now
		}
		if d := f.due.Sub(now); d > 0 && !clock.Sleep(ctx, f.clock, d) {
			return Frame{}, ctx.Err()
		}
	}
	at := f.clock.Now()
	if f.interval > 0 {
		f.due = f.due.Add(f.interval)
		if f.due.Before(at) {
			// The caller fell behind: it gets this frame at once, the
			// next one a full interval later.
			f.due = at.Add(f.interval)
		}
	}
	g := f.frames[f.i]
	f.i++
	f.seq++
	return Frame{Gray: g, At: at, Seq: f.seq}, nil
}

// Close ends the replay; Next then returns fs.ErrClosed.
func (f *FileFrames) Close() error {
	f.closed = true
	return nil
}
