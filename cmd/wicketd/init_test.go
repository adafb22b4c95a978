package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"image"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"wicket/cmd/wicketd/config"
	"wicket/decoder/qr"
	"wicket/sync/wire"
)

// runInit runs wicketd init with args and stdin, and returns the exit
// code, stdout and stderr.
func runInit(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := dispatch(context.Background(), append([]string{"init"}, args...), strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// loadInitConfig parses a written config as wicketd would, and checks the
// file's mode.
func loadInitConfig(t *testing.T, path string) *config.Config {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("%s: mode %04o, want 0640", path, st.Mode().Perm())
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("written config does not load: %v", err)
	}
	return cfg
}

// noDevices points the device directories at empty places.
func noDevices(t *testing.T) {
	t.Helper()
	old1, old2 := serialByIDDir, cameraByIDDir
	serialByIDDir, cameraByIDDir = filepath.Join(t.TempDir(), "serial"), filepath.Join(t.TempDir(), "v4l")
	t.Cleanup(func() { serialByIDDir, cameraByIDDir = old1, old2 })
}

func TestInitFlags(t *testing.T) {
	noDevices(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "wicketd.yaml")
	code, stdout, stderr := runInit(t, "",
		"-gate-id", "L2-S14-G03", "-venue", "V-450100-0042",
		"-scanner", "/dev/serial/by-id/usb-Newland_NLS-FM430-if00", "-baud", "115200",
		"-relay-pin", "gpio17", "-passage-pin", "P1_13", "-buzzer-pin", "GPIO25",
		"-broker", "tls://broker.metro.example:8883", "-fleet", "metro-l2",
		"-out", out)
	if code != exitOK {
		t.Fatalf("init = %d; stderr: %s", code, stderr)
	}
	cfg := loadInitConfig(t, out)
	for _, c := range []struct{ got, want any }{
		{cfg.Gate.ID, "L2-S14-G03"},
		{cfg.Gate.Venue, "V-450100-0042"},
		{cfg.Scanner.Type, "serial"},
		{cfg.Scanner.Device, "/dev/serial/by-id/usb-Newland_NLS-FM430-if00"},
		{cfg.Scanner.Baud, 115200},
		{cfg.Scanner.Terminator.String(), "cr"},
		{cfg.Turnstile.Backend, "gpio"},
		{cfg.Turnstile.Relay.Name, "GPIO17"},
		{cfg.Turnstile.Relay.ActiveLow, true},
		{cfg.Turnstile.Passage.Name, "P1_13"},
		{cfg.Feedback.Buzzer.Name, "GPIO25"},
		{cfg.Sync.Enabled, true},
		{cfg.Sync.Fleet, "metro-l2"},
		{cfg.Sync.Broker, "tls://broker.metro.example:8883"},
		{cfg.Sync.CertFile, filepath.Join(dir, "gate.crt")},
		{cfg.Trust.RootKeys[0], filepath.Join(dir, "root.pub")},
		{cfg.Trust.KeySet, filepath.Join(dir, "keyset.cose")},
		{cfg.Store.Path, "/var/lib/wicket/wicket.db"},
	} {
		if c.got != c.want {
			t.Errorf("config: got %v, want %v", c.got, c.want)
		}
	}
	for _, want := range []string{"root.pub", "check-config " + out, "test-relay -config " + out, "test-scanner", "gate.crt"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("next steps lack %q:\n%s", want, stdout)
		}
	}
	if stdout != "" && strings.Contains(stdout, "[") {
		t.Errorf("init asked questions with every flag given:\n%s", stdout)
	}
	// The gate's identity: made here, 0600, shown for enrolment; shown
	// again, and kept, later.
	key, err := wire.ReadIdentity(cfg.Path(cfg.Sync.IdentityKey))
	if err != nil {
		t.Fatalf("identity key: %v", err)
	}
	line := enrolText("L2-S14-G03", "V-450100-0042", key.Public().(ed25519.PublicKey))
	if !strings.Contains(stdout, line) || !strings.Contains(stdout, "█") {
		t.Errorf("init does not show the enrolment line %q and its QR code:\n%s", line, stdout)
	}
	var again, errb bytes.Buffer
	if code := cmdIdentity(context.Background(), []string{"-config", out}, nil, &again, &errb); code != exitOK || !strings.Contains(again.String(), line) {
		t.Errorf("wicketd identity = %d, %s%s; want the same enrolment line", code, again.String(), errb.String())
	}
	if code, stdout, stderr := runInit(t, "", "-gate-id", "L2-S14-G03", "-venue", "V-450100-0042", "-scanner", "stdin",
		"-relay-pin", "gpio17", "-broker", "tls://broker.metro.example:8883", "-fleet", "metro-l2", "-out", out, "--force"); code != exitOK || !strings.Contains(stdout, line) {
		t.Errorf("init --force = %d; want the identity kept:\n%s%s", code, stdout, stderr)
	}
}

// The enrolment QR code reads back as the enrolment line.
func TestEnrolmentQR(t *testing.T) {
	line := enrolText("G1", "V1", make(ed25519.PublicKey, ed25519.PublicKeySize))
	code, err := terminalQR(line)
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimRight(code, "\n"), "\n")
	size := utf8.RuneCountInString(rows[0])
	img := image.NewGray(image.Rect(0, 0, size*4, len(rows)*2*4))
	for y, row := range rows {
		for x, r := range []rune(row) {
			top, bottom := r == '█' || r == '▀', r == '█' || r == '▄'
			for dy := range 8 {
				light := top
				if dy >= 4 {
					light = bottom
				}
				for dx := range 4 {
					// Light modules are the blocks (for a dark terminal).
					if light {
						img.SetGray(x*4+dx, y*8+dy, color.Gray{Y: 0xff})
					}
				}
			}
		}
	}
	got, err := qr.NewDecoder().Decode(img)
	if err != nil || string(got) != line {
		t.Fatalf("decoded %q, %v; want %q", got, err, line)
	}
}

func TestInitInteractive(t *testing.T) {
	noDevices(t)
	if err := os.MkdirAll(serialByIDDir, 0o755); err != nil {
		t.Fatal(err)
	}
	scanner := filepath.Join(serialByIDDir, "usb-Honeywell_1900-if00")
	if err := os.WriteFile(scanner, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "wicketd.yaml")
	answers := strings.Join([]string{
		"L2-S14-G07",  // gate id
		"V-450100-42", // venue
		"",            // scanner: the default, the one found
		"",            // relay: GPIO17
		"",            // broker: none
	}, "\n") + "\n"
	code, stdout, stderr := runInit(t, answers, "-interactive", "-out", out)
	if code != exitOK {
		t.Fatalf("init = %d; stdout: %s\nstderr: %s", code, stdout, stderr)
	}
	cfg := loadInitConfig(t, out)
	if cfg.Gate.ID != "L2-S14-G07" || cfg.Gate.Venue != "V-450100-42" || cfg.Scanner.Device != scanner ||
		cfg.Turnstile.Relay.Name != "GPIO17" || cfg.Sync.Enabled {
		t.Errorf("config from answers: %+v %+v %+v sync %v", cfg.Gate, cfg.Scanner, cfg.Turnstile.Relay, cfg.Sync.Enabled)
	}
	for _, want := range []string{"Gate id", "Venue id", "Scanner (", "[" + scanner + "]", "[GPIO17]", "[none]", "Serial devices: " + scanner} {
		if !strings.Contains(stdout, want) {
			t.Errorf("prompts lack %q:\n%s", want, stdout)
		}
	}
}

// TestInitTerminal: on a terminal init asks only for what the flags leave
// out.
func TestInitTerminal(t *testing.T) {
	noDevices(t)
	old := stdinIsTerminal
	stdinIsTerminal = func(io.Reader) bool { return true }
	t.Cleanup(func() { stdinIsTerminal = old })
	out := filepath.Join(t.TempDir(), "wicketd.yaml")
	answers := "camera\n/dev/v4l/by-id/usb-046d_C270-video-index0\nP1_11\ntls://10.0.0.5:8883\nmetro-l2\n"
	code, stdout, stderr := runInit(t, answers, "-gate-id", "G1", "-venue", "V1", "-out", out)
	if code != exitOK {
		t.Fatalf("init = %d; stdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if strings.Contains(stdout, "Gate id") || strings.Contains(stdout, "Venue id") {
		t.Errorf("asked for what the flags gave:\n%s", stdout)
	}
	cfg := loadInitConfig(t, out)
	if cfg.Scanner.Type != "camera" || cfg.Scanner.Camera.Device != "/dev/v4l/by-id/usb-046d_C270-video-index0" ||
		cfg.Turnstile.Relay.Name != "P1_11" || !cfg.Sync.Enabled || cfg.Sync.Fleet != "metro-l2" {
		t.Errorf("config from answers: %+v %+v sync %+v", cfg.Scanner, cfg.Turnstile.Relay, cfg.Sync)
	}
}

func TestInitRefusesOverwrite(t *testing.T) {
	noDevices(t)
	out := filepath.Join(t.TempDir(), "wicketd.yaml")
	const old = "# the technician's own config\n"
	if err := os.WriteFile(out, []byte(old), 0o640); err != nil {
		t.Fatal(err)
	}
	args := []string{"-gate-id", "G1", "-venue", "V1", "-scanner", "stdin", "-relay-pin", "GPIO17", "-out", out}
	code, _, stderr := runInit(t, "", args...)
	if code != exitUsage || !strings.Contains(stderr, "exists") || !strings.Contains(stderr, "--force") {
		t.Errorf("init over an existing file = %d, %q; want exit 2 naming --force", code, stderr)
	}
	if b, _ := os.ReadFile(out); string(b) != old {
		t.Fatalf("existing file changed without --force:\n%s", b)
	}
	code, _, stderr = runInit(t, "", append(args, "--force")...)
	if code != exitOK {
		t.Fatalf("init --force = %d: %s", code, stderr)
	}
	if cfg := loadInitConfig(t, out); cfg.Scanner.Type != "stdin" {
		t.Errorf("scanner.type = %q after --force", cfg.Scanner.Type)
	}
}

func TestInitBadAnswers(t *testing.T) {
	noDevices(t)
	dir := t.TempDir()

	// Asked again until the answer is good, with the reason.
	out := filepath.Join(dir, "a.yaml")
	answers := strings.Join([]string{
		"L2/S14", "L2 S14", "L2-S14-G03", // gate id: two bad, one good
		"", "V1", // venue: empty, then good
		"stdin",
		"17", "GPIO40", "P1_6", "GPIO4", // relay: bare number, not a header GPIO, ground, good
		"mqtt//broker", "none",
	}, "\n") + "\n"
	code, stdout, stderr := runInit(t, answers, "-interactive", "-out", out)
	if code != exitOK {
		t.Fatalf("init = %d; stdout: %s\nstderr: %s", code, stdout, stderr)
	}
	for _, want := range []string{
		`gate id: "L2/S14": use 1-64 characters without / + # $ or spaces; try again`,
		`gate id: "L2 S14"`,
		"venue: needed",
		`pin "17": a bare number is ambiguous; say GPIO17 for BCM 17, or P1_17 for header pin 17`,
		`pin "GPIO40": the header's GPIOs are GPIO2..GPIO27`,
		`pin "P1_6": header pin 6 is not a GPIO`,
		`broker: "mqtt//broker"`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if cfg := loadInitConfig(t, out); cfg.Gate.ID != "L2-S14-G03" || cfg.Turnstile.Relay.Name != "GPIO4" {
		t.Errorf("config: gate %q relay %q", cfg.Gate.ID, cfg.Turnstile.Relay.Name)
	}

	// Answers that run out: refused, nothing written.
	out = filepath.Join(dir, "b.yaml")
	code, _, stderr = runInit(t, "bad/id\n", "-interactive", "-out", out)
	if code != exitUsage || !strings.Contains(stderr, "no answer") {
		t.Errorf("init with answers running out = %d, %q", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s written after a refusal", out)
	}

	// Bad flags: refused with the flag and the fix, nothing written.
	base := []string{"-gate-id", "G1", "-venue", "V1", "-scanner", "stdin", "-relay-pin", "GPIO17", "-out", out}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-gate-id", "G#1"}, `-gate-id: gate id: "G#1"`},
		{[]string{"-relay-pin", "11"}, `-relay-pin: pin "11": a bare number is ambiguous`},
		{[]string{"-relay-pin", "GPIO99"}, `-relay-pin: pin "GPIO99"`},
		{[]string{"-passage-pin", "P1_11"}, `-passage-pin: P1_11 is already the relay`},
		{[]string{"-scanner", "/dev/video0"}, "-scanner: scanner: /dev/video0 is a camera"},
		{[]string{"-broker", "tls://broker:8883"}, "-fleet: missing"},
		{[]string{"-baud", "50"}, "-baud: 50 is out of range"},
	} {
		args := append(append([]string{}, base...), tc.args...)
		if tc.args[0] == "-passage-pin" {
			args = append(args, "-relay-pin", "GPIO17")
		}
		code, _, stderr := runInit(t, "", args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("init %v = %d, %q; want exit 2 and %q", tc.args, code, stderr, tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%s written after a refusal", out)
		}
	}

	// Without a terminal, missing flags are named, not asked for.
	code, _, stderr = runInit(t, "", "-gate-id", "G1", "-out", out)
	if code != exitUsage || !strings.Contains(stderr, "-venue: missing") {
		t.Errorf("init without -venue = %d, %q", code, stderr)
	}
}

func TestCheckPin(t *testing.T) {
	for in, want := range map[string]string{"GPIO17": "GPIO17", "gpio2": "GPIO2", "BCM27": "GPIO27", "P1_11": "P1_11", "p1_40": "P1_40"} {
		if got, err := checkPin(in); err != nil || got != want {
			t.Errorf("checkPin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "17", "GPIO0", "GPIO1", "GPIO28", "P1_1", "P1_27", "P1_41", "PA12", "GPIO 17"} {
		if got, err := checkPin(bad); err == nil {
			t.Errorf("checkPin(%q) = %q, nil; want an error", bad, got)
		}
	}
}
