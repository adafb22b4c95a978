package mqtttest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

const debianNATSPath = "/usr/sbin/nats-server"

// StartNATS starts a NATS server with JetStream and its MQTT listener on
// 127.0.0.1 (a second, real MQTT engine: sessions and retained messages
// live in JetStream streams), and stops it when the test ends. URL and
// Addr are the MQTT listener's. It fails the test when the nats-server
// binary is missing.
func StartNATS(t testing.TB) *Broker {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if _, serr := os.Stat(debianNATSPath); serr != nil {
			t.Fatalf("nats-server not found (%v): install the Debian package nats-server", err)
		}
		bin = debianNATSPath
	}
	dir := t.TempDir()
	store := t.TempDir()
	b := &Broker{t: t, bin: bin, dir: dir, logPath: filepath.Join(dir, "nats.log")}
	t.Cleanup(b.Stop)
	var lastErr error
	for range portAttempts {
		if b.port, err = freePort(); err != nil {
			t.Fatalf("mqtttest: pick a port: %v", err)
		}
		client, err := freePort()
		if err != nil {
			t.Fatalf("mqtttest: pick a port: %v", err)
		}
		conf := fmt.Sprintf("server_name: wicket_test\nlisten: 127.0.0.1:%d\njetstream {\n  store_dir: %q\n}\nmqtt {\n  listen: 127.0.0.1:%d\n}\n", client, store, b.port)
		if err := os.WriteFile(b.configPath(), []byte(conf), 0o600); err != nil {
			t.Fatalf("mqtttest: %v", err)
		}
		if lastErr = b.start(); lastErr == nil {
			return b
		}
	}
	t.Fatalf("mqtttest: start nats-server: %v", lastErr)
	return nil
}
