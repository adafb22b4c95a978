package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"wicket/decoder"
	"wicket/decoder/qr"
	"wicket/internal/testkit"
)

// TestCameraScanner runs wicketd with the camera source on a directory of
// frames (the replay a technician uses to check a camera set-up): two
// vouchers, each held in front of the camera for 24 frames (1.6 s at 15 fps) as a passenger
// would, then blank frames, give two decisions. (The camera keeps only the
// newest frame while it decodes, so a code shown in a single frame may be
// skipped; a real presentation lasts many frames.)
func TestCameraScanner(t *testing.T) {
	dir := t.TempDir()
	cfgPath, f := gateFiles(t, dir)
	frames := filepath.Join(dir, "frames")
	os.Mkdir(frames, 0o755)
	write := func(name string, img image.Image) {
		fh, err := os.Create(filepath.Join(frames, name))
		if err != nil {
			t.Fatal(err)
		}
		png.Encode(fh, img)
		fh.Close()
	}
	for i := range 2 {
		c := f.Claims(decoder.KindPrinted)
		c.ID = fmt.Appendf(nil, "camera-voucher-%d", i)
		img, err := qr.Encode(f.Issue(t, f.Ed, c), 480, "M")
		if err != nil {
			t.Fatal(err)
		}
		frame := image.NewGray(image.Rect(0, 0, 640, 480))
		for i := range frame.Pix {
			frame.Pix[i] = 0xff
		}
		for y := 0; y < 480; y++ {
			copy(frame.Pix[y*frame.Stride+80:y*frame.Stride+560], img.Pix[y*img.Stride:y*img.Stride+480])
		}
		for k := range 24 {
			write(fmt.Sprintf("%d-%d-code.png", i, k), frame)
		}
	}
	write("2-blank.png", image.NewGray(image.Rect(0, 0, 640, 480)))
	cfg, _ := os.ReadFile(cfgPath)
	cfg = bytes.Replace(cfg, []byte("scanner: {type: stdin, hold_off: 0s}"), []byte("scanner: {type: camera, hold_off: 2s, camera: {device: frames, fps: 15}}"), 1)
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb testkit.Buffer
	if rc := dispatch(context.Background(), []string{"run", "-config", cfgPath}, strings.NewReader(""), &out, &errb); rc != exitOK {
		t.Fatalf("wicketd run: exit %d\n%s", rc, errb.String())
	}
	if n := strings.Count(out.String(), "display: ALLOW"); n != 2 {
		t.Fatalf("%d allowed decisions from the camera frames; want 2:\n%s\n%s", n, out.String(), errb.String())
	}
}
