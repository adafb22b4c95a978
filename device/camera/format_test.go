package camera

import (
	"errors"
	"strings"
	"testing"
)

func TestFourcc(t *testing.T) {
	for _, s := range []string{"YUYV", "MJPG", "JPEG", "NV12"} {
		if got := fourccString(fourcc(s)); got != s {
			t.Errorf("fourccString(fourcc(%q)) = %q; want %q", s, got, s)
		}
	}
	if got := fourcc("YUYV"); got != 0x56595559 {
		t.Errorf("fourcc(%q) = %#x; want 0x56595559 (V4L2_PIX_FMT_YUYV)", "YUYV", got)
	}
}

func TestChooseFormat(t *testing.T) {
	yuyv, mjpg, jpg, nv12 := fourcc("YUYV"), fourcc("MJPG"), fourcc("JPEG"), fourcc("NV12")
	tests := []struct {
		supported []uint32
		want      Format
		code      uint32
		errHas    string
	}{
		{[]uint32{mjpg, yuyv}, FormatYUYV, yuyv, ""},
		{[]uint32{mjpg, yuyv}, FormatMJPEG, mjpg, ""},
		{[]uint32{jpg, mjpg}, FormatMJPEG, mjpg, ""},
		{[]uint32{jpg}, FormatMJPEG, jpg, ""},
		{[]uint32{nv12, mjpg}, FormatYUYV, 0, "MJPG, NV12"},
		{nil, FormatMJPEG, 0, "offers"},
		{[]uint32{yuyv}, "H264", 0, "YUYV"},
	}
	for _, tt := range tests {
		code, err := chooseFormat(tt.supported, tt.want)
		if tt.errHas != "" {
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("chooseFormat(%v, %q) error = %v; want ErrUnsupported naming %q", tt.supported, tt.want, err, tt.errHas)
			}
			continue
		}
		if err != nil || code != tt.code {
			t.Errorf("chooseFormat(%v, %q) = %s, %v; want %s", tt.supported, tt.want, fourccString(code), err, fourccString(tt.code))
		}
	}
}

func discrete(w, h uint32) sizeRange { return sizeRange{w, w, 0, h, h, 0} }

func TestChooseSize(t *testing.T) {
	common := []sizeRange{discrete(1280, 720), discrete(320, 240), discrete(640, 480), discrete(160, 120)}
	tests := []struct {
		name   string
		sizes  []sizeRange
		w, h   uint32
		bw, bh uint32
		ok     bool
	}{
		{"exact", common, 640, 480, 640, 480, true},
		{"closest below", common, 600, 450, 640, 480, true},
		{"closest above", []sizeRange{discrete(320, 240), discrete(1920, 1080)}, 800, 600, 320, 240, true},
		{"larger than all", common, 4000, 3000, 1280, 720, true},
		{"smaller than all", common, 10, 10, 160, 120, true},
		{"stepwise", []sizeRange{{16, 1920, 8, 16, 1080, 8}}, 642, 479, 640, 480, true},
		{"stepwise clamps", []sizeRange{{16, 800, 16, 16, 600, 16}}, 1024, 768, 800, 600, true},
		{"continuous", []sizeRange{{16, 1920, 1, 16, 1080, 1}}, 641, 481, 641, 481, true},
		{"zero entries ignored", []sizeRange{{}, discrete(320, 240)}, 640, 480, 320, 240, true},
		{"none", nil, 640, 480, 0, 0, false},
		{"only zero", []sizeRange{{}}, 640, 480, 0, 0, false},
		{"over MaxFrameSide", []sizeRange{discrete(8192, 8192)}, 640, 480, 0, 0, false},
	}
	for _, tt := range tests {
		bw, bh, ok := chooseSize(tt.sizes, tt.w, tt.h)
		if bw != tt.bw || bh != tt.bh || ok != tt.ok {
			t.Errorf("%s: chooseSize(%v, %d, %d) = %d, %d, %v; want %d, %d, %v", tt.name, tt.sizes, tt.w, tt.h, bw, bh, ok, tt.bw, tt.bh, tt.ok)
		}
	}
}

func TestV4L2ConfigValidate(t *testing.T) {
	good := V4L2Config{Device: "/dev/v4l/by-id/usb-cam-video-index0"}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v; want nil", good, err)
	}
	d := good.withDefaults()
	if d.Format != FormatYUYV || d.Width != DefaultWidth || d.Height != DefaultHeight || d.StallTimeout != DefaultStallTimeout {
		t.Errorf("withDefaults() = %+v", d)
	}
	bad := []struct {
		cfg   V4L2Config
		field string
	}{
		{V4L2Config{}, "Device"},
		{V4L2Config{Device: "x", Format: "RGB3"}, "Format"},
		{V4L2Config{Device: "x", Width: -1}, "Width"},
		{V4L2Config{Device: "x", Height: MaxFrameSide + 1}, "Height"},
		{V4L2Config{Device: "x", FPS: -5}, "FPS"},
		{V4L2Config{Device: "x", StallTimeout: -1}, "StallTimeout"},
	}
	for _, tt := range bad {
		err := tt.cfg.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("Validate(%+v) = %v; want ErrConfig naming %s", tt.cfg, err, tt.field)
		}
	}
}

func TestOpenV4L2Missing(t *testing.T) {
	_, err := OpenV4L2(V4L2Config{Device: t.TempDir() + "/video9"}, nil)
	if err == nil {
		t.Fatal("OpenV4L2 of a missing device succeeded")
	}
}

// TestFormatText: a config names the format in any case; anything else
// is refused naming the choices.
func TestFormatText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Format
	}{{"yuyv", FormatYUYV}, {"YUYV", FormatYUYV}, {"mjpeg", FormatMJPEG}, {"MJPEG", FormatMJPEG}} {
		var f Format
		if err := f.UnmarshalText([]byte(tc.in)); err != nil || f != tc.want {
			t.Errorf("UnmarshalText(%q) = %q, %v; want %q", tc.in, f, err, tc.want)
		}
		if b, err := f.MarshalText(); err != nil || string(b) != strings.ToLower(tc.in) {
			t.Errorf("MarshalText(%q) = %q, %v; want %q", f, b, err, strings.ToLower(tc.in))
		}
	}
	for _, in := range []string{"", "h264", "rgb3"} {
		f := FormatMJPEG
		err := f.UnmarshalText([]byte(in))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "use yuyv or mjpeg") || f != FormatMJPEG {
			t.Errorf("UnmarshalText(%q) = %q, %v; want ErrConfig naming yuyv and mjpeg, value unchanged", in, f, err)
		}
	}
}
