package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"wicket/device/gate"
)

// yamlKeys lists the yaml keys of a struct type, recursively, as dotted paths.
func yamlKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		parts := strings.Split(f.Tag.Get("yaml"), ",")
		tag := parts[0]
		if len(parts) > 1 && parts[1] == "inline" {
			keys = append(keys, yamlKeys(f.Type, prefix)...)
			continue
		}
		if tag == "" || tag == "-" {
			continue
		}
		key := prefix + tag
		keys = append(keys, key)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Time{}) {
			keys = append(keys, yamlKeys(f.Type, key+".")...)
		}
	}
	return keys
}

// TestAnnotatedConfig: configs/wicketd.yaml parses and shows every option.
func TestAnnotatedConfig(t *testing.T) {
	data, err := os.ReadFile("../../../configs/wicketd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(data, "/etc/wicket"); err != nil {
		t.Fatalf("configs/wicketd.yaml: %v", err)
	}
	text := string(data)
	for _, k := range yamlKeys(reflect.TypeOf(Config{}), "") {
		leaf := k[strings.LastIndex(k, ".")+1:]
		if !strings.Contains(text, leaf+":") {
			t.Errorf("configs/wicketd.yaml does not show option %s", k)
		}
	}
}

func TestValidate(t *testing.T) {
	base := "gate: {id: G1, venue: V1}\ntrust: {root_keys: [r.pub]}\nscanner: {type: stdin}\nturnstile: {backend: sim}\n"
	for _, tc := range []struct {
		name, yaml, wantErr string
	}{
		{"minimal", base, ""},
		{"unknown key names its line", base + "scanner2: {}\n", "line 5"},
		{"no gate id", "trust: {root_keys: [r.pub]}\n", "gate.id"},
		{"gate id with slash", strings.Replace(base, "id: G1", "id: a/b", 1), "gate.id"},
		{"serial without device", strings.Replace(base, "type: stdin", "type: serial", 1), "scanner.device"},
		{"bad terminator", strings.Replace(base, "type: stdin", "type: stdin, terminator: tab", 1), "scanner.terminator"},
		{"gpio without relay", strings.Replace(base, "backend: sim", "backend: gpio", 1), "turnstile.relay.name"},
		{"level without sensor", strings.Replace(base, "backend: sim", "backend: gpio, mode: level, relay: {name: GPIO17}", 1), "turnstile.mode"},
		{"bad duration", strings.Replace(base, "type: stdin", "type: stdin, hold_off: soon", 1), "line 3"},
		{"policy error", base + "policy: {classes: {child: maybe}}\n", "policy.classes.child"},
		{"camera ok", strings.Replace(base, "type: stdin", "type: camera, camera: {device: /dev/video0}", 1), ""},
		{"camera without device", strings.Replace(base, "type: stdin", "type: camera", 1), "scanner.camera.device"},
		{"camera format", strings.Replace(base, "type: stdin", "type: camera, camera: {device: /dev/video0, format: h264}", 1), "scanner.camera.format"},
		{"camera roi outside", strings.Replace(base, "type: stdin", "type: camera, camera: {device: /dev/video0, roi: [0, 0, 700, 100]}", 1), "scanner.camera.roi"},
		{"pattern name", base + "feedback: {patterns: {party: {green: 'on 1s'}}}\n", "feedback.patterns.party"},
		{"pattern syntax", base + "feedback: {patterns: {allow: {green: 'on'}}}\n", "feedback.patterns.allow"},
		{"dcc without the pseudonym key", base + "policy: {profiles: {dcc: {accept: [test]}}}\n", "trust.dcc_pseudonym_key"},
		{"dcc with the pseudonym key", strings.Replace(base, "[r.pub]}", "[r.pub], dcc_pseudonym_key: dcc.key}", 1) + "policy: {profiles: {dcc: {accept: [test]}}}\n", ""},
		{"pattern ok", base + "feedback: {patterns: {allow: {green: 'on 1s', buzzer: 'on 100ms off 50ms on 100ms'}}}\n", ""},
	} {
		_, err := Parse([]byte(tc.yaml), ".")
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("Parse(%s) = %v; want error containing %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestParseSteps(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		in   string
		want []gate.Step
	}{
		{"", nil},
		{"on 1s", []gate.Step{{On: time.Second}}},
		{"on 100ms off 50ms on 100ms", []gate.Step{{On: 100 * ms, Off: 50 * ms}, {On: 100 * ms}}},
		{"off 250ms on 250ms", []gate.Step{{Off: 250 * ms}, {On: 250 * ms}}},
	} {
		got, err := ParseSteps(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseSteps(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"on", "on fast", "blink 1s", "on -1s"} {
		if _, err := ParseSteps(bad); err == nil {
			t.Errorf("ParseSteps(%q) = nil error", bad)
		}
	}
}
