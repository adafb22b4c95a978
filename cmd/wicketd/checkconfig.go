package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"

	"wicket/cmd/wicketd/config"
	"wicket/device/gate"
	"wicket/sync/mqttconn"
	"wicket/verifier"
)

// brokerDialTimeout bounds check-config -broker's connection attempt.
const brokerDialTimeout = 5 * time.Second

func cmdCheckConfig(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("check-config", "[-broker] FILE", stderr)
	broker := fs.Bool("broker", false, "also connect to the sync broker (TCP and TLS handshake)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	path := fs.Arg(0)
	cfg, err := config.Load(path)
	if err != nil {
		printConfigError(stderr, "check-config", path, err)
		return exitUsage
	}
	probs, warnings := checkSetup(ctx, cfg, path, *broker)
	cfg.WarnBroker(stderr)
	for _, w := range warnings {
		fmt.Fprintf(stdout, "# warning: %s\n", w)
	}
	if len(probs) > 0 {
		fmt.Fprintf(stderr, "wicketd check-config: %s: %d problem(s); wicketd run would fail or misbehave:\n", path, len(probs))
		for _, p := range probs {
			fmt.Fprintf(stderr, "  %s\n", p)
		}
		return exitUsage
	}
	fmt.Fprintf(stdout, "# %s: OK\n%s", path, cfg)
	return exitOK
}

// printConfigError tells the technician why the config at path was
// refused by wicketd cmd: for Problems, their count and then one problem a
// line, each with its line in the file and the fix; any other error on
// one line.
func printConfigError(w io.Writer, cmd, path string, err error) {
	var probs config.Problems
	if !errors.As(err, &probs) {
		fmt.Fprintf(w, "wicketd %s: %v\n", cmd, err)
		return
	}
	fmt.Fprintf(w, "wicketd %s: %s: %d problem(s):\n", cmd, path, len(probs))
	for _, p := range probs {
		fmt.Fprintf(w, "  %s\n", p)
	}
}

// checkSetup makes every check run would make short of driving the
// hardware: the files the config names (readable, parseable, owners and
// modes), the devices (present, of the right kind), the pins (on this
// board, none used twice) and, when asked, the broker. It returns every
// problem, each with the line of its field.
func checkSetup(ctx context.Context, cfg *config.Config, path string, broker bool) (config.Problems, []string) {
	var probs config.Problems
	add := func(err error) {
		if err != nil {
			probs = append(probs, cfg.At(err))
		}
	}
	warnings, err := cfg.CheckPermissions(path)
	add(err)
	trustOK := len(probs) == 0
	for i, p := range cfg.Trust.RootKeys {
		if _, err := verifier.ReadPublicKeyFile(cfg.Path(p)); err != nil {
			add(fmt.Errorf("trust.root_keys[%d]: %s: %w; copy the authority's root.pub", i, p, err))
			trustOK = false
		}
	}
	if trustOK {
		if _, err := verifierFromFiles(cfg, verifier.SystemClock{}); err != nil {
			add(err)
		}
	}
	if len(cfg.Trust.Batches) == 0 && !cfg.Sync.Enabled {
		warnings = append(warnings, "trust.batches: none, and fleet sync is off: until the store holds a revocation set the gate denies every code trust_data_stale; ask the authority for the first batch (wicketctl snapshot, docs/first-hour.md)")
	}
	for _, f := range []struct{ field, path string }{
		{"trust.record_key", cfg.Trust.RecordKey},
		{"sync.password_file", cfg.Sync.PasswordFile},
	} {
		if f.path != "" && (f.field != "sync.password_file" || cfg.Sync.Enabled) {
			if _, err := os.ReadFile(cfg.Path(f.path)); err != nil {
				add(fmt.Errorf("%s: %w", f.field, err))
			}
		}
	}
	var tlsConf *tls.Config
	if y := cfg.Sync; y.Enabled {
		if tlsConf, err = mqttconn.TLSConfig(cfg.Path(y.CAFile), cfg.Path(y.CertFile), cfg.Path(y.KeyFile)); err != nil {
			field := "sync.ca_file"
			if strings.HasPrefix(err.Error(), "cert_file") {
				field = "sync.cert_file"
			}
			add(fmt.Errorf("%s: %w; the gate would run without fleet sync", field, err))
		}
	}
	if cfg.HTTP.Admin.Enabled() {
		if _, _, err := cfg.AdminCredentials(); err != nil {
			add(err)
		}
	}
	probs = append(probs, deviceProblems(cfg)...)
	probs = append(probs, cfg.PinProblems()...)
	probs = append(probs, hostPinProblems(cfg)...)
	if broker && cfg.Sync.Enabled && tlsConf != nil {
		field := "sync.broker"
		if len(cfg.Sync.Brokers) > 0 {
			field = "sync.brokers"
		}
		for _, b := range cfg.Sync.URLs() {
			if err := dialBroker(ctx, b, tlsConf); err != nil {
				add(fmt.Errorf("%s: %w", field, err))
			}
		}
	}
	return probs, warnings
}

// deviceProblems checks that the scanner's and thermometer's devices are
// there and are character devices (a camera may also be a directory of
// images or an .mjpeg file, for demos).
func deviceProblems(cfg *config.Config) config.Problems {
	var probs config.Problems
	check := func(field, path, want string, demo bool) {
		st, err := os.Stat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			err = fmt.Errorf("%s does not exist; plug the %s in, and name it by /dev/serial/by-id/ or /dev/v4l/by-id/ (ls -l those directories)", path, want)
		case err != nil:
		case demo && (st.IsDir() || filepath.Ext(path) == ".mjpeg"):
			return
		case st.Mode()&fs.ModeCharDevice == 0:
			err = fmt.Errorf("%s is not a device (mode %v); name the %s itself, such as its /dev/serial/by-id/ path", path, st.Mode().Type(), want)
		default:
			return
		}
		probs = append(probs, config.Problem{Line: cfg.Line(field), Field: field, Msg: err.Error()})
	}
	s := cfg.Scanner
	switch s.Type {
	case "serial":
		check("scanner.device", s.Device, "scanner", false)
	case "camera":
		check("scanner.camera.device", cfg.Path(s.Camera.Device), "camera", true)
	case "file":
		if _, err := os.Stat(cfg.Path(s.Path)); err != nil {
			probs = append(probs, config.Problem{Line: cfg.Line("scanner.path"), Field: "scanner.path", Msg: err.Error()})
		}
	}
	if cfg.Thermo.Type == "serial" {
		check("thermometer.device", cfg.Thermo.Device, "thermometer", false)
	}
	return probs
}

// hostPinProblems checks the pins against the GPIO drivers of this
// machine, where it has any (on a laptop the header map alone is used).
func hostPinProblems(cfg *config.Config) config.Problems {
	if cfg.Turnstile.Backend != "gpio" {
		return nil
	}
	if err := gate.ChipAccess("/dev/gpiochip*"); err != nil {
		return config.Problems{{Line: cfg.Line("turnstile.relay.name"), Field: "turnstile", Msg: err.Error()}}
	}
	if _, err := host.Init(); err != nil || len(gpioreg.All()) == 0 {
		return nil
	}
	var probs config.Problems
	for _, p := range cfg.Pins() {
		if _, err := config.PiPin(p.Name); err == nil && gpioreg.ByName(p.Name) == nil {
			probs = append(probs, config.Problem{Line: cfg.Line(p.Field), Field: p.Field, Msg: fmt.Sprintf("%q: this board's GPIO driver has no such pin", p.Name)})
		}
	}
	return probs
}

// dialBroker connects to the broker, with the TLS handshake for tls://
// URLs, and hangs up. It proves the address, the port and the CA; the
// MQTT login is the gate's to make.
func dialBroker(ctx context.Context, broker string, tc *tls.Config) error {
	u, err := url.Parse(broker)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, brokerDialTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return fmt.Errorf("%s is not reachable: %w; check the address, the port and the firewall", u.Host, err)
	}
	defer conn.Close()
	if !mqttconn.TLSSchemes[u.Scheme] {
		return nil
	}
	tc = tc.Clone()
	tc.ServerName = u.Hostname()
	tconn := tls.Client(conn, tc)
	if err := tconn.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS with %s failed: %w; check sync.ca_file is the CA that signed the broker's certificate", u.Host, err)
	}
	return nil
}
