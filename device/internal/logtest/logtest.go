// Package logtest reads what a slog.JSONHandler wrote, for tests that
// check the log lines of a device: each line must be one JSON object
// whose keys are unique, since many log stores refuse or silently drop
// an object with a key twice, and encoding/json would hide it.
package logtest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// Lines parses out, one JSON object per line, and fails the test if a
// line is not a JSON object or repeats a key at any level.
func Lines(t testing.TB, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		if err := uniqueKeys(json.NewDecoder(strings.NewReader(line))); err != nil {
			t.Fatalf("log line %s: %v", line, err)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %s: %v", line, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// Messages returns the msg of each line, in order.
func Messages(lines []map[string]any) []string {
	var msgs []string
	for _, l := range lines {
		msgs = append(msgs, fmt.Sprint(l["msg"]))
	}
	return msgs
}

// uniqueKeys reads one JSON value from d and reports the first object in
// it that has a key twice.
func uniqueKeys(d *json.Decoder) error {
	tok, err := d.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for d.More() {
			k, err := d.Token()
			if err != nil {
				return err
			}
			key := k.(string)
			if seen[key] {
				return fmt.Errorf("key %q twice", key)
			}
			seen[key] = true
			if err := uniqueKeys(d); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
		}
		_, err = d.Token()
		return err
	case json.Delim('['):
		for d.More() {
			if err := uniqueKeys(d); err != nil {
				return err
			}
		}
		_, err = d.Token()
		return err
	}
	return nil
}
