package mqtttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigFile: a config file keeps its lines, with the test's port,
// persistence directory, logging and the options asked for; an option
// asked for that the file lacks is an error.
func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "station.conf")
	conf := "# comment\nlistener 8883\ncertfile /etc/x.pem\nacl_file /etc/acl\npersistence_location /var/lib/m/\nlog_dest syslog\nmax_packet_size 9437184\n"
	if err := os.WriteFile(src, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &Broker{dir: t.TempDir(), port: 4242}
	if err := b.writeFileConfig(options{file: src, dir: "/tmp/p", set: map[string]string{"certfile": "/t/c.pem", "acl_file": "/t/acl"}}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(b.configPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# comment\n", "listener 4242 127.0.0.1\n", "certfile /t/c.pem\n", "acl_file /t/acl\n",
		"persistence_location /tmp/p/\n", "max_packet_size 9437184\n", "log_dest stderr\n"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(string(got), "syslog") || strings.Contains(string(got), "8883") || b.URL() != "ssl://127.0.0.1:4242" {
		t.Errorf("config kept a line it should replace, or URL %s is not ssl://:\n%s", b.URL(), got)
	}
	err = b.writeFileConfig(options{file: src, set: map[string]string{"keyfile": "/t/k.pem"}})
	if err == nil || !strings.Contains(err.Error(), "no keyfile line") {
		t.Errorf("setting an option the file lacks: %v; want an error naming it", err)
	}
}
