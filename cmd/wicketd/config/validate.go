package config

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"wicket/device"
	"wicket/sync/wire"
)

// checks collects what Validate finds wrong: each an error whose text
// starts with its dotted field ("scanner.baud: ..."), so that At can put
// it on its line.
type checks []error

// add keeps err if it is not nil.
func (cs *checks) add(err error) {
	if err != nil {
		*cs = append(*cs, err)
	}
}

// check keeps the error format and args make when bad is true.
func (cs *checks) check(bad bool, format string, args ...any) {
	if bad {
		*cs = append(*cs, fmt.Errorf(format, args...))
	}
}

// Validate checks every section of the config and returns nil or Problems:
// every field it finds wrong, in file order (those not written in the file
// last), each naming the field, its line where it is written, and the
// fix. Where one field is wrong in two ways, the first is said. The
// policy and the broker connection are checked by their own packages,
// which name their first bad field. Checks that need files (keys
// readable, devices present) are done when the daemon opens them, and by
// check-config, with the same naming. Validate fills in sync.client_id
// when it is empty.
func (c *Config) Validate() error {
	var cs checks
	c.Gate.validate(&cs)
	c.Trust.validate(&cs)
	cs.add(c.Policy.Validate())
	dcc := c.Policy.Profiles.DCC != nil
	cs.check(dcc && c.Trust.DCCPseudonymKey == "", "trust.dcc_pseudonym_key: missing; policy.profiles.dcc needs the fleet's DCC pseudonym key file from the authority (wicketctl dcc pseudonym -new)")
	c.Store.validate(&cs)
	c.Scanner.validate(&cs)
	c.Turnstile.validate(&cs)
	c.Thermo.validate(&cs)
	cs.check(c.Policy.Temperature.Required && c.Thermo.Type == "none", "policy.temperature.required: the gate has no thermometer; set thermometer.type, or required: false")
	c.Feedback.validate(&cs)
	c.Sync.validate(&cs, c.Gate.ID)
	c.Display.validate(&cs)
	c.HTTP.validate(&cs, c.Display)
	c.Log.validate(&cs)
	if len(cs) == 0 {
		return nil
	}
	probs := make(Problems, len(cs))
	for i, err := range cs {
		probs[i] = c.At(err)
	}
	sort.SliceStable(probs, func(i, j int) bool { return lineOrder(probs[i].Line) < lineOrder(probs[j].Line) })
	return probs
}

// lineOrder sorts problems not written in the file (line 0) last.
func lineOrder(line int) int {
	if line == 0 {
		return int(^uint(0) >> 1)
	}
	return line
}

func oneOf(field, v string, allowed ...string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	return fmt.Errorf("%s: %q is not allowed; use one of %s", field, v, strings.Join(allowed, ", "))
}

func (g Gate) validate(cs *checks) {
	switch {
	case g.ID == "":
		cs.add(errors.New("gate.id: missing; set the gate's fleet id, e.g. id: L2-S14-G03"))
	case wire.ValidName(g.ID) != nil:
		cs.add(fmt.Errorf("gate.id: %v: it is part of MQTT topics", wire.ValidName(g.ID)))
	}
	cs.check(g.Venue == "", "gate.venue: missing; set the venue id the gate belongs to")
}

func (t Trust) validate(cs *checks) {
	cs.check(len(t.RootKeys) == 0, "trust.root_keys: missing; list at least one root public key file (PEM)")
}

func (s Store) validate(cs *checks) {
	cs.check(s.Path == "", "store.path: missing; e.g. /var/lib/wicket/wicket.db")
	cs.check(s.LockTimeout <= 0, "store.lock_timeout: must be positive, e.g. 5s")
	cs.check(s.MaxEvents < 1000, "store.max_events: %d: at least 1000", s.MaxEvents)
	cs.check(s.MaxOutbox < 1000, "store.max_outbox: %d: at least 1000", s.MaxOutbox)
}

func (s Scanner) validate(cs *checks) {
	cs.add(oneOf("scanner.type", s.Type, "serial", "camera", "stdin", "file"))
	cs.add(oneOf("scanner.terminator", s.Terminator, "cr", "lf", "crlf"))
	cs.check(s.Type == "serial" && s.Device == "", "scanner.device: missing for a serial scanner; use /dev/serial/by-id/<your scanner>")
	cs.check(s.Type == "serial" && !slices.Contains(device.Bauds, s.Baud), "scanner.baud: %d is not a standard rate; use the scanner's rate, one of %s (commonly 9600 or 115200)", s.Baud, baudList())
	cs.check(s.Type == "file" && s.Path == "", "scanner.path: missing for a file scanner")
	cs.check(s.MaxFrame < 64 || s.MaxFrame > 65536, "scanner.max_frame: %d is out of range 64..65536", s.MaxFrame)
	cs.check(s.InterByteTimeout < 10*time.Millisecond, "scanner.inter_byte_timeout: %v: at least 10ms", s.InterByteTimeout)
	cs.check(s.HoldOff < 0, "scanner.hold_off: must not be negative; 0 turns it off")
	if s.Type == "camera" {
		s.Camera.validate(cs)
	}
}

func (c Camera) validate(cs *checks) {
	cs.add(oneOf("scanner.camera.format", c.Format, "yuyv", "mjpeg"))
	cs.check(c.Device == "", "scanner.camera.device: missing; use /dev/v4l/by-id/<your camera>")
	sizeOK := c.Width >= 160 && c.Width <= 4096 && c.Height >= 120 && c.Height <= 4096
	cs.check(!sizeOK, "scanner.camera.width/height: %dx%d is out of range 160x120..4096x4096", c.Width, c.Height)
	cs.check(c.FPS <= 0 || c.FPS > 120, "scanner.camera.fps: %v is out of range (0, 120]", c.FPS)
	cs.check(c.MaxDecodeRate <= 0 || c.MaxDecodeRate > 120, "scanner.camera.max_decode_rate: %v is out of range (0, 120]", c.MaxDecodeRate)
	roiOK := len(c.ROI) == 0 || (len(c.ROI) == 4 && c.ROI[0] >= 0 && c.ROI[1] >= 0 && c.ROI[2] > c.ROI[0] && c.ROI[3] > c.ROI[1] && c.ROI[2] <= c.Width && c.ROI[3] <= c.Height)
	cs.check(!roiOK, "scanner.camera.roi: %v must be [x0, y0, x1, y1] inside the %dx%d frame", c.ROI, c.Width, c.Height)
	cs.check(c.Downscale < 1 || c.Downscale > 8, "scanner.camera.downscale: %d is out of range 1..8", c.Downscale)
}

func (t Turnstile) validate(cs *checks) {
	cs.add(oneOf("turnstile.backend", t.Backend, "gpio", "sim"))
	cs.add(oneOf("turnstile.mode", t.Mode, "pulse", "level"))
	cs.check(t.Backend == "gpio" && t.Relay.Name == "", "turnstile.relay.name: missing; name the relay's GPIO, e.g. GPIO17")
	cs.check(t.PulseWidth < 50*time.Millisecond || t.PulseWidth > 10*time.Second, "turnstile.pulse_width: %v is out of range 50ms..10s", t.PulseWidth)
	cs.check(t.OpenTimeout < time.Second || t.OpenTimeout > time.Minute, "turnstile.open_timeout: %v is out of range 1s..1m", t.OpenTimeout)
	cs.check(t.Mode == "level" && t.Passage.Name == "" && t.Backend == "gpio", "turnstile.mode: level mode needs turnstile.passage.name (the passage sensor), or use mode: pulse")
}

func (th Thermometer) validate(cs *checks) {
	cs.add(oneOf("thermometer.type", th.Type, "none", "mlx90614", "serial", "sim"))
	cs.check(th.Type == "serial" && !slices.Contains(device.Bauds, th.Baud), "thermometer.baud: %d is not a standard rate; use the thermometer's rate, one of %s", th.Baud, baudList())
	cs.check(th.Type == "serial" && th.Device == "", "thermometer.device: missing; name the serial thermometer, e.g. /dev/serial/by-id/usb-...")
	cs.check(th.Type == "mlx90614" && (th.Address < 0x03 || th.Address > 0x77), "thermometer.address: %#x is not a 7-bit SMBus address", th.Address)
	cs.check(th.Emissivity < 0 || th.Emissivity > 1, "thermometer.emissivity: %v: use 0 (the sensor's own) or up to 1 (skin: 0.98)", th.Emissivity)
	cs.check(th.Offset < -5 || th.Offset > 5, "thermometer.offset: %v °C is beyond any calibration; check the sensor", th.Offset)
	cs.check(th.Poll < 20*time.Millisecond || th.Poll > 10*time.Second, "thermometer.poll: %v is out of range 20ms..10s", th.Poll)
	cs.check(th.StaleAfter < 0, "thermometer.stale_after: negative; use 0 to turn the check off")
}

func (f Feedback) validate(cs *checks) {
	names := make([]string, 0, len(f.Patterns))
	for name := range f.Patterns {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := oneOf("feedback.patterns."+name, name, "allow", "deny", "error", "offline"); err != nil {
			cs.add(err)
			continue
		}
		if _, err := f.Patterns[name].Pattern(); err != nil {
			cs.add(fmt.Errorf("feedback.patterns.%s: %w", name, err))
		}
	}
}

// validate checks the sync section when sync is on, and fills in the
// client id from the fleet and gate ids when it is empty.
func (y *Sync) validate(cs *checks, gateID string) {
	if !y.Enabled {
		return
	}
	if y.ClientID == "" {
		y.ClientID = "wicket-" + y.Fleet + "-" + gateID
	}
	if err := wire.ValidName(y.Fleet); err != nil {
		cs.add(fmt.Errorf("sync.fleet: set the fleet id: %v", err))
	}
	cs.add(y.Conn.Validate("sync."))
	cs.check(y.BatchSize < 1 || y.BatchSize > 500, "sync.batch_size: %d is out of range 1..500", y.BatchSize)
	cs.check(y.MaxInflight < 1 || y.MaxInflight > 64, "sync.max_inflight: %d is out of range 1..64", y.MaxInflight)
	cs.check(y.AckTimeout < time.Second, "sync.ack_timeout: %v: at least 1s", y.AckTimeout)
	cs.check(y.StatusEvery < time.Second, "sync.status_every: %v: at least 1s", y.StatusEvery)
	cs.check(y.ReconnectMin <= 0 || y.ReconnectMax < y.ReconnectMin, "sync.reconnect_min/reconnect_max: need 0 < reconnect_min <= reconnect_max")
}

func (l Log) validate(cs *checks) {
	cs.add(oneOf("log.level", l.Level, "debug", "info", "warn", "error"))
	cs.add(oneOf("log.format", l.Format, "json", "text"))
}
