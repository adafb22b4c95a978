package twin

import (
	"encoding/json"
	"fmt"
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"wicket/decoder/qr"
)

// The twin's camera: v4l2loopback (twin/camera.sh) as /dev/video7, fed by
// camfeed in the guest with 640x480 frames at camFPS.
const (
	camDev    = "/dev/video7"
	camW      = 640
	camH      = 480
	camFPS    = 15
	camRun    = "/run/camfeed"
	camFrames = camRun + "/frames"
)

// TestTwinCamera boots the twin (make twin-camera: arm64) with a camera
// instead of the UART scanner: Debian's videodev and the v4l2loopback
// module built against the twin's kernel, wicketd configured by wicketd
// init with -scanner camera, and camfeed writing frames into the loopback. A valid
// code's frames open the relay and log the decision; frames without a
// code (noise, a blank card, a damaged code) open nothing. Then
// TWIN_CAMERA_CODES distinct valid codes are each shown for
// TWIN_CAMERA_SHOW_S seconds: the decode rate (codes read / codes shown)
// and wicketd's CPU per frame (utime+stime of /proc/PID/stat over the
// frames written) are logged, under emulation (TCG).
func TestTwinCamera(t *testing.T) {
	img, deb, ko := os.Getenv("TWIN_IMG"), os.Getenv("TWIN_DEB"), os.Getenv("TWIN_V4L2LOOPBACK")
	if img == "" || deb == "" || ko == "" {
		t.Skip("board twin camera: TWIN_IMG, TWIN_DEB and TWIN_V4L2LOOPBACK not set (make twin-camera)")
	}
	shows := envCount(t, "TWIN_CAMERA_CODES", 8)
	showFor := time.Duration(envCount(t, "TWIN_CAMERA_SHOW_S", 4)) * time.Second
	work := t.TempDir()
	stickDir := filepath.Join(work, "stick")
	frameDir := filepath.Join(stickDir, "frames")
	if err := os.MkdirAll(frameDir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, ctl := wicketctl(t, work)
	authority(t, ctl, work, stickDir)
	codes := moreCodes(t, work, shows+1)
	writeFrames(t, frameDir, codes)
	copyFile(t, ko, filepath.Join(stickDir, "v4l2loopback.ko"))
	buildGuestTool(t, stickDir, "camfeed")
	stick := makeStick(t, work, stickDir, deb)
	disk := filepath.Join(work, "disk.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", filepath.Join(img, "root.img"), disk)

	b := boot(t, img, disk, stick)
	defer b.kill()
	chip := strings.TrimSpace(b.must(cmdTimeout, "ls -d /sys/devices/platform/gpio-sim.*/gpiochip*"))
	// The camera is plugged in before the technician installs: the
	// kernel's V4L2 core, the loopback, and the feeder with its frames
	// in tmpfs (install mounts the stick itself).
	b.must(cmdTimeout, "mount -o ro /dev/vdb /mnt && modprobe videodev && insmod /mnt/v4l2loopback.ko video_nr=7 card_label=twin-camera && mkdir -p "+camRun+" && cp -r /mnt/frames /mnt/camfeed "+camRun+"/ && umount /mnt")
	b.must(cmdTimeout, "udevadm settle && test -c "+camDev)
	t.Logf("camera: %s", strings.TrimSpace(b.must(cmdTimeout, "cat /sys/class/video4linux/video7/name; ls -l "+camDev)))
	show(b, "blank")
	b.must(cmdTimeout, fmt.Sprintf("setsid %s/camfeed -dev %s -dir %s -show %s/show -count %s/count -width %d -height %d -fps %d </dev/null >/dev/null 2>%s/err &",
		camRun, camDev, camFrames, camRun, camRun, camW, camH, camFPS, camRun))
	b.must(cmdTimeout, "timeout 60 sh -c 'until [ -s "+camRun+"/count ]; do sleep 0.2; done' || { cat "+camRun+"/err; false; }")

	// wicketd init as a technician runs it for a camera: the same answers
	// as the UART board's, the scanner a camera.
	flags := initFlags
	t.Cleanup(func() { initFlags = flags })
	initFlags = strings.Replace(flags, "-scanner /dev/ttyAMA0 -baud 115200", "-scanner camera -camera "+camDev, 1)
	if initFlags == flags {
		t.Fatal("initFlags: no UART scanner to replace")
	}
	install(t, b, "")
	if !waitJournalSince(b, 0, "camera streaming", 3*time.Minute) {
		t.Fatalf("wicketd did not start streaming from %s; journal:\n%s", camDev, strings.Join(b.journalLines(), "\n"))
	}
	startWalker(b, chip)

	// A valid code in view: one pulse, the green LED, and the decision.
	n0 := len(b.journalLines())
	es := watch(t, b, chip, func() { show(b, "code-00") }, pulsed, 2*time.Minute, relayLine, greenLine)
	show(b, "blank")
	if s, open := active(es, relayLine, relayOn); len(s) != 1 || open {
		t.Fatalf("valid code in view: relay spans %v (still open %v); want one pulse. edges %v", s, open, es)
	}
	if g, _ := active(es, greenLine, '1'); len(g) == 0 {
		t.Errorf("valid code in view: the green LED did not light; edges %v", es)
	}
	if g := grants(b.journalLines()[n0:]); g != 1 {
		t.Errorf("valid code in view: %d allow decisions in the journal; want 1:\n%s", g, strings.Join(b.journalLines()[n0:], "\n"))
	}

	// No code: noise, a blank card, a code with its middle cut out.
	n0 = len(b.journalLines())
	f0 := fedFrames(t, b)
	es = watch(t, b, chip, func() {
		for _, f := range []string{"noise", "white", "damaged", "blank"} {
			show(b, f)
			time.Sleep(showFor)
		}
	}, func([]edge) bool { return false }, time.Second, relayLine, redLine)
	if s, open := active(es, relayLine, relayOn); len(s) > 0 || open {
		t.Errorf("frames without a code: the relay opened: %v", es)
	}
	if g := grants(b.journalLines()[n0:]); g != 0 {
		t.Errorf("frames without a code: %d allow decisions:\n%s", g, strings.Join(b.journalLines()[n0:], "\n"))
	}
	t.Logf("frames without a code: %d frames fed, relay locked, %d decision lines logged", fedFrames(t, b)-f0, decisions(b.journalLines()[n0:]))

	// The rate: each code in view for showFor, then a blank for half that.
	pid := mainPID(b)
	hz, err := strconv.Atoi(strings.TrimSpace(b.must(cmdTimeout, "getconf CLK_TCK")))
	if err != nil || hz <= 0 {
		t.Fatalf("getconf CLK_TCK: %v", err)
	}
	n0 = len(b.journalLines())
	cpu0, f0, d0 := cpuTicks(t, b, pid), fedFrames(t, b), decodeMetrics(t, b)
	start := time.Now()
	es = watch(t, b, chip, func() {
		for i := 1; i <= shows; i++ {
			show(b, fmt.Sprintf("code-%02d", i))
			time.Sleep(showFor)
			show(b, "blank")
			time.Sleep(showFor / 2)
		}
	}, func(es []edge) bool { s, _ := active(es, relayLine, relayOn); return len(s) >= shows }, 10*time.Second, relayLine)
	cpu1, f1, d1 := cpuTicks(t, b, pid), fedFrames(t, b), decodeMetrics(t, b)
	wall := time.Since(start)
	if p := mainPID(b); p != pid {
		t.Fatalf("wicketd restarted during the rate run (pid %s, then %s)", pid, p)
	}
	read := grants(b.journalLines()[n0:])
	pulses, _ := active(es, relayLine, relayOn)
	frames, decodes := f1-f0, d1[0]-d0[0]
	cpu := time.Duration(float64(cpu1-cpu0) / float64(hz) * float64(time.Second))
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("camera under emulation (TCG, %s twin, not a Pi), host load average %s", os.Getenv("TWIN_ARCH"), strings.Join(strings.Fields(string(load))[:3], " "))
	t.Logf("decode rate: %d of %d codes read (%.0f%%), each in view %v at %d fps; %d relay pulses", read, shows, 100*float64(read)/float64(shows), showFor, camFPS, len(pulses))
	t.Logf("wicketd CPU: %v over %v wall, %d frames fed (%.1f/s): %.1f ms CPU per frame fed; %.0f frames decoded (%.1f/s), %.1f ms CPU and %.1f ms mean decode time per decoded frame",
		cpu.Round(10*time.Millisecond), wall.Round(100*time.Millisecond), frames, float64(frames)/wall.Seconds(), ms(cpu)/float64(max(frames, 1)),
		decodes, decodes/wall.Seconds(), ms(cpu)/max(decodes, 1), 1000*(d1[1]-d0[1])/max(decodes, 1))
	if read != len(pulses) {
		t.Errorf("%d allow decisions but %d relay pulses", read, len(pulses))
	}
	if read == 0 {
		t.Errorf("no code of %d read from the camera", shows)
	}
}

// writeFrames renders the test's frames into dir as raw 8-bit grey
// camW x camH images: code-NN (codes[NN] as a QR code, 400 pixels wide,
// on a white card in mid-grey surroundings), damaged (code 0 with a band
// across its middle painted over), noise, white and blank (mid-grey).
func writeFrames(t *testing.T, dir string, codes []string) {
	write := func(name string, g *image.Gray) {
		if err := os.WriteFile(filepath.Join(dir, name), g.Pix, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fill := func(v byte) *image.Gray {
		g := image.NewGray(image.Rect(0, 0, camW, camH))
		for i := range g.Pix {
			g.Pix[i] = v
		}
		return g
	}
	card := func(code string) *image.Gray {
		q, err := qr.Encode(code, 400, "M")
		if err != nil {
			t.Fatal(err)
		}
		g := fill(0x80)
		x0, y0 := (camW-q.Rect.Dx())/2, (camH-q.Rect.Dy())/2
		for y := 0; y < q.Rect.Dy(); y++ {
			copy(g.Pix[(y0+y)*g.Stride+x0:], q.Pix[y*q.Stride:y*q.Stride+q.Rect.Dx()])
		}
		return g
	}
	for i, c := range codes {
		write(fmt.Sprintf("code-%02d", i), card(c))
	}
	t.Logf("frames: %d vouchers of %d characters, each a level-M QR code 400 pixels wide in a %dx%d frame", len(codes), len(codes[0]), camW, camH)
	d := card(codes[0])
	for y := camH/2 - 60; y < camH/2+60; y++ {
		for x := 0; x < camW; x++ {
			d.Pix[y*d.Stride+x] = 0x80
		}
	}
	write("damaged", d)
	n := fill(0)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n.Pix {
		n.Pix[i] = byte(rng.Uint32())
	}
	write("noise", n)
	write("white", fill(0xff))
	write("blank", fill(0x80))
}

func copyFile(t *testing.T, from, to string) {
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// show puts the frame name in front of the camera.
func show(b *board, name string) {
	b.must(cmdTimeout, fmt.Sprintf("echo %s >%s/show.tmp && mv %s/show.tmp %s/show", name, camRun, camRun, camRun))
}

// fedFrames is the number of frames camfeed has written.
func fedFrames(t *testing.T, b *board) int {
	n, err := strconv.Atoi(strings.TrimSpace(b.must(cmdTimeout, "cat "+camRun+"/count")))
	if err != nil {
		t.Fatalf("camfeed count: %v", err)
	}
	return n
}

// cpuTicks is utime+stime of the process pid, in clock ticks.
func cpuTicks(t *testing.T, b *board, pid string) int64 {
	f := strings.Fields(b.must(cmdTimeout, "cat /proc/"+pid+"/stat"))
	if len(f) < 15 {
		t.Fatalf("/proc/%s/stat: %v", pid, f)
	}
	u, err1 := strconv.ParseInt(f[13], 10, 64)
	s, err2 := strconv.ParseInt(f[14], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%s/stat: utime %q stime %q", pid, f[13], f[14])
	}
	return u + s
}

// decodeMetrics is wicketd's count of decoded camera frames and their
// total decode time in seconds (wicket_decode_seconds of /metrics).
func decodeMetrics(t *testing.T, b *board) [2]float64 {
	var m [2]float64
	for _, l := range strings.Split(b.must(cmdTimeout, camRun+"/camfeed -metrics http://127.0.0.1:9101/metrics"), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			t.Fatalf("metrics: %q", l)
		}
		switch {
		case strings.HasPrefix(f[0], "wicket_decode_seconds_count"):
			m[0] = v
		case strings.HasPrefix(f[0], "wicket_decode_seconds_sum"):
			m[1] = v
		}
	}
	return m
}

// decisionLines are the decision lines of the journal lines.
func decisionLines(lines []string) []struct{ Allow bool } {
	var ds []struct{ Allow bool }
	for _, l := range lines {
		var e struct {
			Msg   string
			Allow bool
		}
		if json.Unmarshal([]byte(l), &e) == nil && e.Msg == "decision" {
			ds = append(ds, struct{ Allow bool }{e.Allow})
		}
	}
	return ds
}

func decisions(lines []string) int { return len(decisionLines(lines)) }

// grants counts the allow decisions.
func grants(lines []string) int {
	n := 0
	for _, d := range decisionLines(lines) {
		if d.Allow {
			n++
		}
	}
	return n
}
