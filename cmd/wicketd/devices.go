package main

import (
	"fmt"
	"image"
	"log/slog"
	"os"
	"time"

	"wicket/cmd/wicketd/config"
	"wicket/cmd/wicketd/display"
	"wicket/decoder/qr"
	"wicket/device"
	"wicket/device/camera"
	"wicket/device/gate"
	"wicket/sync/store"
)

// This file maps wicketd.yaml to the store and the devices: the store
// options, the gate's relay, inputs and feedback, and the scan source.

// openStore opens the gate's store with the check of the bbolt file in
// the background (a full access log is hundreds of MB to read at a cold
// start); onDamage hears of damage found by that check, onStatusDamage of
// damage to the revocation file.
func openStore(cfg *config.Config, log *slog.Logger, onStatusDamage, onDamage func(error)) (*store.Store, error) {
	var key []byte
	if cfg.Trust.RecordKey != "" {
		b, err := os.ReadFile(cfg.Path(cfg.Trust.RecordKey))
		if err != nil {
			return nil, fmt.Errorf("trust.record_key: %w", err)
		}
		if len(b) < 32 {
			return nil, fmt.Errorf("trust.record_key: %d bytes; make one with: head -c 32 /dev/urandom > FILE", len(b))
		}
		key = b
	}
	st, err := store.Open(store.Options{
		Path: cfg.Path(cfg.Store.Path), LockTimeout: cfg.Store.LockTimeout,
		MaxEvents: cfg.Store.MaxEvents, MaxOutbox: cfg.Store.MaxOutbox, RecordKey: key, Logger: log,
		OnStatusDamage: onStatusDamage, BackgroundCheck: true, OnDamage: onDamage,
	})
	if err != nil {
		return nil, fmt.Errorf("store.path: %w", err)
	}
	return st, nil
}

// gateConfig maps wicketd.yaml to the device/gate config.
func gateConfig(cfg *config.Config) (gate.Config, error) {
	t, f := cfg.Turnstile, cfg.Feedback
	gc := gate.Config{
		Turnstile: gate.TurnstileConfig{
			RelayPin: t.Relay.Name, RelayActiveLow: t.Relay.ActiveLow, Mode: t.Mode,
			PulseWidth: t.PulseWidth, PassageTimeout: t.OpenTimeout, FailSafe: t.FailSafe,
			PassagePin: t.Passage.Name, PassageActiveLow: t.Passage.ActiveLow,
			EmergencyPin: t.Emergency.Name, EmergencyActiveLow: t.Emergency.ActiveLow,
		},
		Feedback: gate.FeedbackConfig{
			GreenPin: f.GreenLED.Name, GreenActiveLow: f.GreenLED.ActiveLow,
			RedPin: f.RedLED.Name, RedActiveLow: f.RedLED.ActiveLow,
			BuzzerPin: f.Buzzer.Name, BuzzerActiveLow: f.Buzzer.ActiveLow,
		},
	}
	for name, spec := range f.Patterns {
		p, err := spec.Pattern()
		if err != nil {
			return gc, fmt.Errorf("feedback.patterns.%s: %w", name, err)
		}
		switch name {
		case "allow":
			gc.Feedback.Allow = p
		case "deny":
			gc.Feedback.Deny = p
		case "error":
			gc.Feedback.Error = p
		case "offline":
			gc.Feedback.Offline = p
		}
	}
	return gc, nil
}

// simPassAfter is when the simulated person walks through.
const simPassAfter = 200 * time.Millisecond

// openOutputs opens the turnstile and feedback in their safe state.
func (d *daemon) openOutputs(onEmergency func(gate.EmergencyState)) error {
	gc, err := gateConfig(d.cfg)
	if err != nil {
		return err
	}
	opts := gate.Options{Logger: d.log.With("component", "gate"), OnEmergency: onEmergency, OnForcedPassage: d.forcedPassage}
	switch d.cfg.Turnstile.Backend {
	case "gpio":
		d.ts, d.fb, err = gate.OpenGPIO(gc, opts)
		if err != nil {
			return fmt.Errorf("turnstile: %w", err)
		}
	case "sim":
		gc.Turnstile.RelayPin = "sim"
		sim, err := gate.NewSim(d.stdout, gc, gate.SimConfig{PassAfter: simPassAfter}, opts)
		if err != nil {
			return fmt.Errorf("turnstile: %w", err)
		}
		d.ts, d.fb = sim.Turnstile, sim.Feedback
		if d.onSim != nil {
			d.onSim(sim)
		}
	}
	return nil
}

func (d *daemon) closeOutputs() {
	if d.fb != nil {
		d.fb.Close()
	}
	if d.ts != nil {
		if err := d.ts.Close(); err != nil {
			d.log.Error("turnstile close", "err", err)
		}
	}
}

// source builds the scan source the config names.
func (d *daemon) source() (device.Source, error) {
	s := d.cfg.Scanner
	log := d.log.With("component", "scanner")
	switch s.Type {
	case "stdin":
		return device.NewReaderSource("stdin", d.stdin, device.ReaderConfig{MaxFrame: s.MaxFrame, StripAIM: s.StripAIM}, log)
	case "file":
		return device.NewFileSource(d.cfg.Path(s.Path), device.ReaderConfig{MaxFrame: s.MaxFrame, StripAIM: s.StripAIM}, log)
	case "camera":
		return d.cameraSource(log)
	}
	return device.NewSerialSource(device.SerialConfig{
		Device: s.Device, Baud: s.Baud, Terminator: s.Terminator, MaxFrame: s.MaxFrame,
		InterByteTimeout: s.InterByteTimeout, FlushPartial: s.FlushPartial, StripAIM: s.StripAIM,
	}, device.SourceOptions{
		Logger: log,
		// The source logs each change of state itself; the daemon counts
		// the failures for /metrics.
		OnState: func(connected bool, err error) {
			if !connected {
				d.deviceError("scanner")
			}
		},
	})
}

// cameraSource builds the camera scan source: a V4L2 device, or, for
// tests and demos, a directory of images or an .mjpeg file replayed at the
// configured rate.
func (d *daemon) cameraSource(log *slog.Logger) (device.Source, error) {
	c := d.cfg.Scanner.Camera
	dec := qr.NewDecoder()
	opts := dec.Options()
	opts.Downscale = c.Downscale
	if len(c.ROI) == 4 {
		opts.ROI = image.Rect(c.ROI[0], c.ROI[1], c.ROI[2], c.ROI[3])
	}
	if err := dec.SetOptions(opts); err != nil {
		return nil, fmt.Errorf("scanner.camera: %w", err)
	}
	var timed camera.Decoder = dec
	if d.disp != nil {
		timed = timedDecoder{dec, d.disp.Metrics()}
	}
	path := d.cfg.Path(c.Device)
	open := func() (camera.FrameSource, error) {
		return camera.OpenV4L2(camera.V4L2Config{Device: path, Format: c.Format, Width: c.Width, Height: c.Height, FPS: c.FPS}, log)
	}
	if st, err := os.Stat(path); err == nil && (st.IsDir() || st.Mode().IsRegular()) {
		open = func() (camera.FrameSource, error) { return camera.NewFileFrames([]string{path}, false, c.FPS) }
	}
	return camera.NewSource(camera.Config{Name: c.Device, MaxFPS: c.FPS, MaxDecodeRate: c.MaxDecodeRate}, open, timed, device.SourceOptions{
		Logger: log,
		// The source logs each change of state itself; the daemon counts
		// the failures for /metrics.
		OnState: func(connected bool, err error) {
			if !connected {
				d.deviceError("camera")
			}
		},
	})
}

// timedDecoder feeds the decode-time histogram of /metrics.
type timedDecoder struct {
	dec *qr.Decoder
	m   *display.Metrics
}

func (t timedDecoder) DecodeGray(img *image.Gray) ([]byte, error) {
	start := time.Now()
	b, err := t.dec.DecodeGray(img)
	t.m.ObserveDecode(time.Since(start))
	return b, err
}
