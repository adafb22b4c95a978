package config

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"wicket/device"
	"wicket/device/camera"
	"wicket/device/gate"
)

// yamlKeys lists the yaml keys of a struct type, recursively, as dotted paths.
func yamlKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		parts := strings.Split(f.Tag.Get("yaml"), ",")
		tag := parts[0]
		if len(parts) > 1 && parts[1] == "inline" {
			keys = append(keys, yamlKeys(f.Type, prefix)...)
			continue
		}
		if tag == "" || tag == "-" {
			continue
		}
		key := prefix + tag
		keys = append(keys, key)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Time{}) {
			keys = append(keys, yamlKeys(f.Type, key+".")...)
		}
	}
	return keys
}

// TestAnnotatedConfig: configs/wicketd.yaml parses and shows every option.
func TestAnnotatedConfig(t *testing.T) {
	_, data := parseShipped(t, "wicketd.yaml")
	text := string(data)
	for _, k := range yamlKeys(reflect.TypeOf(Config{}), "") {
		leaf := k[strings.LastIndex(k, ".")+1:]
		if !strings.Contains(text, leaf+":") {
			t.Errorf("configs/wicketd.yaml does not show option %s", k)
		}
	}
}

// parseShipped reads and parses a file of configs/, failing the test if
// it does not parse.
func parseShipped(t *testing.T, name string) (*Config, []byte) {
	t.Helper()
	data, err := os.ReadFile("../../../configs/" + name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, "/etc/wicket")
	if err != nil {
		t.Fatalf("configs/%s: %v", name, err)
	}
	return c, data
}

// TestAnnotatedDefaults: the values configs/wicketd.yaml shows for the
// settings a device, sync or store package owns are those packages'
// defaults, so the file says what a gate runs when the key is left out.
func TestAnnotatedDefaults(t *testing.T) {
	c, _ := parseShipped(t, "wicketd.yaml")
	d := Default()
	for _, f := range []struct {
		key       string
		file, def any
	}{
		{"store.lock_timeout", c.Store.LockTimeout, d.Store.LockTimeout},
		{"store.max_events", c.Store.MaxEvents, d.Store.MaxEvents},
		{"store.max_outbox", c.Store.MaxOutbox, d.Store.MaxOutbox},
		{"scanner.baud", c.Scanner.Baud, d.Scanner.Baud},
		{"scanner.terminator", c.Scanner.Terminator, d.Scanner.Terminator},
		{"scanner.max_frame", c.Scanner.MaxFrame, d.Scanner.MaxFrame},
		{"scanner.inter_byte_timeout", c.Scanner.InterByteTimeout, d.Scanner.InterByteTimeout},
		{"scanner.hold_off", c.Scanner.HoldOff, d.Scanner.HoldOff},
		{"scanner.camera.format", c.Scanner.Camera.Format, d.Scanner.Camera.Format},
		{"scanner.camera.width", c.Scanner.Camera.Width, d.Scanner.Camera.Width},
		{"scanner.camera.height", c.Scanner.Camera.Height, d.Scanner.Camera.Height},
		{"scanner.camera.fps", c.Scanner.Camera.FPS, d.Scanner.Camera.FPS},
		{"turnstile.mode", c.Turnstile.Mode, d.Turnstile.Mode},
		{"turnstile.pulse_width", c.Turnstile.PulseWidth, d.Turnstile.PulseWidth},
		{"turnstile.open_timeout", c.Turnstile.OpenTimeout, d.Turnstile.OpenTimeout},
		{"thermometer.address", c.Thermo.Address, d.Thermo.Address},
		{"thermometer.baud", c.Thermo.Baud, d.Thermo.Baud},
		{"sync.keepalive", c.Sync.KeepAlive, d.Sync.KeepAlive},
		{"sync.batch_size", c.Sync.BatchSize, d.Sync.BatchSize},
		{"sync.max_inflight", c.Sync.MaxInflight, d.Sync.MaxInflight},
		{"sync.ack_timeout", c.Sync.AckTimeout, d.Sync.AckTimeout},
		{"sync.status_every", c.Sync.StatusEvery, d.Sync.StatusEvery},
		{"sync.status_spread", c.Sync.StatusSpread, d.Sync.StatusSpread},
		{"sync.trust_qos", c.Sync.TrustQoS, d.Sync.TrustQoS},
		{"sync.reconnect_min", c.Sync.ReconnectMin, d.Sync.ReconnectMin},
		{"sync.reconnect_max", c.Sync.ReconnectMax, d.Sync.ReconnectMax},
		{"display.idle_after", c.Display.IdleAfter, d.Display.IdleAfter},
		{"display.max_clients", c.Display.MaxClients, d.Display.MaxClients},
		{"display.max_clients_per_source", c.Display.MaxClientsPerSource, d.Display.MaxClientsPerSource},
	} {
		if f.file != f.def {
			t.Errorf("configs/wicketd.yaml shows %s: %v; the default is %v", f.key, f.file, f.def)
		}
	}
}

// TestDemoConfig: configs/demo.yaml, which the README's demo runs, parses.
func TestDemoConfig(t *testing.T) {
	c, _ := parseShipped(t, "demo.yaml")
	if c.Scanner.Terminator != device.TerminatorLF {
		t.Errorf("configs/demo.yaml: terminator = %v; want lf", c.Scanner.Terminator)
	}
}

func TestValidate(t *testing.T) {
	base := "gate: {id: G1, venue: V1}\ntrust: {root_keys: [r.pub]}\nscanner: {type: stdin}\nturnstile: {backend: sim}\n"
	for _, tc := range []struct {
		name, yaml, wantErr string
	}{
		{"minimal", base, ""},
		{"unknown key names its line", base + "scanner2: {}\n", "line 5"},
		{"no gate id", "trust: {root_keys: [r.pub]}\n", "gate.id"},
		{"gate id with slash", strings.Replace(base, "id: G1", "id: a/b", 1), "gate.id"},
		{"serial without device", strings.Replace(base, "type: stdin", "type: serial", 1), "scanner.device"},
		{"bad terminator", strings.Replace(base, "type: stdin", "type: stdin, terminator: tab", 1), "line 3: scanner.terminator: terminator \"tab\": use cr, lf or crlf"},
		{"bad relay mode", strings.Replace(base, "backend: sim", "backend: sim, mode: toggle", 1), "line 4: turnstile.mode: relay mode \"toggle\": use pulse or level"},
		{"relay mode as a section", strings.Replace(base, "backend: sim", "backend: sim, mode: {a: b}", 1), "line 4: turnstile.mode: a single value goes here"},
		{"gpio without relay", strings.Replace(base, "backend: sim", "backend: gpio", 1), "turnstile.relay.name"},
		{"level without sensor", strings.Replace(base, "backend: sim", "backend: gpio, mode: level, relay: {name: GPIO17}", 1), "turnstile.mode"},
		{"bad duration", strings.Replace(base, "type: stdin", "type: stdin, hold_off: soon", 1), "line 3"},
		{"policy error", base + "policy: {classes: {child: maybe}}\n", "policy.classes.child"},
		{"camera ok", strings.Replace(base, "type: stdin", "type: camera, camera: {device: /dev/video0}", 1), ""},
		{"camera without device", strings.Replace(base, "type: stdin", "type: camera", 1), "scanner.camera.device"},
		{"camera format", strings.Replace(base, "type: stdin", "type: camera, camera: {device: /dev/video0, format: h264}", 1), "scanner.camera.format: format \"h264\": use yuyv or mjpeg"},
		{"camera roi outside", strings.Replace(base, "type: stdin", "type: camera, camera: {device: /dev/video0, roi: [0, 0, 700, 100]}", 1), "scanner.camera.roi"},
		{"pattern name", base + "feedback: {patterns: {party: {green: 'on 1s'}}}\n", "feedback.patterns.party"},
		{"pattern syntax", base + "feedback: {patterns: {allow: {green: 'on'}}}\n", "feedback.patterns.allow"},
		{"dcc without the pseudonym key", base + "policy: {profiles: {dcc: {accept: [test]}}}\n", "trust.dcc_pseudonym_key"},
		{"dcc with the pseudonym key", strings.Replace(base, "[r.pub]}", "[r.pub], dcc_pseudonym_key: dcc.key}", 1) + "policy: {profiles: {dcc: {accept: [test]}}}\n", ""},
		{"pattern ok", base + "feedback: {patterns: {allow: {green: 'on 1s', buzzer: 'on 100ms off 50ms on 100ms'}}}\n", ""},
		{"admin beyond loopback without credential", base + "http: {admin: {addr: '0.0.0.0:8081'}}\n", "set http.admin.token_file"},
		{"admin on a LAN address without credential", base + "http: {admin: {addr: '192.168.1.20:8081'}}\n", "listen on 127.0.0.1:8081"},
		{"admin beyond loopback with token", base + "http: {admin: {addr: '0.0.0.0:8081', token_file: admin.token}}\n", ""},
		{"admin on loopback without credential stays off", base + "http: {admin: {addr: '127.0.0.1:8081'}}\n", ""},
		{"kiosk without credential", base + "display: {enabled: true, kiosk: true}\n", "display.kiosk"},
		{"kiosk with token", base + "display: {enabled: true, kiosk: true}\nhttp: {admin: {token_file: admin.token}}\n", ""},
		{"status spread negative", base + "sync: {enabled: true, fleet: f1, broker: 'tcp://127.0.0.1:1883', status_spread: -1s}\n", "sync.status_spread"},
		{"trust qos 2", base + "sync: {enabled: true, fleet: f1, broker: 'tcp://127.0.0.1:1883', trust_qos: 2}\n", "sync.trust_qos"},
		{"trust qos 0", base + "sync: {enabled: true, fleet: f1, broker: 'tcp://127.0.0.1:1883', trust_qos: 0}\n", ""},
		{"status spread off", base + "sync: {enabled: true, fleet: f1, broker: 'tcp://127.0.0.1:1883', status_spread: 0s}\n", ""},
		{"status spread past status every", base + "sync: {enabled: true, fleet: f1, broker: 'tcp://127.0.0.1:1883', status_spread: 2m, status_every: 1m}\n", "sync.status_spread"},
		{"default status spread past a short status every", base + "sync: {enabled: true, fleet: f1, broker: 'tcp://127.0.0.1:1883', status_every: 1s}\n", ""},
		{"trust silence negative", base + "sync: {enabled: true, fleet: f1, broker: 'tcp://127.0.0.1:1883', trust_silence: -5s}\n", "sync.trust_silence"},
		{"snapshot jitter negative", base + "sync: {enabled: true, fleet: f1, broker: 'tcp://127.0.0.1:1883', snapshot_jitter: -1s}\n", "sync.snapshot_jitter"},
		{"status spread equal to status every", base + "sync: {enabled: true, fleet: f1, broker: 'tcp://127.0.0.1:1883', status_spread: 20s, status_every: 20s}\n", ""},
		{"cert without key", base + "http: {admin: {token_file: t, cert_file: c.pem}}\n", "http.admin.cert_file/key_file"},
		{"client CA without TLS", base + "http: {admin: {client_ca_file: ca.pem}}\n", "http.admin.client_ca_file"},
		{"metrics on the page address", base + "display: {enabled: true}\nhttp: {metrics: {addr: '127.0.0.1:8080'}}\n", "http.metrics.addr"},
		{"admin on the metrics address", base + "http: {metrics: {addr: '127.0.0.1:9101'}, admin: {addr: '127.0.0.1:9101', token_file: t}}\n", "http.admin.addr"},
		{"host with port", base + "http: {hosts: ['gate-07:8080']}\n", "http.hosts[0]"},
		{"pulse longer than the passage wait", strings.Replace(base, "backend: sim", "backend: sim, pulse_width: 3s, open_timeout: 2s", 1), "turnstile.pulse_width: 3s is longer than open_timeout"},
		{"temperature without a thermometer", base + "policy: {temperature: {required: true}}\n", "policy.temperature.required: the gate has no thermometer"},
		{"admin on the page address", base + "display: {enabled: true}\nhttp: {admin: {addr: '127.0.0.1:8080', token_file: t}}\n", "http.admin.addr: 127.0.0.1:8080 is also display.addr"},
		{"admin on the address of a page not served", base + "http: {admin: {addr: '127.0.0.1:8080', token_file: t}}\n", ""},
		{"per source over total", base + "display: {enabled: true, max_clients: 2, max_clients_per_source: 3}\n", "display.max_clients_per_source"},
	} {
		_, err := Parse([]byte(tc.yaml), ".")
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("Parse(%s) = %v; want error containing %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestParseSteps(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		in   string
		want []gate.Step
	}{
		{"", nil},
		{"on 1s", []gate.Step{{On: time.Second}}},
		{"on 100ms off 50ms on 100ms", []gate.Step{{On: 100 * ms, Off: 50 * ms}, {On: 100 * ms}}},
		{"off 250ms on 250ms", []gate.Step{{Off: 250 * ms}, {On: 250 * ms}}},
	} {
		got, err := ParseSteps(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseSteps(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"on", "on fast", "blink 1s", "on -1s"} {
		if _, err := ParseSteps(bad); err == nil {
			t.Errorf("ParseSteps(%q) = nil error", bad)
		}
	}
}

// TestAdminCredentials: the token file must be the gate user's alone and
// long enough; a good one is read without its newline.
func TestAdminCredentials(t *testing.T) {
	dir := t.TempDir()
	token := "0123456789abcdef0123456789abcdef"
	base := "gate: {id: G1, venue: V1}\ntrust: {root_keys: [r.pub]}\nscanner: {type: stdin}\nturnstile: {backend: sim}\nhttp: {admin: {token_file: admin.token}}\n"
	c, err := Parse([]byte(base), dir)
	if err != nil {
		t.Fatal(err)
	}
	path := dir + "/admin.token"
	for _, tc := range []struct {
		content string
		mode    os.FileMode
		wantErr string
	}{
		{token + "\n", 0o644, "chmod 0600"},
		{token + "\n", 0o640, "chmod 0600"},
		{"short\n", 0o600, "fewer than 32"},
		{token + "\n", 0o600, ""},
	} {
		os.Remove(path)
		if err := os.WriteFile(path, []byte(tc.content), tc.mode); err != nil {
			t.Fatal(err)
		}
		got, _, err := c.AdminCredentials()
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("AdminCredentials(mode %04o, %q) = %v; want error containing %q", tc.mode, tc.content, err, tc.wantErr)
		}
		if err == nil && string(got) != token {
			t.Errorf("AdminCredentials() token = %q; want %q", got, token)
		}
	}
	os.Remove(path)
	if _, _, err := c.AdminCredentials(); err == nil || !strings.Contains(err.Error(), "http.admin.token_file") {
		t.Errorf("AdminCredentials() with the file missing = %v; want an error naming http.admin.token_file", err)
	}
}

// TestValidateEveryProblem: Validate reports every bad field, not the
// first, across sections and within one, each at its own line, in file
// order.
func TestValidateEveryProblem(t *testing.T) {
	yaml := `gate:
  id: a/b
  venue: V1
trust: {root_keys: [r.pub]}
scanner:
  type: serial
  baud: 9601
  max_frame: 10
turnstile:
  backend: gpio
  pulse_width: 20s
thermometer: {type: laser}
log: {level: loud}
`
	_, err := Parse([]byte(yaml), ".")
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("Parse = %v; want Problems", err)
	}
	want := []string{
		"line 2: gate.id:",
		"line 5: scanner.device: missing for a serial scanner", // not written: its section's line
		"line 7: scanner.baud: 9601 is not a standard rate",
		"line 8: scanner.max_frame: 10 is out of range",
		"line 9: turnstile.relay.name: missing",
		"line 11: turnstile.pulse_width: 20s is out of range",
		"line 12: thermometer.type: \"laser\" is not allowed",
		"line 13: log.level: \"loud\" is not allowed",
	}
	if len(probs) != len(want) {
		t.Errorf("Parse found %d problems; want %d:\n%v", len(probs), len(want), err)
	}
	for i, w := range want {
		if i < len(probs) && !strings.HasPrefix(probs[i].String(), w) {
			t.Errorf("problem %d = %q; want it to start %q", i, probs[i], w)
		}
	}
}

// TestCommitBeforeOpen: off unless asked; store.commit_before_open: true
// turns it on.
func TestCommitBeforeOpen(t *testing.T) {
	base := "gate: {id: G1, venue: V1}\ntrust: {root_keys: [root.pub], key_set: keyset.cose}\nscanner: {type: stdin}\nturnstile: {backend: sim}\n"
	for _, tc := range []struct {
		store string
		want  bool
	}{
		{"store: {path: wicket.db}\n", false},
		{"store: {path: wicket.db, commit_before_open: true}\n", true},
	} {
		c, err := Parse([]byte(base+tc.store), ".")
		if err != nil {
			t.Fatalf("%s: %v", tc.store, err)
		}
		if c.Store.CommitBeforeOpen != tc.want {
			t.Errorf("%s: CommitBeforeOpen = %v; want %v", tc.store, c.Store.CommitBeforeOpen, tc.want)
		}
	}
}

// TestTypedFields: the terminator, the camera format and the relay mode
// decode straight into the device types, in any case the file writes
// them, and render back as written.
func TestTypedFields(t *testing.T) {
	base := "gate: {id: G1, venue: V1}\ntrust: {root_keys: [r.pub]}\nturnstile: {backend: sim, mode: Level, passage: {name: GPIO27}}\n"
	c, err := Parse([]byte(base+"scanner: {type: camera, terminator: crlf, camera: {device: /dev/video0, format: mjpeg}}\n"), ".")
	if err != nil {
		t.Fatal(err)
	}
	if c.Scanner.Terminator != device.TerminatorCRLF || c.Scanner.Camera.Format != camera.FormatMJPEG || c.Turnstile.Mode != gate.RelayLevel {
		t.Errorf("Parse = terminator %v, format %v, mode %v; want crlf, MJPEG, level", c.Scanner.Terminator, c.Scanner.Camera.Format, c.Turnstile.Mode)
	}
	for _, want := range []string{"terminator: crlf", "format: mjpeg", "mode: level"} {
		if !strings.Contains(c.String(), want) {
			t.Errorf("String() does not hold %q:\n%s", want, c)
		}
	}
	d := Default()
	if d.Scanner.Terminator != device.DefaultTerminator || d.Scanner.Camera.Format != camera.DefaultFormat || d.Turnstile.Mode != gate.RelayPulse {
		t.Errorf("Default() = terminator %v, format %v, mode %v; want the device defaults", d.Scanner.Terminator, d.Scanner.Camera.Format, d.Turnstile.Mode)
	}
}

// TestClientIDDerived: with sync on and no client_id, the client id is
// wicket-<fleet>-<gate id>; one written in the file is kept; with sync
// off none is made up.
func TestClientIDDerived(t *testing.T) {
	base := "gate: {id: G1, venue: V1}\ntrust: {root_keys: [r.pub]}\nscanner: {type: stdin}\nturnstile: {backend: sim}\n"
	for _, tc := range []struct{ sync, want string }{
		{"sync: {enabled: true, fleet: f1, broker: 'tcp://127.0.0.1:1883'}\n", "wicket-f1-G1"},
		{"sync: {enabled: true, fleet: f1, broker: 'tcp://127.0.0.1:1883', client_id: own}\n", "own"},
		{"sync: {enabled: false, fleet: f1}\n", ""},
	} {
		c, err := Parse([]byte(base+tc.sync), ".")
		if err != nil {
			t.Fatalf("Parse(%q) = %v", tc.sync, err)
		}
		if c.Sync.ClientID != tc.want {
			t.Errorf("Parse(%q): client id = %q; want %q", tc.sync, c.Sync.ClientID, tc.want)
		}
	}
}
