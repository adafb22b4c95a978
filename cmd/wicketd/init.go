package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/template"

	"go.yaml.in/yaml/v3"

	"wicket/cmd/wicketd/config"
	"wicket/sync/mqttconn"
	"wicket/sync/wire"
)

// Where init looks for devices to offer as defaults. Variables so tests
// can point them at a temporary directory.
var (
	serialByIDDir = "/dev/serial/by-id"
	cameraByIDDir = "/dev/v4l/by-id"
)

// stdinIsTerminal reports whether r is a terminal, where init asks for
// what the flags leave out. A variable so tests can pretend.
var stdinIsTerminal = func(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&fs.ModeCharDevice != 0
}

// initAnswers is what init asks for; the rest of the config keeps the
// defaults of configs/wicketd.yaml.
type initAnswers struct {
	GateID, Venue string
	Scanner       string // a serial device, stdin, or camera
	Camera        string // the camera device, for Scanner camera
	Baud          int
	RelayPin      string
	RelayLow      bool
	Passage       string
	Emergency     string
	GreenLED      string
	RedLED        string
	Buzzer        string
	Broker        string // empty: no fleet sync
	Fleet         string
	Dir           string // the config's directory: keys and certificates go there
	Path          string // the config file
}

// cmdInit writes a first config for a gate from flags, asking on the
// terminal for what they leave out.
func cmdInit(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("init", "[flags]  (asks for what is missing when run on a terminal)", stderr)
	var a initAnswers
	fs.StringVar(&a.GateID, "gate-id", "", "this gate's fleet id, e.g. L2-S14-G03 (no spaces, / + # $)")
	fs.StringVar(&a.Venue, "venue", "", "the venue id the gate belongs to, e.g. V-450100-0042")
	fs.StringVar(&a.Scanner, "scanner", "", "the scanner: /dev/serial/by-id/..., stdin, or camera")
	fs.StringVar(&a.Camera, "camera", "", "the camera for -scanner camera: /dev/v4l/by-id/... (default: the first one found)")
	fs.IntVar(&a.Baud, "baud", 9600, "the serial scanner's baud rate")
	fs.StringVar(&a.RelayPin, "relay-pin", "", "the lock relay's GPIO: GPIO17 (BCM number) or P1_11 (header pin)")
	fs.BoolVar(&a.RelayLow, "relay-active-low", true, "the relay board switches on a low level (most do)")
	fs.StringVar(&a.Passage, "passage-pin", "", "the passage sensor's GPIO (optional)")
	fs.StringVar(&a.Emergency, "emergency-pin", "", "the fire/emergency input's GPIO (optional)")
	fs.StringVar(&a.GreenLED, "green-led-pin", "", "the green LED's GPIO (optional)")
	fs.StringVar(&a.RedLED, "red-led-pin", "", "the red LED's GPIO (optional)")
	fs.StringVar(&a.Buzzer, "buzzer-pin", "", "the buzzer's GPIO (optional)")
	fs.StringVar(&a.Broker, "broker", "", "the fleet broker, tls://host:8883; none: no fleet sync")
	fs.StringVar(&a.Fleet, "fleet", "", "the fleet id, with -broker, e.g. metro-l2")
	out := fs.String("out", "/etc/wicket/wicketd.yaml", "the config file to write")
	force := fs.Bool("force", false, "overwrite an existing config file")
	interactive := fs.Bool("interactive", false, "ask for missing answers even when stdin is not a terminal")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return exitUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "wicketd init: "+format+"\n", args...)
		return exitUsage
	}
	path, err := filepath.Abs(*out)
	if err != nil {
		return fail("-out: %v", err)
	}
	if _, err := os.Lstat(path); err == nil && !*force {
		return fail("%s exists; not overwriting it. Use --force to replace it, or -out for another file.", path)
	}
	a.Dir, a.Path = filepath.Dir(path), path

	p := &prompter{in: bufio.NewReader(stdin), out: stdout}
	ask := *interactive || stdinIsTerminal(stdin)
	if err := a.complete(set, ask, p); err != nil {
		return fail("%v", err)
	}
	text, err := a.render()
	if err != nil {
		return fail("%v", err)
	}
	if _, err := config.Parse(text, a.Dir); err != nil {
		return fail("the new config does not validate: %v", err)
	}
	if err := writeConfig(path, text, *force); err != nil {
		return fail("%v", err)
	}
	a.nextSteps(stdout, path)
	if a.Broker != "" {
		keyPath := filepath.Join(a.Dir, identityFile)
		pub, made, err := ensureIdentity(keyPath)
		if err != nil {
			return fail("%v", err)
		}
		if made {
			fmt.Fprintf(stdout, "\nMade this gate's identity key %s (mode 0600; it never leaves the gate).\n", keyPath)
		} else {
			fmt.Fprintf(stdout, "\nKept this gate's identity key %s.\n", keyPath)
		}
		printEnrolment(stdout, a.GateID, a.Venue, pub)
	}
	return exitOK
}

// complete checks the answers given as flags and asks for the missing ones
// when ask is set; without ask a missing required answer is an error.
func (a *initAnswers) complete(set map[string]bool, ask bool, p *prompter) (err error) {
	type question struct {
		flag, prompt string
		dst          *string
		def          func() string
		check        func(string) (string, error)
		when         func() bool
		optional     bool // without ask, a missing answer takes def
	}
	hostname := func() string {
		h, err := os.Hostname()
		if err != nil || checkGateID(h) != nil {
			return ""
		}
		return h
	}
	none := func() string { return "" }
	qs := []question{
		{"gate-id", "Gate id (this gate's fleet id, e.g. L2-S14-G03)", &a.GateID, hostname, checkGateIDAnswer, nil, false},
		{"venue", "Venue id (the venue the gate belongs to)", &a.Venue, none, checkVenue, nil, false},
		{"scanner", "Scanner (a serial device, stdin, or camera)", &a.Scanner, defaultScanner, checkScanner, nil, false},
		{"camera", "Camera device", &a.Camera, defaultCamera, checkCamera, func() bool { return a.Scanner == "camera" }, true},
		{"relay-pin", "Lock relay GPIO (GPIO17, or header pin P1_11)", &a.RelayPin, func() string { return "GPIO17" }, checkPin, nil, false},
		{"broker", "Fleet broker (tls://host:8883; none for no fleet sync)", &a.Broker, func() string { return "none" }, checkBroker, nil, true},
		{"fleet", "Fleet id (e.g. metro-l2)", &a.Fleet, none, checkFleet, func() bool { return a.Broker != "" }, false},
	}
	if ask && p != nil {
		if n := deviceList(serialByIDDir); len(n) > 0 {
			fmt.Fprintf(p.out, "Serial devices: %s\n", strings.Join(n, ", "))
		}
	}
	for _, q := range qs {
		if q.when != nil && !q.when() {
			continue
		}
		if set[q.flag] || (!ask && *q.dst != "") {
			v, err := q.check(*q.dst)
			if err != nil {
				return fmt.Errorf("-%s: %v", q.flag, err)
			}
			*q.dst = v
			continue
		}
		if !ask {
			if q.optional {
				if v := q.def(); v != "" {
					if *q.dst, err = q.check(v); err != nil {
						return fmt.Errorf("-%s: %v", q.flag, err)
					}
				}
				continue
			}
			return fmt.Errorf("-%s: missing (run on a terminal to be asked, or see wicketd init -h)", q.flag)
		}
		v, err := p.ask(q.prompt, q.def(), q.check)
		if err != nil {
			return fmt.Errorf("%s: %v", q.flag, err)
		}
		*q.dst = v
	}
	if a.Scanner == "camera" && a.Camera == "" {
		return errors.New("-camera: no camera found under " + cameraByIDDir + "; name it with -camera /dev/v4l/by-id/...")
	}
	if a.Baud < 1200 || a.Baud > 921600 {
		return fmt.Errorf("-baud: %d is out of range 1200..921600 (commonly 9600 or 115200)", a.Baud)
	}
	used := map[string]string{}
	for _, x := range []struct {
		flag string
		pin  *string
	}{
		{"relay-pin", &a.RelayPin}, {"passage-pin", &a.Passage}, {"emergency-pin", &a.Emergency},
		{"green-led-pin", &a.GreenLED}, {"red-led-pin", &a.RedLED}, {"buzzer-pin", &a.Buzzer},
	} {
		if *x.pin == "" {
			continue
		}
		v, err := checkPin(*x.pin)
		if err != nil {
			return fmt.Errorf("-%s: %v", x.flag, err)
		}
		if other, ok := used[bcmOf(v)]; ok {
			return fmt.Errorf("-%s: %s is already the %s", x.flag, v, other)
		}
		used[bcmOf(v)] = strings.TrimSuffix(x.flag, "-pin")
		*x.pin = v
	}
	return nil
}

// prompter asks questions on out and reads answers, one a line, from in.
type prompter struct {
	in  *bufio.Reader
	out io.Writer
}

// maxTries bounds the questions asked again after a bad answer.
const maxTries = 5

// ask prints the question with its default, reads an answer (empty: the
// default) and asks again while check refuses it.
func (p *prompter) ask(q, def string, check func(string) (string, error)) (string, error) {
	for try := 0; try < maxTries; try++ {
		if def != "" {
			fmt.Fprintf(p.out, "%s [%s]: ", q, def)
		} else {
			fmt.Fprintf(p.out, "%s: ", q)
		}
		line, err := p.in.ReadString('\n')
		if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
			fmt.Fprintln(p.out)
			return "", errors.New("no answer (end of input)")
		}
		ans := strings.TrimSpace(line)
		if ans == "" {
			ans = def
		}
		v, cerr := check(ans)
		if cerr == nil {
			return v, nil
		}
		fmt.Fprintf(p.out, "  %v; try again\n", cerr)
		if err != nil {
			return "", errors.New("no answer (end of input)")
		}
	}
	return "", fmt.Errorf("no valid answer after %d tries", maxTries)
}

func checkGateID(s string) error {
	if err := wire.ValidName(s); err != nil {
		return err
	}
	if !regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`).MatchString(s) {
		return fmt.Errorf("%q: use letters, digits and . _ : - only, starting with a letter or digit", s)
	}
	return nil
}

func checkGateIDAnswer(s string) (string, error) {
	if s == "" {
		return "", errors.New("gate id: needed (the gate's fleet id, e.g. L2-S14-G03)")
	}
	if err := checkGateID(s); err != nil {
		return "", fmt.Errorf("gate id: %v", err)
	}
	return s, nil
}

func checkVenue(s string) (string, error) {
	if s == "" {
		return "", errors.New("venue: needed (the venue id, e.g. V-450100-0042)")
	}
	if strings.ContainsAny(s, "\n\r\t") {
		return "", fmt.Errorf("venue: %q: no control characters", s)
	}
	return s, nil
}

func checkFleet(s string) (string, error) {
	if s == "" {
		return "", errors.New("fleet: needed with a broker (the fleet id, e.g. metro-l2)")
	}
	if err := wire.ValidName(s); err != nil {
		return "", fmt.Errorf("fleet: %v", err)
	}
	return s, nil
}

func checkScanner(s string) (string, error) {
	switch {
	case s == "stdin" || s == "camera":
		return s, nil
	case s == "":
		return "", fmt.Errorf("scanner: needed: a serial device (%s/...), stdin or camera", serialByIDDir)
	case strings.HasPrefix(s, "/dev/v4l/") || strings.HasPrefix(s, "/dev/video"):
		return "", fmt.Errorf("scanner: %s is a camera: answer camera, then name the device", s)
	case !strings.HasPrefix(s, "/"):
		return "", fmt.Errorf("scanner: %q: a device path (%s/...), stdin or camera", s, serialByIDDir)
	}
	return s, nil
}

func checkCamera(s string) (string, error) {
	if !strings.HasPrefix(s, "/") {
		return "", fmt.Errorf("camera: %q: a device path, e.g. %s/usb-...-video-index0", s, cameraByIDDir)
	}
	return s, nil
}

func checkBroker(s string) (string, error) {
	if s == "" || s == "none" {
		return "", nil
	}
	scheme, err := mqttconn.CheckBroker(s)
	if err != nil {
		return "", fmt.Errorf("broker: %q: %v (e.g. tls://broker.metro.example:8883)", s, err)
	}
	if scheme != "tls" && scheme != "ssl" && scheme != "mqtts" && scheme != "tcp" && scheme != "mqtt" {
		return "", fmt.Errorf("broker: %q: use tls://host:8883 (or tcp://host:1883 on a closed network)", s)
	}
	return s, nil
}

// Raspberry Pi 40-pin header: physical pin → BCM GPIO. Power and ground
// pins are not in it.
var headerToBCM = map[int]int{
	3: 2, 5: 3, 7: 4, 8: 14, 10: 15, 11: 17, 12: 18, 13: 27, 15: 22, 16: 23,
	18: 24, 19: 10, 21: 9, 22: 25, 23: 11, 24: 8, 26: 7, 27: 0, 28: 1, 29: 5,
	31: 6, 32: 12, 33: 13, 35: 19, 36: 16, 37: 26, 38: 20, 40: 21,
}

var pinRE = regexp.MustCompile(`^(?i:(GPIO|BCM|P1_))?([0-9]+)$`)

// checkPin accepts a Raspberry Pi GPIO as periph names it, GPIO2..GPIO27
// (BCM numbers) or P1_3..P1_40 (header pins), and returns its canonical
// name. A bare number is refused: BCM and header numbers differ.
func checkPin(s string) (string, error) {
	m := pinRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return "", fmt.Errorf("pin %q: name it GPIO17 (BCM number) or P1_11 (header pin)", s)
	}
	n, _ := strconv.Atoi(m[2])
	switch strings.ToUpper(m[1]) {
	case "":
		return "", fmt.Errorf("pin %q: a bare number is ambiguous; say GPIO%d for BCM %d, or P1_%d for header pin %d", s, n, n, n, n)
	case "P1_":
		bcm, ok := headerToBCM[n]
		if !ok {
			return "", fmt.Errorf("pin %q: header pin %d is not a GPIO (power or ground, or not 1..40)", s, n)
		}
		if bcm < 2 {
			return "", fmt.Errorf("pin %q: header pin %d (GPIO%d) is reserved for the HAT ID EEPROM", s, n, bcm)
		}
		return fmt.Sprintf("P1_%d", n), nil
	}
	if n < 2 || n > 27 {
		return "", fmt.Errorf("pin %q: the header's GPIOs are GPIO2..GPIO27 (GPIO0 and 1 are the HAT ID EEPROM)", s)
	}
	return fmt.Sprintf("GPIO%d", n), nil
}

// bcmOf names the line a checked pin drives, so two names of one line
// are caught.
func bcmOf(pin string) string {
	if n, ok := strings.CutPrefix(pin, "P1_"); ok {
		h, _ := strconv.Atoi(n)
		return fmt.Sprintf("GPIO%d", headerToBCM[h])
	}
	return pin
}

// deviceList lists a by-id directory's entries as full paths.
func deviceList(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		out = append(out, filepath.Join(dir, e.Name()))
	}
	return out
}

func defaultScanner() string {
	if d := deviceList(serialByIDDir); len(d) > 0 {
		return d[0]
	}
	return ""
}

func defaultCamera() string {
	for _, d := range deviceList(cameraByIDDir) {
		if strings.HasSuffix(d, "-video-index0") {
			return d
		}
	}
	if _, err := os.Stat("/dev/video0"); err == nil {
		return "/dev/video0"
	}
	return ""
}

// q quotes a string as a YAML scalar.
func q(s string) string {
	b, _ := yaml.Marshal(s)
	return strings.TrimSuffix(string(b), "\n")
}

var configTemplate = template.Must(template.New("config").Funcs(template.FuncMap{"q": q}).Parse(
	`# wicketd.yaml for gate {{.GateID}}.
#
# Check it with: wicketd check-config {{.Path}}
# Every option, with its default, is in
# /usr/share/doc/wicket/examples/wicketd.yaml (configs/wicketd.yaml).
# Options not set here take those defaults. Durations: 500ms, 2m, 48h.

gate:
  # This gate's fleet id. Part of MQTT topics: no spaces, no / + #.
  id: {{q .GateID}}
  # The venue (场所) id the gate belongs to. Anti-passback is per venue.
  venue: {{q .Venue}}

trust:
  # Pinned root public key (PEM), from the issuing authority. Everything
  # else the gate trusts must be signed by it.
  root_keys:
    - {{q (print .Dir "/root.pub")}}
  # The signed key set, installed at start if newer than the store's.
  key_set: {{q (print .Dir "/keyset.cose")}}
  batches: []

# The venue's rules: the defaults (green codes pass; no test; every
# voucher kind and holder class accepted). See docs/reason-codes.md and
# the example config to change them.
# policy:

store:
  path: /var/lib/wicket/wicket.db

scanner:
{{- if eq .Scanner "camera"}}
  # A camera behind the glass (V4L2).
  type: camera
  camera:
    # Use the stable by-id path.
    device: {{q .Camera}}
    format: yuyv
    width: 640
    height: 480
    # Decode only where codes are presented [x0, y0, x1, y1]; empty: all.
    roi: []
{{- else if eq .Scanner "stdin"}}
  # Codes one per line on standard input (a keyboard-mode scanner on a
  # console, or tests).
  type: stdin
{{- else}}
  # A QR scanner in serial (or USB-CDC) mode.
  type: serial
  # The stable by-id path, not /dev/ttyUSB0, which changes on replug.
  device: {{q .Scanner}}
  # The scanner's configured speed and suffix (cr, lf or crlf).
  baud: {{.Baud}}
  terminator: cr
  # Set to true if the scanner puts an AIM identifier (]Q1) in front.
  strip_aim: false
{{- end}}
  # The same code again within this window gives no new decision.
  hold_off: 3s

turnstile:
  backend: gpio
  # The relay that unlocks the turnstile (periph names: GPIO17, P1_11).
  relay:
    name: {{q .RelayPin}}
    # Most relay boards switch on a low level.
    active_low: {{.RelayLow}}
  # pulse: relay on for pulse_width. level: on until the passage sensor
  # fires or open_timeout passes (needs passage.name).
  mode: pulse
  pulse_width: 500ms
  open_timeout: 8s
  # Optional passage sensor (confirms the person went through).
  passage:
    name: {{q .Passage}}
    active_low: false
  # Optional fire/emergency input: while active the turnstile is free.
  emergency:
    name: {{q .Emergency}}
    active_low: false
  # Unlock instead of lock on start, shutdown and GPIO errors. Only where
  # fire regulations require it.
  fail_safe: false

feedback:
  green_led:
    name: {{q .GreenLED}}
  red_led:
    name: {{q .RedLED}}
  buzzer:
    name: {{q .Buzzer}}

# Fleet sync over MQTT (docs/mqtt.md). The gate decides without it.
sync:
{{- if .Broker}}
  enabled: true
  fleet: {{q .Fleet}}
  broker: {{q .Broker}}
{{- if .TLS}}
  # The CA that signed the broker's certificate, and this gate's client
  # certificate and key (root:wicket, mode 0640).
  ca_file: {{q (print .Dir "/broker-ca.pem")}}
  cert_file: {{q (print .Dir "/gate.crt")}}
  key_file: {{q (print .Dir "/gate.key")}}
{{- end}}
  # This gate's own signing key, made by wicketd init (mode 0600, never
  # copied off the gate); the authority enrols its public key.
  identity_key: {{q (print .Dir "/identity.key")}}
{{- else}}
  enabled: false
{{- end}}

# The gate's screen (the passenger page), on loopback.
display:
  enabled: true
  addr: 127.0.0.1:8080

# /metrics and /healthz for Prometheus and the watchdog, on their own
# address (loopback: scrape through a local agent, or name an interface
# address and list the scrape host name under http.hosts).
http:
  metrics:
    addr: 127.0.0.1:9101

log:
  # json for journald.
  level: info
  format: json
`))

// render writes the config text.
func (a *initAnswers) render() ([]byte, error) {
	tls := false
	if a.Broker != "" {
		scheme, _ := mqttconn.CheckBroker(a.Broker)
		tls = mqttconn.TLSSchemes[scheme]
	}
	var b bytes.Buffer
	err := configTemplate.Execute(&b, struct {
		*initAnswers
		TLS bool
	}{a, tls})
	return b.Bytes(), err
}

// writeConfig writes the file with mode 0640 through a temporary file in
// the same directory. A replaced file's owner and group are kept (the
// package makes it root:wicket); a new file takes the directory's group.
func writeConfig(path string, data []byte, force bool) error {
	dir := filepath.Dir(path)
	uid, gid := -1, -1
	if st, err := os.Stat(path); err == nil {
		if !force {
			return fmt.Errorf("%s exists; use --force to replace it", path)
		}
		if s, ok := st.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(s.Uid), int(s.Gid)
		}
	} else if st, err := os.Stat(dir); err == nil {
		if s, ok := st.Sys().(*syscall.Stat_t); ok {
			gid = int(s.Gid)
		}
	} else {
		return fmt.Errorf("-out: %v", err)
	}
	tmp, err := os.CreateTemp(dir, ".wicketd.yaml.*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o640); err != nil {
		tmp.Close()
		return err
	}
	if uid != -1 || gid != -1 {
		// Only root may give a file away; a technician's own copy keeps
		// their owner.
		if err := tmp.Chown(uid, gid); err != nil && !errors.Is(err, fs.ErrPermission) {
			tmp.Close()
			return err
		}
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if !force {
		// Link fails if the file appeared meanwhile: never overwrite
		// without --force.
		if err := os.Link(tmp.Name(), path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s exists; use --force to replace it", path)
			}
			return err
		}
		return nil
	}
	return os.Rename(tmp.Name(), path)
}

// nextSteps tells the technician what remains before the gate runs.
func (a *initAnswers) nextSteps(w io.Writer, path string) {
	fmt.Fprintf(w, "\nWrote %s (mode 0640) for gate %s at venue %s.\n\nNext:\n", path, a.GateID, a.Venue)
	n := 0
	step := func(format string, args ...any) {
		n++
		fmt.Fprintf(w, "  %d. "+format+"\n", append([]any{n}, args...)...)
	}
	step("Keys: copy the root public key and the signed key set from the USB stick:\n"+
		"       install -o root -g wicket -m 0640 /media/usb/root.pub /media/usb/keyset.cose %s/", a.Dir)
	if a.Broker != "" {
		scheme, _ := mqttconn.CheckBroker(a.Broker)
		if mqttconn.TLSSchemes[scheme] {
			step("Fleet: the broker's CA and this gate's client certificate and key:\n"+
				"       install -o root -g wicket -m 0640 broker-ca.pem gate.crt gate.key %s/", a.Dir)
		}
	}
	step("Check the config and the keys:  wicketd check-config %s", path)
	step("Test the relay (the turnstile unlocks once):  wicketd test-relay -config %s", path)
	if a.Scanner != "stdin" {
		step("Test the scanner (scan a code, Ctrl-C to stop):  wicketd test-scanner -config %s", path)
	}
	step("Start the gate:  systemctl enable --now wicketd; then  journalctl -u wicketd -f")
	fmt.Fprintln(w, "\nThe clock must be right before the gate decides: timedatectl (RTC or NTP).")
}
