// Package mqtttest runs real MQTT brokers for tests: Mosquitto, the NATS
// server's MQTT listener, and a three-node NATS cluster, each a private
// process (or three) on free loopback ports, stopped when the test ends.
// A broker, or one node of the cluster, can be stopped and started again
// on the same port to test outages, with or without persistence across
// the restart.
package mqtttest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"wicket/internal/testkit"
)

// Limits of waiting for the broker process.
const (
	// startTimeout bounds how long a starting broker may take to accept
	// TCP connections; Mosquitto needs milliseconds, a loaded CI machine
	// a few seconds.
	startTimeout = 10 * time.Second
	// stopTimeout is how long Stop waits after SIGTERM (Mosquitto writes
	// its persistence file then) before it kills the process.
	stopTimeout = 5 * time.Second
	// pollEvery is how often a starting broker is probed.
	pollEvery = 10 * time.Millisecond
	// portAttempts bounds retries when another process takes the free
	// port between picking it and the broker binding it.
	portAttempts = 5
)

// debianPath is where the Debian package installs the broker.
const debianPath = "/usr/sbin/mosquitto"

// Option configures StartMosquitto.
type Option func(*options)

type options struct {
	persistence bool
	dir         string
	tls         *TLSFiles
	file        string            // a config file to run instead of the generated one
	set         map[string]string // its options to give other values
}

// TLSFiles are PEM files for a TLS listener that requires a client
// certificate signed by CAFile.
type TLSFiles struct {
	CAFile, CertFile, KeyFile string
}

// TLS makes the listener speak TLS only and require client certificates
// signed by files.CAFile; URL then starts with ssl://.
func TLS(files TLSFiles) Option {
	return func(o *options) { o.tls = &files }
}

// Persistence makes the broker keep sessions, subscriptions and queued
// messages across Stop and Start in dir (a fresh temporary directory when
// dir is ""). Without it a restarted broker starts empty.
func Persistence(dir string) Option {
	return func(o *options) { o.persistence, o.dir = true, dir }
}

// Broker is a running Mosquitto process. Its methods are safe for
// concurrent use.
type Broker struct {
	t       testing.TB
	bin     string
	scheme  string // "" means tcp
	port    int
	dir     string // config and log
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// StartMosquitto starts a broker listening on 127.0.0.1 only, anonymous
// access allowed, and stops it when the test ends. It fails the test when
// the mosquitto binary is missing or the broker does not come up.
func StartMosquitto(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		// Debian installs the daemon in /usr/sbin, often not on a user's PATH.
		if _, serr := os.Stat(debianPath); serr != nil {
			t.Fatalf("mosquitto not found (%v): install the Debian package mosquitto (apt-get install mosquitto)", err)
		}
		bin = debianPath
	}
	dir := t.TempDir()
	if (o.persistence || o.file != "") && o.dir == "" {
		o.dir = t.TempDir()
	}
	b := &Broker{t: t, bin: bin, dir: dir, logPath: filepath.Join(dir, "mosquitto.log")}
	t.Cleanup(b.Stop)
	var lastErr error
	for range portAttempts {
		b.port, err = freePort()
		if err != nil {
			t.Fatalf("mqtttest: pick a port: %v", err)
		}
		if err := b.writeConfig(o); err != nil {
			t.Fatalf("mqtttest: %v", err)
		}
		if lastErr = b.start(); lastErr == nil {
			return b
		}
	}
	t.Fatalf("mqtttest: start mosquitto: %v", lastErr)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (b *Broker) configPath() string { return filepath.Join(b.dir, "broker.conf") }

func (b *Broker) writeConfig(o options) error {
	if o.file != "" {
		return b.writeFileConfig(o)
	}
	var c strings.Builder
	fmt.Fprintf(&c, "listener %d 127.0.0.1\n", b.port)
	c.WriteString("allow_anonymous true\n")
	if o.tls != nil {
		fmt.Fprintf(&c, "cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\ntls_version tlsv1.2\n", o.tls.CAFile, o.tls.CertFile, o.tls.KeyFile)
		b.scheme = "ssl"
	}
	if o.persistence {
		c.WriteString("persistence true\n")
		fmt.Fprintf(&c, "persistence_location %s/\n", o.dir)
	} else {
		c.WriteString("persistence false\n")
	}
	testLines(&c)
	return os.WriteFile(b.configPath(), []byte(c.String()), 0o600)
}

// testLines are the config lines every test broker ends with: log to
// stderr (the log file), and stay root when started as root.
func testLines(c *strings.Builder) {
	c.WriteString("log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n")
	if os.Geteuid() == 0 {
		// Running as root, Mosquitto would switch to the mosquitto user,
		// which cannot write the test's directories.
		c.WriteString("user root\n")
	}
}

// URL is the broker's address for MQTT clients: tcp://127.0.0.1:PORT, or
// ssl://127.0.0.1:PORT with TLS.
func (b *Broker) URL() string {
	if b.scheme != "" {
		return b.scheme + "://" + b.Addr()
	}
	return "tcp://" + b.Addr()
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)) }

// Start starts a stopped broker again on the same port and waits until it
// accepts connections. It does nothing if the broker is running.
func (b *Broker) Start() {
	b.t.Helper()
	if err := b.start(); err != nil {
		b.t.Fatalf("mqtttest: restart mosquitto: %v", err)
	}
}

func (b *Broker) start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(b.bin, "-c", b.configPath())
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	if err := waitAccepting(b.Addr(), done); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%w; broker log:\n%s", err, b.log())
	}
	b.cmd, b.done = cmd, done
	return nil
}

// waitAccepting polls addr until it accepts a TCP connection, the process
// exits (done closes) or startTimeout passes.
func waitAccepting(addr string, done <-chan struct{}) error {
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return errors.New("mosquitto exited while starting")
		case <-deadline.C:
			return fmt.Errorf("mosquitto not accepting on %s after %v: %v", addr, startTimeout, err)
		case <-tick.C:
		}
	}
}

func (b *Broker) log() string {
	data, _ := os.ReadFile(b.logPath)
	return string(bytes.TrimSpace(data))
}

// Stop stops the broker (SIGTERM, so a persistent broker saves its state;
// SIGKILL if it lingers) and waits until it has exited and released the
// port. It does nothing if the broker is stopped.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-b.done:
	case <-t.C:
		_ = b.cmd.Process.Kill()
		<-b.done
	}
	b.cmd, b.done = nil, nil
}

// Kill kills the broker (SIGKILL: no shutdown, nothing saved, as a crash
// or a power cut would) and waits until it has exited. It does nothing if
// the broker is stopped; Start brings it back.
func (b *Broker) Kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	<-b.done
	b.cmd, b.done = nil, nil
}

// Log returns what the broker wrote to its log so far, for failure
// messages.
func (b *Broker) Log() string { return b.log() }

// CPU is the processor time (user and system) the running broker process
// has used so far, from /proc (Linux); 0 when it is not running or that
// cannot be read.
func (b *Broker) CPU() time.Duration {
	b.mu.Lock()
	cmd := b.cmd
	b.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		return 0
	}
	st, _ := testkit.ParseProcStat(raw)
	return st.CPU
}
