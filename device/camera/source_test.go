package camera_test

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"wicket/decoder/qr"
	"wicket/device"
	"wicket/device/camera"
	"wicket/device/camera/cameratest"
	"wicket/device/internal/logtest"
	"wicket/internal/testkit"
)

var _ camera.Decoder = (*qr.Decoder)(nil)

// lockstep wraps a FrameSource so that it yields a frame only after the
// previous one was decoded, making a run with a fast source deterministic.
type lockstep struct {
	camera.FrameSource
	decoded chan struct{}
	first   bool
}

func (l *lockstep) Next(ctx context.Context) (camera.Frame, error) {
	if l.first {
		select {
		case <-l.decoded:
		case <-ctx.Done():
			return camera.Frame{}, ctx.Err()
		}
	}
	l.first = true
	return l.FrameSource.Next(ctx)
}

// signalling wraps a Decoder and signals each finished decode.
type signalling struct {
	camera.Decoder
	decoded chan struct{}
}

func (s signalling) DecodeGray(g *image.Gray) ([]byte, error) {
	defer func() { s.decoded <- struct{}{} }()
	return s.Decoder.DecodeGray(g)
}

func writeQR(t *testing.T, path, text string) {
	t.Helper()
	img, err := qr.Encode(text, 240, "M")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// runAll runs src to its end, with room for ten scans, and returns them.
func runAll(t *testing.T, src *camera.Source) []device.Scan {
	t.Helper()
	out := make(chan device.Scan, 10)
	if err := src.Run(context.Background(), out); err != nil {
		t.Fatalf("Run = %v", err)
	}
	close(out)
	var got []device.Scan
	for s := range out {
		got = append(got, s)
	}
	return got
}

func TestSourceEndToEndQR(t *testing.T) {
	dir := t.TempDir()
	writeQR(t, filepath.Join(dir, "1.png"), "WICKET:V1:AAAA")
	writeQR(t, filepath.Join(dir, "2.png"), "WICKET:V1:AAAA")
	if err := png.Encode(mustCreate(t, filepath.Join(dir, "3.png")), image.NewGray(image.Rect(0, 0, 240, 240))); err != nil {
		t.Fatal(err)
	}
	writeQR(t, filepath.Join(dir, "4.png"), "WICKET:V1:BBBB")

	decoded := make(chan struct{}, 1)
	open := func() (camera.FrameSource, error) {
		f, err := camera.NewFileFrames([]string{dir}, false, 0)
		if err != nil {
			return nil, err
		}
		return &lockstep{FrameSource: f, decoded: decoded}, nil
	}
	src, err := camera.NewSource(camera.Config{Name: "files", MaxFPS: -1}, open, signalling{qr.NewDecoder(), decoded}, device.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := runAll(t, src)
	var texts []string
	for _, s := range got {
		texts = append(texts, string(s.Payload))
		if s.Source != "camera:files" || s.At.IsZero() {
			t.Errorf("scan %q: Source %q, At %v; want camera:files and the frame time", s.Payload, s.Source, s.At)
		}
	}
	want := []string{"WICKET:V1:AAAA", "WICKET:V1:BBBB"}
	if !slices.Equal(texts, want) {
		t.Errorf("scans = %q; want %q", texts, want)
	}
	st := src.Stats()
	if st.FramesRead != 4 || st.Decodes != 4 || st.Found != 3 || st.Repeats != 1 || st.Scans != 2 || st.FramesDropped != 0 {
		t.Errorf("Stats() = %+v; want 4 read, 4 decodes, 3 found, 1 repeat, 2 scans, 0 dropped", st)
	}
	if st.AvgDecode <= 0 || st.LastDecode <= 0 {
		t.Errorf("Stats() decode times %v, %v; want positive", st.LastDecode, st.AvgDecode)
	}
}

func mustCreate(t *testing.T, path string) io.Writer {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// frame returns a 4x4 frame whose pixels hold id, taken at second id.
func frame(id uint8) camera.Frame {
	g := image.NewGray(image.Rect(0, 0, 4, 4))
	for i := range g.Pix {
		g.Pix[i] = id
	}
	return camera.Frame{Gray: g, At: time.Unix(int64(id), 0), Seq: uint64(id)}
}

// byPixel decodes a frame made by frame as "code <id>"; id 0 has no code.
type byPixel struct{}

func (byPixel) DecodeGray(g *image.Gray) ([]byte, error) {
	if g.Pix[0] == 0 {
		return nil, errors.New("no code")
	}
	return fmt.Appendf(nil, "code %d", g.Pix[0]), nil
}

// blocking decodes like byPixel, but announces each frame on started and
// returns only when released.
type blocking struct {
	started chan uint8
	release chan struct{}
}

func (b blocking) DecodeGray(g *image.Gray) ([]byte, error) {
	b.started <- g.Pix[0]
	<-b.release
	return byPixel{}.DecodeGray(g)
}

func TestSourceLatestFrameWins(t *testing.T) {
	fake := &cameratest.Frames{C: make(chan cameratest.Result), Calls: make(chan struct{})}
	dec := blocking{started: make(chan uint8), release: make(chan struct{})}
	src, err := camera.NewSource(camera.Config{Name: "cam", MaxFPS: -1, RepeatAfter: -1},
		func() (camera.FrameSource, error) { return fake, nil }, dec, device.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan device.Scan, 10)
	done := make(chan error)
	go func() { done <- src.Run(ctx, out) }()

	send := func(id uint8) {
		<-fake.Calls
		fake.C <- cameratest.Result{Frame: frame(id)}
	}
	send(1)
	if id := <-dec.started; id != 1 {
		t.Fatalf("first decode of frame %d; want 1", id)
	}
	// While frame 1 decodes, frames 2, 3 and 4 come; only 4 must wait.
	send(2)
	send(3)
	send(4)
	<-fake.Calls // frame 4 is in the mailbox
	dec.release <- struct{}{}
	if id := <-dec.started; id != 4 {
		t.Errorf("second decode of frame %d; want 4 (the latest)", id)
	}
	dec.release <- struct{}{}
	if s := <-out; string(s.Payload) != "code 1" {
		t.Errorf("first scan %q; want code 1", s.Payload)
	}
	if s := <-out; string(s.Payload) != "code 4" || !s.At.Equal(time.Unix(4, 0)) {
		t.Errorf("second scan %q at %v; want code 4 at frame 4's time", s.Payload, s.At)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	st := src.Stats()
	if st.FramesRead != 4 || st.FramesDropped != 2 || st.Decodes != 2 {
		t.Errorf("Stats() = %+v; want 4 read, 2 dropped, 2 decodes", st)
	}
	if fake.Active() != 0 || !fake.Closed() {
		t.Errorf("after Run: %d calls of Next active, closed %v; want 0, true", fake.Active(), fake.Closed())
	}
}

func TestSourceRepeatAfter(t *testing.T) {
	fake := &cameratest.Frames{C: make(chan cameratest.Result, 10)}
	// Code 5 at 0 s, 0.5 s, 1.5 s; code 6 at 1.6 s; code 5 at 1.7 s.
	at := []time.Duration{0, 500, 1500, 1600, 1700}
	ids := []uint8{5, 5, 5, 6, 5}
	for i, id := range ids {
		f := frame(id)
		f.At = time.Unix(100, 0).Add(at[i] * time.Millisecond)
		fake.C <- cameratest.Result{Frame: f}
	}
	fake.C <- cameratest.Result{Err: io.EOF}
	decoded := make(chan struct{}, 1)
	src, err := camera.NewSource(camera.Config{Name: "cam", MaxFPS: -1},
		func() (camera.FrameSource, error) { return &lockstep{FrameSource: fake, decoded: decoded}, nil },
		signalling{byPixel{}, decoded}, device.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range runAll(t, src) {
		got = append(got, fmt.Sprintf("%s@%v", s.Payload, s.At.Sub(time.Unix(100, 0))))
	}
	want := []string{"code 5@0s", "code 5@1.5s", "code 6@1.6s", "code 5@1.7s"}
	if !slices.Equal(got, want) {
		t.Errorf("scans = %q; want %q", got, want)
	}
}

// TestSourceReopen runs in a synctest bubble, whose clock is the real one
// as the source sees it: the camera is lost after a frame, missing twice,
// and back; the waits between attempts grow within the jitter, and each
// change of state is one log line with the component once.
func TestSourceReopen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		first := &cameratest.Frames{C: make(chan cameratest.Result, 2)}
		first.C <- cameratest.Result{Frame: frame(1)}
		first.C <- cameratest.Result{Err: fmt.Errorf("%w: read frame: no such device", camera.ErrDeviceGone)}
		second := &cameratest.Frames{C: make(chan cameratest.Result, 2)}
		second.C <- cameratest.Result{Frame: frame(2)}
		second.C <- cameratest.Result{Err: io.EOF}
		opens := []func() (camera.FrameSource, error){
			func() (camera.FrameSource, error) { return first, nil },
			func() (camera.FrameSource, error) { return nil, os.ErrNotExist },
			func() (camera.FrameSource, error) { return nil, os.ErrNotExist },
			func() (camera.FrameSource, error) { return second, nil },
		}
		var at []time.Time
		open := func() (camera.FrameSource, error) {
			at = append(at, time.Now())
			return opens[len(at)-1]()
		}

		var states []string
		var logBuf testkit.Buffer
		log := slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})).With("component", "scanner")
		src, err := camera.NewSource(camera.Config{Name: "cam", MaxFPS: -1, RetryMin: 100 * time.Millisecond, RetryMax: time.Second}, open, byPixel{}, device.SourceOptions{
			Logger: log,
			OnState: func(up bool, err error) {
				states = append(states, fmt.Sprint(up, errors.Is(err, camera.ErrDeviceGone), errors.Is(err, os.ErrNotExist)))
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range runAll(t, src) {
			got = append(got, string(s.Payload))
		}
		if !slices.Equal(got, []string{"code 1", "code 2"}) {
			t.Errorf("scans = %q; want code 1, code 2", got)
		}
		if want := []string{"true false false", "false true false", "true false false"}; !slices.Equal(states, want) {
			t.Errorf("OnState calls = %q; want %q", states, want)
		}
		if len(at) != 4 {
			t.Fatalf("opened %d times; want 4", len(at))
		}
		for i, max := range []time.Duration{100, 200, 400} {
			if d := at[i+1].Sub(at[i]); d < max*time.Millisecond/2 || d > max*time.Millisecond {
				t.Errorf("wait %d = %v; want within [%v, %v]", i, d, max*time.Millisecond/2, max*time.Millisecond)
			}
		}
		if st := src.Stats(); st.Disconnects != 1 || st.Connected {
			t.Errorf("Stats() = %+v; want 1 disconnect, not connected", st)
		}
		if !first.Closed() || !second.Closed() {
			t.Error("a frame source was not closed")
		}
		lines := logtest.Lines(t, logBuf.String())
		want := []string{"device connected", "device lost; reconnecting", "device still unavailable", "device still unavailable", "device connected", "frame source ended"}
		got = slices.DeleteFunc(logtest.Messages(lines), func(m string) bool { return m == "scan" })
		if !slices.Equal(got, want) {
			t.Errorf("log = %q; want %q", got, want)
		}
		for _, l := range lines {
			if l["component"] != "scanner" || l["device"] != "cam" {
				t.Errorf("log line %v: want component scanner, device cam", l)
			}
		}
	})
}

func TestSourceMaxFPS(t *testing.T) {
	fake := &cameratest.Frames{C: make(chan cameratest.Result, 30)}
	for i := range 26 {
		f := frame(0)
		f.At = time.Unix(0, 0).Add(time.Duration(i) * 10 * time.Millisecond)
		fake.C <- cameratest.Result{Frame: f}
	}
	fake.C <- cameratest.Result{Err: io.EOF}
	src, err := camera.NewSource(camera.Config{Name: "cam", MaxFPS: 10},
		func() (camera.FrameSource, error) { return fake, nil }, byPixel{}, device.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Run(context.Background(), make(chan device.Scan)); err != nil {
		t.Fatal(err)
	}
	// Frames 10 ms apart under a 100 ms cap (87.5 ms with the jitter
	// allowance): those at 0, 90 and 180 ms are taken.
	if st := src.Stats(); st.FramesRead != 26 || st.FramesSkipped != 23 || st.Decodes+st.FramesDropped != 3 {
		t.Errorf("Stats() = %+v; want 26 read, 23 skipped, 3 decoded or dropped", st)
	}
}

// TestSourceMaxDecodeRate runs in a synctest bubble: at 4 decodes a
// second, decodes of frames that are all ready at once are 250 ms apart on
// the clock.
func TestSourceMaxDecodeRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &cameratest.Frames{C: make(chan cameratest.Result, 4)}
		for id := range uint8(3) {
			fake.C <- cameratest.Result{Frame: frame(id + 1)}
		}
		fake.C <- cameratest.Result{Err: io.EOF}
		decoded := make(chan struct{}, 1)
		var at []time.Time
		src, err := camera.NewSource(camera.Config{Name: "cam", MaxFPS: -1, MaxDecodeRate: 4},
			func() (camera.FrameSource, error) { return &lockstep{FrameSource: fake, decoded: decoded}, nil },
			signalling{timed{byPixel{}, &at}, decoded}, device.SourceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Run(context.Background(), make(chan device.Scan, 10)); err != nil {
			t.Fatal(err)
		}
		var waits []time.Duration
		for i := 1; i < len(at); i++ {
			waits = append(waits, at[i].Sub(at[i-1]))
		}
		if want := []time.Duration{250 * time.Millisecond, 250 * time.Millisecond}; !slices.Equal(waits, want) {
			t.Errorf("waits between decodes = %v; want %v", waits, want)
		}
		if st := src.Stats(); st.Decodes != 3 {
			t.Errorf("Stats().Decodes = %d; want 3", st.Decodes)
		}
	})
}

// timed wraps a Decoder and records when each decode started.
type timed struct {
	camera.Decoder
	at *[]time.Time
}

func (d timed) DecodeGray(g *image.Gray) ([]byte, error) {
	*d.at = append(*d.at, time.Now())
	return d.Decoder.DecodeGray(g)
}

// TestSourceCancel checks that Run returns once its context is done, with
// no goroutine left behind (synctest fails the test if one is), whether it
// waits for a frame, for the decoder, or to send a scan.
func TestSourceCancel(t *testing.T) {
	for _, where := range []string{"frame", "send", "reopen"} {
		t.Run(where, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fake := &cameratest.Frames{C: make(chan cameratest.Result, 2)}
				switch where {
				case "send":
					fake.C <- cameratest.Result{Frame: frame(1)}
				case "reopen":
					fake.C <- cameratest.Result{Err: camera.ErrDeviceGone}
				}
				src, err := camera.NewSource(camera.Config{Name: "cam", MaxFPS: -1, RetryMin: time.Hour, RetryMax: time.Hour},
					func() (camera.FrameSource, error) { return fake, nil }, byPixel{}, device.SourceOptions{})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error)
				go func() { done <- src.Run(ctx, make(chan device.Scan)) }()
				synctest.Wait()
				cancel()
				if err := <-done; err != nil {
					t.Fatalf("Run = %v", err)
				}
				if fake.Active() != 0 || !fake.Closed() {
					t.Errorf("after Run: %d calls of Next active, closed %v; want 0, true", fake.Active(), fake.Closed())
				}
			})
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (camera.Config{Name: "/dev/video0"}).Validate(); err != nil {
		t.Errorf("Validate = %v; want nil", err)
	}
	for _, tt := range []struct {
		cfg   camera.Config
		field string
	}{
		{camera.Config{}, "Name"},
		{camera.Config{Name: "x", MaxFPS: 5000}, "MaxFPS"},
		{camera.Config{Name: "x", MaxDecodeRate: -1}, "MaxDecodeRate"},
		{camera.Config{Name: "x", RetryMin: -1}, "RetryMin"},
		{camera.Config{Name: "x", RetryMin: time.Minute, RetryMax: time.Second}, "RetryMin"},
	} {
		err := tt.cfg.Validate()
		if !errors.Is(err, camera.ErrConfig) || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("Validate(%+v) = %v; want ErrConfig naming %s", tt.cfg, err, tt.field)
		}
	}
	if _, err := camera.NewSource(camera.Config{Name: "x"}, nil, byPixel{}, device.SourceOptions{}); !errors.Is(err, camera.ErrConfig) {
		t.Errorf("NewSource without open = %v; want ErrConfig", err)
	}
}
