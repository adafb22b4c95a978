package config

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"wicket/decoder/qr"
	"wicket/device"
	"wicket/device/camera"
	"wicket/device/gate"
	"wicket/sync/mqttsync"
	"wicket/sync/wire"
	"wicket/verifier"
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
// fix. Each section checks itself, given what it needs of the others;
// where one field is wrong in two ways, the first is said. The policy and
// the broker connection are checked by their own packages, which name
// their first bad field. Checks that need files (keys readable, devices
// present) are done when the daemon opens them, and by check-config, with
// the same naming. Validate changes nothing.
func (c *Config) Validate() error {
	var cs checks
	c.Gate.validate(&cs)
	c.Trust.validate(&cs, c.Policy)
	cs.add(c.Policy.Validate())
	c.Store.validate(&cs)
	c.Scanner.validate(&cs)
	c.Turnstile.validate(&cs)
	c.Thermo.validate(&cs, c.Policy.Temperature.Required)
	c.Feedback.validate(&cs)
	c.Sync.validate(&cs)
	c.Display.validate(&cs)
	c.HTTP.validate(&cs, c.Display)
	c.Log.validate(&cs)
	return c.problems(cs)
}

// problems turns what the checks found into Problems at their lines, in
// file order; nil if they found nothing.
func (c *Config) problems(cs checks) error {
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

// minMaxFrame is the smallest scanner.max_frame taken: no signed voucher
// is shorter, so a smaller bound would drop every code.
const minMaxFrame = 64

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

// validate checks the trust files, and that the DCC pseudonym key is
// there when policy accepts DCCs.
func (t Trust) validate(cs *checks, policy verifier.Policy) {
	cs.check(len(t.RootKeys) == 0, "trust.root_keys: missing; list at least one root public key file (PEM)")
	dcc := policy.Profiles.DCC != nil
	cs.check(dcc && t.DCCPseudonymKey == "", "trust.dcc_pseudonym_key: missing; policy.profiles.dcc needs the fleet's DCC pseudonym key file from the authority (wicketctl dcc pseudonym -new)")
}

func (s Store) validate(cs *checks) {
	cs.check(s.Path == "", "store.path: missing; e.g. /var/lib/wicket/wicket.db")
	cs.check(s.LockTimeout <= 0, "store.lock_timeout: must be positive, e.g. 5s")
	cs.check(s.MaxEvents < 1000, "store.max_events: %d: at least 1000", s.MaxEvents)
	cs.check(s.MaxOutbox < 1000, "store.max_outbox: %d: at least 1000", s.MaxOutbox)
}

func (s Scanner) validate(cs *checks) {
	cs.add(oneOf("scanner.type", s.Type, "serial", "camera", "stdin", "file"))
	cs.check(s.Type == "serial" && s.Device == "", "scanner.device: missing for a serial scanner; use /dev/serial/by-id/<your scanner>")
	cs.check(s.Type == "serial" && !slices.Contains(device.Bauds, s.Baud), "scanner.baud: %d is not a standard rate; use the scanner's rate, one of %s (commonly 9600 or 115200)", s.Baud, baudList())
	cs.check(s.Type == "file" && s.Path == "", "scanner.path: missing for a file scanner")
	cs.check(s.MaxFrame < minMaxFrame || s.MaxFrame > device.MaxFrameLimit, "scanner.max_frame: %d is out of range %d..%d", s.MaxFrame, minMaxFrame, device.MaxFrameLimit)
	cs.check(s.InterByteTimeout < 10*time.Millisecond, "scanner.inter_byte_timeout: %v: at least 10ms", s.InterByteTimeout)
	cs.check(s.HoldOff < 0, "scanner.hold_off: must not be negative; 0 turns it off")
	if s.Type == "camera" {
		s.Camera.validate(cs)
	}
}

func (c Camera) validate(cs *checks) {
	cs.check(c.Device == "", "scanner.camera.device: missing; use /dev/v4l/by-id/<your camera>")
	sizeOK := c.Width >= 160 && c.Width <= camera.MaxFrameSide && c.Height >= 120 && c.Height <= camera.MaxFrameSide
	cs.check(!sizeOK, "scanner.camera.width/height: %dx%d is out of range 160x120..%dx%d", c.Width, c.Height, camera.MaxFrameSide, camera.MaxFrameSide)
	cs.check(c.FPS <= 0 || c.FPS > 120, "scanner.camera.fps: %v is out of range (0, 120]", c.FPS)
	cs.check(c.MaxDecodeRate <= 0 || c.MaxDecodeRate > 120, "scanner.camera.max_decode_rate: %v is out of range (0, 120]", c.MaxDecodeRate)
	cs.check(!c.roiOK(), "scanner.camera.roi: %v must be [x0, y0, x1, y1] inside the %dx%d frame", c.ROI, c.Width, c.Height)
	cs.check(c.Downscale < 1 || c.Downscale > qr.MaxDownscale, "scanner.camera.downscale: %d is out of range 1..%d", c.Downscale, qr.MaxDownscale)
}

// roiOK reports whether the region of interest is empty (the whole
// frame) or a rectangle inside the frame.
func (c Camera) roiOK() bool {
	if len(c.ROI) == 0 {
		return true
	}
	if len(c.ROI) != 4 {
		return false
	}
	x0, y0, x1, y1 := c.ROI[0], c.ROI[1], c.ROI[2], c.ROI[3]
	return x0 >= 0 && y0 >= 0 && x1 > x0 && y1 > y0 && x1 <= c.Width && y1 <= c.Height
}

func (t Turnstile) validate(cs *checks) {
	cs.add(oneOf("turnstile.backend", t.Backend, "gpio", "sim"))
	cs.check(t.Backend == "gpio" && t.Relay.Name == "", "turnstile.relay.name: missing; name the relay's GPIO, e.g. GPIO17")
	pulseOK := t.PulseWidth >= 50*time.Millisecond && t.PulseWidth <= 10*time.Second
	cs.check(!pulseOK, "turnstile.pulse_width: %v is out of range 50ms..10s", t.PulseWidth)
	cs.check(t.OpenTimeout < time.Second || t.OpenTimeout > gate.MaxPassageTimeout, "turnstile.open_timeout: %v is out of range 1s..%v", t.OpenTimeout, gate.MaxPassageTimeout)
	cs.check(pulseOK && t.PulseWidth > t.OpenTimeout, "turnstile.pulse_width: %v is longer than open_timeout (%v); shorten the pulse or lengthen open_timeout", t.PulseWidth, t.OpenTimeout)
	cs.check(t.Mode == gate.RelayLevel && t.Passage.Name == "" && t.Backend == "gpio", "turnstile.mode: level mode needs turnstile.passage.name (the passage sensor), or use mode: pulse")
}

// validate checks the thermometer, and that there is one when the
// policy requires a temperature.
func (th Thermometer) validate(cs *checks, required bool) {
	cs.add(oneOf("thermometer.type", th.Type, "none", "mlx90614", "serial", "sim"))
	cs.check(required && th.Type == "none", "policy.temperature.required: the gate has no thermometer; set thermometer.type, or required: false")
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

// validate checks the sync section when sync is on.
func (y Sync) validate(cs *checks) {
	if !y.Enabled {
		return
	}
	if err := wire.ValidName(y.Fleet); err != nil {
		cs.add(fmt.Errorf("sync.fleet: set the fleet id: %v", err))
	}
	cs.add(y.Conn.Validate("sync."))
	cs.check(y.BatchSize < 1 || y.BatchSize > wire.MaxRecordsPerBatch, "sync.batch_size: %d is out of range 1..%d", y.BatchSize, wire.MaxRecordsPerBatch)
	cs.check(y.MaxInflight < 1 || y.MaxInflight > 64, "sync.max_inflight: %d is out of range 1..64", y.MaxInflight)
	cs.check(y.AckTimeout < time.Second, "sync.ack_timeout: %v: at least 1s", y.AckTimeout)
	cs.check(y.StatusEvery < time.Second, "sync.status_every: %v: at least 1s", y.StatusEvery)
	cs.check(y.TrustQoS != 0 && y.TrustQoS != 1, "sync.trust_qos: %d: use 1 (queued while away) or 0 (subscribed again on every connect)", y.TrustQoS)
	cs.check(y.StatusSpread < 0, "sync.status_spread: %v: use 0s (at once) or a positive duration", y.StatusSpread)
	cs.check(y.StatusSpread > y.StatusEvery && y.StatusSpread > mqttsync.DefaultStatusSpread, "sync.status_spread: %v is longer than sync.status_every (%v): a change's status would wait past the regular one; use at most status_every (docs/mqtt.md: 20s on a NATS fleet of thousands, up to status_every where overrides follow each other)", y.StatusSpread, y.StatusEvery)
	cs.check(y.TrustSilence < 0, "sync.trust_silence: %v: use a positive duration, or 0s to never check", y.TrustSilence)
	cs.check(y.SnapshotJitter < 0, "sync.snapshot_jitter: %v: use a positive duration, or 0s for the default (10m)", y.SnapshotJitter)
	cs.check(y.ReconnectMin <= 0 || y.ReconnectMax < y.ReconnectMin, "sync.reconnect_min/reconnect_max: need 0 < reconnect_min <= reconnect_max")
}

func (l Log) validate(cs *checks) {
	cs.add(oneOf("log.level", l.Level, "debug", "info", "warn", "error"))
	cs.add(oneOf("log.format", l.Format, "json", "text"))
}
