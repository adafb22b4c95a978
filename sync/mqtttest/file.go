package mqtttest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ConfigFile runs the broker with a config file of our own, such as the
// shipped configs/mosquitto/station.conf, so that a test exercises the
// file as shipped. Only what cannot work in a test changes:
//
//   - every listener line becomes the test's port on 127.0.0.1 (the file
//     should have one listener);
//   - persistence_location becomes the Persistence dir, or a temporary
//     one;
//   - log_dest, pid_file and user lines give way to the test's logging
//     (and user root when running as root);
//   - each option named in set takes its value from set instead (paths
//     of certificates, key and ACL file). Every option in set must occur
//     in the file, so a test notices when the shipped file loses one.
//
// URL starts with ssl:// when the file sets a certfile.
func ConfigFile(path string, set map[string]string) Option {
	return func(o *options) { o.file, o.set = path, set }
}

func (b *Broker) writeFileConfig(o options) error {
	data, err := os.ReadFile(o.file)
	if err != nil {
		return err
	}
	var c strings.Builder
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, _, _ := strings.Cut(line, " ")
		if v, ok := o.set[name]; ok {
			seen[name] = true
			line = name + " " + v
		}
		switch name {
		case "listener":
			line = "listener " + strconv.Itoa(b.port) + " 127.0.0.1"
		case "persistence_location":
			line = "persistence_location " + o.dir + "/"
		case "log_dest", "pid_file", "user":
			continue
		case "certfile":
			b.scheme = "ssl"
		}
		c.WriteString(line + "\n")
	}
	if err := sc.Err(); err != nil {
		return err
	}
	for name := range o.set {
		if !seen[name] {
			return fmt.Errorf("%s: no %s line to set", o.file, name)
		}
	}
	testLines(&c)
	return os.WriteFile(b.configPath(), []byte(c.String()), 0o600)
}
