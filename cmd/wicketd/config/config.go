// Package config reads wicketd.yaml: one file, decoded strictly (an unknown
// key is an error naming its line) straight into the device, gate and sync
// types that parse themselves (a bad value is refused with the type's own
// message, never replaced). Every default is set in Default, from the
// owning package's constant where the setting is shared, and the ones
// that follow from other fields in derive; every check is in Validate,
// one method a section, which reports every bad field at once, each with
// its line and the fix.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"wicket/cmd/wicketd/display"
	"wicket/device"
	"wicket/device/camera"
	"wicket/device/gate"
	"wicket/device/thermo"
	"wicket/sync/mqttconn"
	"wicket/sync/mqttsync"
	"wicket/sync/store"
	"wicket/verifier"
)

// Config is the whole of wicketd.yaml. configs/wicketd.yaml documents
// every field for technicians.
type Config struct {
	Gate      Gate            `yaml:"gate"`
	Trust     Trust           `yaml:"trust"`
	Policy    verifier.Policy `yaml:"policy"`
	Store     Store           `yaml:"store"`
	Scanner   Scanner         `yaml:"scanner"`
	Turnstile Turnstile       `yaml:"turnstile"`
	Feedback  Feedback        `yaml:"feedback"`
	Thermo    Thermometer     `yaml:"thermometer"`
	Sync      Sync            `yaml:"sync"`
	Display   Display         `yaml:"display"`
	HTTP      HTTP            `yaml:"http"`
	Log       Log             `yaml:"log"`

	// dir is the directory of the file, for relative paths.
	dir string
	// lines maps dotted keys to their line in the file, for messages.
	lines map[string]int
}

// Gate identifies the gate.
type Gate struct {
	// ID is this gate's id, unique in the fleet (e.g. "L2-S14-G03").
	ID string `yaml:"id"`
	// Venue is the venue (场所) id the gate belongs to.
	Venue string `yaml:"venue"`
}

// Trust says where the signed trust data comes from.
type Trust struct {
	// RootKeys are PEM public key files of the pinned root keys.
	RootKeys []string `yaml:"root_keys"`
	// KeySet is a signed key set file installed at start if newer than the
	// one in the store (provisioning from a USB stick).
	KeySet string `yaml:"key_set"`
	// Batches are signed revocation/override batch files, applied at start
	// in order if they follow what the store holds. An entry may be a glob
	// pattern (the parts of a multi-part snapshot: "snap-42/*.cose"),
	// expanded in name order; a pattern that matches nothing is an error.
	Batches []string `yaml:"batches"`
	// RecordKey is a file of at least 32 random bytes: the key of the hashes
	// that stand for voucher ids and subjects in records. Empty: the store
	// makes and keeps its own key.
	RecordKey string `yaml:"record_key"`
	// DCCPseudonymKey is a file of at least 32 random bytes from the
	// authority (wicketctl dcc pseudonym -new), the same on every gate:
	// the key of EU DCC holders' subject pseudonyms. Needed when
	// policy.profiles.dcc is set; without it every DCC is denied.
	DCCPseudonymKey string `yaml:"dcc_pseudonym_key"`
}

// Store is the local state database.
type Store struct {
	// Path of the bbolt file.
	Path string `yaml:"path"`
	// LockTimeout: how long to wait for another process holding the file.
	LockTimeout time.Duration `yaml:"lock_timeout"`
	// MaxEvents bounds the access log; the oldest events go first.
	MaxEvents int `yaml:"max_events"`
	// MaxOutbox bounds the records waiting for sync; past it, new records
	// are counted as dropped and an alert is raised.
	MaxOutbox int `yaml:"max_outbox"`
	// CommitBeforeOpen makes an allowed scan's record durable before the
	// relay opens, as a denial's is. Off (the default), the relay opens
	// while the record is being committed: no flush latency before the
	// turnstile moves, and a power cut in that window (tens of ms) can lose
	// the record of the passage it opened (docs/design.md, "Relay before
	// fsync").
	CommitBeforeOpen bool `yaml:"commit_before_open"`
}

// Scanner is the source of codes.
type Scanner struct {
	// Type is serial, camera, stdin or file.
	Type string `yaml:"type"`
	// Device is the serial device; use /dev/serial/by-id/... so the path
	// survives replugging and reboots.
	Device string `yaml:"device"`
	// Baud is the serial speed the scanner is set to.
	Baud int `yaml:"baud"`
	// Terminator ends a frame: cr, lf or crlf (the scanner's "suffix").
	Terminator device.Terminator `yaml:"terminator"`
	// MaxFrame bounds a frame in bytes; a longer one is dropped.
	MaxFrame int `yaml:"max_frame"`
	// InterByteTimeout: a partial frame idle this long is flushed or dropped.
	InterByteTimeout time.Duration `yaml:"inter_byte_timeout"`
	// FlushPartial: emit a timed-out partial frame instead of dropping it.
	FlushPartial bool `yaml:"flush_partial"`
	// StripAIM removes an AIM symbology identifier (]Q1) the scanner adds.
	StripAIM bool `yaml:"strip_aim"`
	// Path is the file for type file.
	Path string `yaml:"path"`
	// HoldOff: the same code seen again within this window (from the last
	// time it was seen) is ignored, so a held code gives one decision.
	HoldOff time.Duration `yaml:"hold_off"`
	// Camera settings, for type camera.
	Camera Camera `yaml:"camera"`
}

// Thermometer is the gate's body-temperature sensor, used when
// policy.temperature.required is set.
type Thermometer struct {
	// Type is none, mlx90614 (infrared, I²C), serial (prints readings as
	// text lines) or sim (the demo's: each scan takes the next of Sim).
	Type string `yaml:"type"`
	// Bus is the I²C bus for mlx90614 ("" for the first, or "1", or
	// "/dev/i2c-1"); Address its SMBus address (0x5a from the factory).
	Bus     string `yaml:"bus"`
	Address uint16 `yaml:"address"`
	// Device and Baud are the serial thermometer's port; use
	// /dev/serial/by-id/... as for the scanner.
	Device string `yaml:"device"`
	Baud   int    `yaml:"baud"`
	// Emissivity corrects an infrared sensor calibrated at emissivity 1
	// for skin (0.98); 0 leaves the sensor's own setting.
	Emissivity float64 `yaml:"emissivity"`
	// Offset is added to every reading (°C): the difference between the
	// skin the sensor sees and body temperature, found by calibration.
	Offset float64 `yaml:"offset"`
	// Poll is how often an I²C sensor is read.
	Poll time.Duration `yaml:"poll"`
	// StaleAfter: an I²C sensor without a good read this long is a fault;
	// 0 turns the check off (serial thermometers print only when they
	// measure someone).
	StaleAfter time.Duration `yaml:"stale_after"`
	// Sim lists the simulated readings, in turn (°C).
	Sim []float64 `yaml:"sim"`
}

// Camera is a V4L2 camera behind the gate's glass.
type Camera struct {
	// Device is the camera; use /dev/v4l/by-id/... so the path survives
	// replugging. For tests and demos it may be a directory of images or
	// an MJPEG file (.mjpeg), replayed at FPS.
	Device string `yaml:"device"`
	// Format is yuyv or mjpeg.
	Format camera.Format `yaml:"format"`
	// Width and Height of the frames (the nearest size the camera has).
	Width  int `yaml:"width"`
	Height int `yaml:"height"`
	// FPS caps the frames read; frames that arrive while one is being
	// decoded are dropped (the newest wins).
	FPS float64 `yaml:"fps"`
	// MaxDecodeRate caps decodes per second, so the camera never starves
	// the decision loop on a small CPU.
	MaxDecodeRate float64 `yaml:"max_decode_rate"`
	// ROI limits decoding to a region of the frame: [x0, y0, x1, y1] in
	// pixels; empty means the whole frame.
	ROI []int `yaml:"roi"`
	// Downscale decodes at 1/N of the resolution (1: full).
	Downscale int `yaml:"downscale"`
}

// Turnstile is the relay and its inputs.
type Turnstile struct {
	// Backend is gpio (real pins) or sim (prints what it would do).
	Backend string `yaml:"backend"`
	// Relay is the output that unlocks the turnstile.
	Relay Pin `yaml:"relay"`
	// Mode is pulse (relay on for PulseWidth) or level (on until passage
	// or OpenTimeout).
	Mode gate.RelayMode `yaml:"mode"`
	// PulseWidth is the relay pulse in pulse mode.
	PulseWidth time.Duration `yaml:"pulse_width"`
	// OpenTimeout: how long to wait for the passage sensor.
	OpenTimeout time.Duration `yaml:"open_timeout"`
	// Passage is the optional passage sensor input.
	Passage Pin `yaml:"passage"`
	// Emergency is the optional fire/emergency input: while active, free
	// passage, latched until it clears and is acknowledged.
	Emergency Pin `yaml:"emergency"`
	// Tamper is the optional enclosure (door or lid) switch, active while
	// the enclosure is open: opening it raises the tamper alert, closing
	// it clears it. It changes no decision. Wire a normally-closed switch
	// to ground with a pull-up and active_low: false, so a cut wire
	// alerts too.
	Tamper Pin `yaml:"tamper"`
	// FailSafe: unlock (instead of lock) on start, shutdown and GPIO
	// errors. Only where fire regulations require it.
	FailSafe bool `yaml:"fail_safe"`
}

// Pin names a GPIO line.
type Pin struct {
	// Name as periph knows it: "GPIO17", or a header pin such as "P1_11".
	// Empty: not connected.
	Name string `yaml:"name"`
	// ActiveLow: the line is active when low (most relay boards).
	ActiveLow bool `yaml:"active_low"`
}

// Feedback is LEDs and buzzer.
type Feedback struct {
	GreenLED Pin `yaml:"green_led"`
	RedLED   Pin `yaml:"red_led"`
	Buzzer   Pin `yaml:"buzzer"`
	// Patterns override the built-in patterns of allow, deny, error and
	// offline, per output: green, red, buzzer. See ParseSteps.
	Patterns map[string]PatternSpec `yaml:"patterns"`
}

// PatternSpec is one feedback pattern: the steps of each output, e.g.
// green: "on 1s", buzzer: "on 100ms off 100ms on 100ms". An output left
// empty stays off.
type PatternSpec struct {
	Green  string `yaml:"green"`
	Red    string `yaml:"red"`
	Buzzer string `yaml:"buzzer"`
}

// ParseSteps reads "on D [off D] on D ..." into steps; "off D" first is a
// pause before the first "on".
func ParseSteps(s string) ([]gate.Step, error) {
	f := strings.Fields(s)
	if len(f)%2 != 0 {
		return nil, fmt.Errorf("%q: want pairs of on/off and a duration, e.g. \"on 100ms off 100ms on 100ms\"", s)
	}
	var steps []gate.Step
	for i := 0; i < len(f); i += 2 {
		d, err := time.ParseDuration(f[i+1])
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%q: %q is not a positive duration", s, f[i+1])
		}
		switch f[i] {
		case "on":
			steps = append(steps, gate.Step{On: d})
		case "off":
			if len(steps) == 0 || steps[len(steps)-1].Off != 0 {
				steps = append(steps, gate.Step{Off: d})
			} else {
				steps[len(steps)-1].Off = d
			}
		default:
			return nil, fmt.Errorf("%q: %q must be on or off", s, f[i])
		}
	}
	return steps, nil
}

// Pattern converts a spec to the gate's pattern.
func (p PatternSpec) Pattern() (gate.Pattern, error) {
	var out gate.Pattern
	for _, x := range []struct {
		spec string
		dst  *[]gate.Step
	}{{p.Green, &out.Green}, {p.Red, &out.Red}, {p.Buzzer, &out.Buzzer}} {
		steps, err := ParseSteps(x.spec)
		if err != nil {
			return out, err
		}
		*x.dst = steps
	}
	return out, nil
}

// Sync connects the gate to its fleet's MQTT broker. The gate decides
// without it; records wait in the outbox while it is away.
type Sync struct {
	// Enabled turns fleet sync on.
	Enabled bool `yaml:"enabled"`
	// Fleet is the fleet id, the second level of every topic.
	Fleet string `yaml:"fleet"`
	// The broker connection; ClientID defaults to wicket-<fleet>-<gate id>.
	mqttconn.Conn `yaml:",inline"`
	// BatchSize is the most records in one message.
	BatchSize int `yaml:"batch_size"`
	// MaxInflight is how many unacknowledged batches may be out at once.
	MaxInflight int `yaml:"max_inflight"`
	// AckTimeout: unacknowledged records are sent again after this long.
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// StatusEvery is how often the retained status is refreshed.
	StatusEvery time.Duration `yaml:"status_every"`
	// StatusSpread is the most a status asked for by a change (a trust
	// document applied) waits, at random, before it goes out; 0 sends it
	// at once.
	StatusSpread time.Duration `yaml:"status_spread"`
	// ReconnectMin and ReconnectMax bound the wait between attempts
	// (exponential, with jitter).
	ReconnectMin time.Duration `yaml:"reconnect_min"`
	ReconnectMax time.Duration `yaml:"reconnect_max"`
	// SnapshotJitter is the longest random wait before the gate
	// downloads a snapshot a manifest announces (snapfile), so a fleet
	// does not fetch at once; 0 means snapfile.DefaultJitter (10m).
	SnapshotJitter time.Duration `yaml:"snapshot_jitter"`
	// TrustSilence: after a reconnect to a session the broker kept, a
	// trust tree silent this long is subscribed again, in case the broker
	// restored the session without that subscription (mqttsync's
	// Config.TrustSilence); 0 never checks.
	TrustSilence time.Duration `yaml:"trust_silence"`
	// TrustQoS is the QoS of the trust tree subscription: 1 (queued in
	// the session while the gate is away) or 0 (subscribed again on every
	// connect; mqttsync's Config.TrustQoS0).
	TrustQoS int `yaml:"trust_qos"`
	// IdentityKey is the gate's Ed25519 identity key (wicketd init makes
	// it, mode 0600): it signs the records batches and the status, and
	// the authority enrols its public key in the fleet's roster. Without
	// it the gate still decides, but no collector takes its records.
	IdentityKey string `yaml:"identity_key"`
}

// Display is the passenger page for the gate's screen: read-only, with
// each decision and the gate's banners. The attendant's kiosk page is on
// the admin API (see HTTP); /healthz and /metrics on their own address.
type Display struct {
	// Enabled serves the page.
	Enabled bool `yaml:"enabled"`
	// Addr is where it listens; keep it on loopback (the gate's own
	// screen) unless a second screen on another device must show it.
	Addr string `yaml:"addr"`
	// IdleAfter: the page returns to its idle screen this long after a
	// decision.
	IdleAfter time.Duration `yaml:"idle_after"`
	// Kiosk turns on the attendant's confirm/reject buttons, on the page
	// the admin API serves, for decisions that need a person to compare
	// the photo; it needs http.admin with a credential. The page shows the
	// test age and the vaccine doses only where the policy uses them.
	Kiosk bool `yaml:"kiosk"`
	// MaxClients bounds the event streams of remote pages together; the
	// gate's own screen (loopback) is always served.
	MaxClients int `yaml:"max_clients"`
	// MaxClientsPerSource bounds the event streams of one address; a new
	// one beyond it ends that address's oldest.
	MaxClientsPerSource int `yaml:"max_clients_per_source"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is json (for journald) or text.
	Format string `yaml:"format"`
}

// Default returns the defaults of every field. A setting that a device,
// sync or store type also has takes that type's default, so each has one
// owner; the rest are the config's own.
func Default() Config {
	return Config{
		Policy: verifier.DefaultPolicy(),
		Store: Store{
			Path:        "/var/lib/wicket/wicket.db",
			LockTimeout: store.DefaultLockTimeout, MaxEvents: store.DefaultMaxEvents, MaxOutbox: store.DefaultMaxOutbox,
		},
		Scanner: Scanner{
			Type: "serial", Baud: device.DefaultBaud, Terminator: device.DefaultTerminator,
			MaxFrame: device.DefaultMaxFrame, InterByteTimeout: device.DefaultInterByteTimeout,
			HoldOff: device.DefaultHoldOffWindow,
			Camera: Camera{
				Format: camera.DefaultFormat, Width: camera.DefaultWidth, Height: camera.DefaultHeight,
				FPS: camera.DefaultMaxFPS, MaxDecodeRate: 15, Downscale: 1,
			},
		},
		Turnstile: Turnstile{Backend: "gpio", PulseWidth: gate.DefaultPulseWidth, OpenTimeout: gate.DefaultPassageTimeout},
		Thermo:    Thermometer{Type: "none", Address: thermo.MLXAddr, Baud: device.DefaultBaud, Poll: 200 * time.Millisecond, StaleAfter: 10 * time.Second},
		Sync: Sync{
			Conn:      mqttconn.Conn{KeepAlive: mqttconn.DefaultKeepAlive},
			BatchSize: mqttsync.DefaultBatchSize, MaxInflight: mqttsync.DefaultMaxInflight,
			AckTimeout: mqttsync.DefaultAckTimeout, StatusEvery: mqttsync.DefaultStatusEvery,
			StatusSpread: mqttsync.DefaultStatusSpread, TrustQoS: 1,
			ReconnectMin: mqttsync.DefaultReconnectMin, ReconnectMax: mqttsync.DefaultReconnectMax,
		},
		Display: Display{
			Addr: "127.0.0.1:8080", IdleAfter: display.DefaultIdleAfter,
			MaxClients: display.DefaultMaxClients, MaxClientsPerSource: display.DefaultMaxPerSource,
		},
		HTTP: HTTP{Admin: Admin{Addr: DefaultAdminAddr}},
		Log:  Log{Level: "info", Format: "json"},
	}
}

// Load reads, decodes and validates a config file. Relative paths in it
// are relative to the file's directory.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a config over the defaults and validates it. Its error is
// Problems: every problem in the file, each with its line and fix. Problems
// of the YAML itself (syntax, unknown keys, values of the wrong form) are
// reported alone, before any value is checked; otherwise every value
// Validate finds wrong, each naming its field and, where the field is
// written in the file, its line.
func Parse(data []byte, dir string) (*Config, error) {
	lines, probs := checkYAML(data)
	if len(probs) > 0 {
		return nil, probs
	}
	c := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, Problems{syntaxProblem(err)}
	}
	c.dir = dir
	c.lines = lines
	c.derive()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// derive fills the defaults that follow from other fields: the sync
// client id, wicket-<fleet>-<gate id>, when sync is on and it is empty.
func (c *Config) derive() {
	if c.Sync.Enabled && c.Sync.ClientID == "" {
		c.Sync.ClientID = "wicket-" + c.Sync.Fleet + "-" + c.Gate.ID
	}
}

// Line returns the line of a dotted key in the file, or of its nearest
// written parent; 0 if neither is written.
func (c *Config) Line(field string) int {
	for f := field; f != ""; {
		if l, ok := c.lines[f]; ok {
			return l
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return 0
}

// At makes err, whose text starts with a dotted field ("scanner.baud:
// ..."), a Problem at that field's line.
func (c *Config) At(err error) Problem {
	msg := err.Error()
	field, rest, ok := strings.Cut(msg, ": ")
	if !ok || strings.ContainsAny(field, " ") {
		return Problem{Msg: msg}
	}
	// "a/b" lists two fields; the first names the line.
	return Problem{Line: c.Line(strings.SplitN(field, "/", 2)[0]), Field: field, Msg: rest}
}

// Path resolves a path from the config against the config's directory.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// BatchFiles resolves trust.batches: paths made absolute, glob patterns
// expanded in name order.
func (c *Config) BatchFiles() ([]string, error) {
	var out []string
	for i, p := range c.Trust.Batches {
		p = c.Path(p)
		if !strings.ContainsAny(p, "*?[") {
			out = append(out, p)
			continue
		}
		m, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("trust.batches[%d]: %q: %w", i, p, err)
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("trust.batches[%d]: %q matches no file", i, p)
		}
		out = append(out, m...)
	}
	return out, nil
}

// baudList is device.Bauds for a message: "1200, 2400, ...".
func baudList() string {
	return strings.ReplaceAll(strings.Trim(fmt.Sprint(device.Bauds), "[]"), " ", ", ")
}

// String renders the effective config as YAML.
func (c *Config) String() string {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	enc.Encode(c)
	return b.String()
}
