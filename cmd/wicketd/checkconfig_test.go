package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"wicket/sync/mqtttest"
)

// checkConfig runs wicketd check-config in-process on the config at
// cfgPath with extra put first (so its lines are numbered from 1) and the
// sections extra writes taken out, and returns the exit code and stderr.
func checkConfig(t *testing.T, cfgPath, extra string, flags ...string) (int, string) {
	t.Helper()
	base, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(filepath.Dir(cfgPath), "check.yaml")
	text := extra
	for _, line := range strings.SplitAfter(string(base), "\n") {
		if key, _, ok := strings.Cut(line, ":"); !ok || !strings.Contains(extra, key+":") {
			text += line
		}
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	rc := dispatch(context.Background(), append(append([]string{"check-config"}, flags...), p), strings.NewReader(""), &stdout, &stderr)
	return rc, stderr.String()
}

// TestCheckConfigFindsWhatRunWould: configs that run fails on (or that
// wire the gate wrongly) are refused by check-config, one line per
// problem, each naming its line and the fix.
func TestCheckConfigFindsWhatRunWould(t *testing.T) {
	dir := t.TempDir()
	cfgPath, _ := gateFiles(t, dir)
	if rc, out := checkConfig(t, cfgPath, ""); rc != exitOK {
		t.Fatalf("check-config on a good config = %d, %s", rc, out)
	}
	os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not a certificate\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "plain"), []byte("x"), 0o644)
	gpio := "turnstile: {backend: gpio, relay: {name: %s}}\n"
	for _, tc := range []struct {
		name, extra string
		want        []string
	}{
		{"missing scanner", "scanner: {type: serial, device: /dev/serial/by-id/usb-nothing}\n", []string{"line 1: scanner.device: /dev/serial/by-id/usb-nothing does not exist"}},
		{"scanner a plain file", "scanner: {type: serial, device: " + filepath.Join(dir, "plain") + "}\n", []string{"line 1: scanner.device: " + filepath.Join(dir, "plain") + " is not a device"}},
		{"odd baud", "scanner: {type: serial, device: /dev/null, baud: 9601}\n", []string{"line 1: scanner.baud: 9601 is not a standard rate", "1200, 2400, 4800, 9600, 19200"}},
		{"camera missing", "scanner: {type: camera, camera: {device: /dev/v4l/by-id/nothing}}\n", []string{"line 1: scanner.camera.device: /dev/v4l/by-id/nothing does not exist"}},
		{"junk CA", "sync: {enabled: true, fleet: f, broker: 'tls://127.0.0.1:8883',\n  ca_file: junk.pem}\n", []string{"line 2: sync.ca_file: ca_file " + filepath.Join(dir, "junk.pem") + ": no PEM certificate"}},
		{"missing CA", "sync: {enabled: true, fleet: f, broker: 'tls://127.0.0.1:8883', ca_file: none.pem}\n", []string{"line 1: sync.ca_file:", "no such file"}},
		{"junk cert", "sync: {enabled: true, fleet: f, broker: 'tls://127.0.0.1:8883', cert_file: junk.pem, key_file: junk.pem}\n", []string{"line 1: sync.cert_file: cert_file/key_file"}},
		{"bare number pin", replaceGPIO(gpio, "'17'"), []string{"line 1: turnstile.relay.name: \"17\" is a bare number; write GPIO17"}},
		{"no such GPIO", replaceGPIO(gpio, "GPIO99"), []string{"line 1: turnstile.relay.name: \"GPIO99\" is not on this board's header"}},
		{"ground pin", replaceGPIO(gpio, "P1_6"), []string{"line 1: turnstile.relay.name: \"P1_6\" is a ground pin"}},
		{"pin used twice", "turnstile:\n  backend: gpio\n  relay: {name: GPIO17}\n  passage: {name: P1_11}\n", []string{"line 4: turnstile.passage.name: P1_11 is GPIO17, already used by turnstile.relay.name"}},
		{"tamper on the relay's pin", "turnstile:\n  backend: gpio\n  relay: {name: GPIO17}\n  tamper: {name: P1_11}\n", []string{"line 4: turnstile.tamper.name: P1_11 is GPIO17, already used by turnstile.relay.name"}},
		{"tamper on a power pin", "turnstile:\n  backend: gpio\n  relay: {name: GPIO17}\n  tamper: {name: P1_2}\n", []string{"line 4: turnstile.tamper.name: \"P1_2\" is a power pin"}},
		{"all at once", "scanner: {type: serial, device: /nothing}\nturnstile: {backend: gpio, relay: {name: P1_1}}\n", []string{"line 1: scanner.device", "line 2: turnstile.relay.name: \"P1_1\" is a power pin"}},
	} {
		rc, out := checkConfig(t, cfgPath, tc.extra)
		if rc != exitUsage {
			t.Errorf("check-config(%s) = %d; want %d\n%s", tc.name, rc, exitUsage, out)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("check-config(%s) says:\n%s\nwant it to say %q", tc.name, out, w)
			}
		}
	}
	os.WriteFile(filepath.Join(dir, "root.pub"), []byte("junk\n"), 0o644)
	if rc, out := checkConfig(t, cfgPath, ""); rc != exitUsage || !strings.Contains(out, "line 2: trust.root_keys[0]: root.pub") {
		t.Errorf("check-config with a junk root.pub = %d, %s; want line 2 named", rc, out)
	}
}

func replaceGPIO(format, name string) string { return strings.Replace(format, "%s", name, 1) }

// TestCheckConfigBroker: the broker is dialled only with -broker; a broker
// that is not there is then a problem naming sync.broker (or, of a
// cluster's nodes, sync.brokers and the node).
func TestCheckConfigBroker(t *testing.T) {
	dir := t.TempDir()
	cfgPath, _ := gateFiles(t, dir)
	b := mqtttest.StartMosquitto(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	syncTo := func(url string) string { return "sync: {enabled: true, fleet: f, broker: '" + url + "'}\n" }
	if rc, out := checkConfig(t, cfgPath, syncTo("tcp://"+closed)); rc != exitOK {
		t.Errorf("check-config without -broker, broker down = %d, %s; want OK", rc, out)
	}
	if rc, out := checkConfig(t, cfgPath, syncTo("tcp://"+closed), "-broker"); rc != exitUsage || !strings.Contains(out, "line 1: sync.broker: "+closed+" is not reachable") {
		t.Errorf("check-config -broker, broker down = %d, %s; want sync.broker not reachable", rc, out)
	}
	if rc, out := checkConfig(t, cfgPath, syncTo(b.URL()), "-broker"); rc != exitOK {
		t.Errorf("check-config -broker, broker up = %d, %s; want OK", rc, out)
	}
	// A cluster: every node is dialled, the one down named.
	nodes := "sync: {enabled: true, fleet: f, brokers: ['" + b.URL() + "', 'tcp://" + closed + "']}\n"
	if rc, out := checkConfig(t, cfgPath, nodes, "-broker"); rc != exitUsage || !strings.Contains(out, "line 1: sync.brokers: "+closed+" is not reachable") {
		t.Errorf("check-config -broker, one node of two down = %d, %s; want sync.brokers, that node not reachable", rc, out)
	}
}

// TestCheckConfigEveryProblem: check-config names every bad value, one
// line each with its line in the file, not only the first; run refuses
// the same config with the same lines.
func TestCheckConfigEveryProblem(t *testing.T) {
	dir := t.TempDir()
	cfgPath, _ := gateFiles(t, dir)
	extra := "scanner:\n  type: serial\n  device: /dev/null\n  baud: 9601\n  max_frame: 10\nlog: {level: loud}\n"
	want := []string{
		": 3 problem(s):\n",
		"\n  line 4: scanner.baud: 9601 is not a standard rate",
		"\n  line 5: scanner.max_frame: 10 is out of range 64..65536\n",
		"\n  line 6: log.level: \"loud\" is not allowed",
	}
	rc, out := checkConfig(t, cfgPath, extra)
	if rc != exitUsage {
		t.Fatalf("check-config = %d; want %d\n%s", rc, exitUsage, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("check-config says:\n%s\nwant it to say %q", out, w)
		}
	}
	var stdout, stderr bytes.Buffer
	rc = dispatch(context.Background(), []string{"run", "-config", filepath.Join(dir, "check.yaml")}, strings.NewReader(""), &stdout, &stderr)
	if rc != exitUsage {
		t.Fatalf("run = %d; want %d\n%s", rc, exitUsage, stderr.String())
	}
	_, runProbs, _ := strings.Cut(stderr.String(), "\n")
	_, checkProbs, _ := strings.Cut(out, "\n")
	if runProbs == "" || runProbs != checkProbs {
		t.Errorf("run says:\n%s\nwant the problem lines of check-config:\n%s", stderr.String(), out)
	}
}
