// Command camfeed is the board twin's camera: it runs in the guest and
// writes frames into a v4l2loopback device, which wicketd reads as its
// V4L2 camera (twin/camera_test.go).
//
//	camfeed -dev /dev/video7 -dir /mnt/frames -show /run/camfeed/show -count /run/camfeed/count
//
// The frames are raw 8-bit grey images of -width x -height in -dir; each
// is written as YUYV (the grey as luminance, no colour) at -fps, over and
// over. The file named in -show (one frame name, replaced by the test to
// change the picture) says which frame; -count gets the number of frames
// written so far, each time the shown frame changes and every second.
//
//	camfeed -metrics http://127.0.0.1:9101/metrics
//
// prints the lines of wicketd's metrics about camera decodes
// (wicket_decode_seconds_count and _sum).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	dev := flag.String("dev", "", "the v4l2loopback device")
	dir := flag.String("dir", "", "directory of raw grey frames")
	show := flag.String("show", "", "file naming the frame to show")
	count := flag.String("count", "", "file to write the number of frames written to")
	width := flag.Int("width", 640, "frame width")
	height := flag.Int("height", 480, "frame height")
	fps := flag.Float64("fps", 10, "frames per second")
	metrics := flag.String("metrics", "", "print wicketd's decode metrics from this URL and exit")
	flag.Parse()
	if *metrics != "" {
		if err := printMetrics(*metrics); err != nil {
			fail(err)
		}
		return
	}
	if *dev == "" || *dir == "" || *show == "" || *count == "" || *fps <= 0 {
		fail(fmt.Errorf("-dev, -dir, -show, -count and a positive -fps are needed"))
	}
	f, err := os.OpenFile(*dev, os.O_RDWR, 0)
	if err != nil {
		fail(err)
	}
	if err := setOutputYUYV(f, *width, *height); err != nil {
		fail(fmt.Errorf("%s: set the output format: %w", *dev, err))
	}
	frames := map[string][]byte{}
	load := func(name string) ([]byte, error) {
		if fr, ok := frames[name]; ok {
			return fr, nil
		}
		grey, err := os.ReadFile(filepath.Join(*dir, filepath.Base(name)))
		if err != nil {
			return nil, err
		}
		if len(grey) != *width**height {
			return nil, fmt.Errorf("%s: %d bytes, want %d (%dx%d grey)", name, len(grey), *width**height, *width, *height)
		}
		fr := make([]byte, 2*len(grey))
		for i, y := range grey {
			fr[2*i], fr[2*i+1] = y, 128
		}
		frames[name] = fr
		return fr, nil
	}
	var n uint64
	var cur string
	var frame []byte
	tick := time.NewTicker(time.Duration(float64(time.Second) / *fps))
	lastCount := time.Now()
	for range tick.C {
		want, err := os.ReadFile(*show)
		if err != nil {
			fail(err)
		}
		if name := strings.TrimSpace(string(want)); name != cur {
			fr, err := load(name)
			if err != nil {
				fail(err)
			}
			cur, frame = name, fr
			writeCount(*count, n)
		}
		if _, err := f.Write(frame); err != nil {
			fail(fmt.Errorf("%s: write a frame: %w", *dev, err))
		}
		n++
		if time.Since(lastCount) >= time.Second {
			writeCount(*count, n)
			lastCount = time.Now()
		}
	}
}

// V4L2's ABI (linux/videodev2.h): struct v4l2_format is a __u32 type and
// a 200-byte union aligned like a pointer (it holds struct v4l2_window).
const (
	bufTypeVideoOutput = 2
	fieldNone          = 1
	colorspaceSRGB     = 8
)

func setOutputYUYV(f *os.File, w, h int) error {
	align := int(unsafe.Sizeof(uintptr(0)))
	buf := make([]byte, align+200)
	put := func(off int, v uint32) {
		*(*uint32)(unsafe.Pointer(&buf[off])) = v
	}
	put(0, bufTypeVideoOutput)
	pix := align
	put(pix, uint32(w))
	put(pix+4, uint32(h))
	put(pix+8, uint32('Y')|uint32('U')<<8|uint32('Y')<<16|uint32('V')<<24)
	put(pix+12, fieldNone)
	put(pix+16, uint32(2*w))
	put(pix+20, uint32(2*w*h))
	put(pix+24, colorspaceSRGB)
	// _IOWR('V', 5, struct v4l2_format): VIDIOC_S_FMT.
	req := uintptr(3)<<30 | uintptr(len(buf))<<16 | uintptr('V')<<8 | 5
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), req, uintptr(unsafe.Pointer(&buf[0]))); e != 0 {
		return e
	}
	return nil
}

func writeCount(path string, n uint64) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d\n", n), 0o644); err != nil {
		fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		fail(err)
	}
}

func printMetrics(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "wicket_decode_seconds_count") || strings.HasPrefix(l, "wicket_decode_seconds_sum") {
			fmt.Println(l)
		}
	}
	return sc.Err()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "camfeed:", err)
	os.Exit(1)
}
