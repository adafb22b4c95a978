package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
)

// jsonKeys returns the top-level keys of one JSON line, in order, with
// repeats (encoding/json would silently keep the last).
func jsonKeys(t *testing.T, line string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %q", line)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
	}
	return keys
}

// TestLogOneKeyPerLine: nested components join into one key, a key
// repeated by a call keeps one value, and every JSON line has each key
// once.
func TestLogOneKeyPerLine(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(newLogHandler(&buf, false, false, nil))
	log.With("component", "gate").With("component", "turnstile", "pin", "GPIO17").Warn("relay", "pin", "GPIO27", "err", "x")
	log.With("component", "loop").Info("decision", "component", "hold")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines; want 2:\n%s", len(lines), buf.String())
	}
	for _, l := range lines {
		seen := map[string]bool{}
		for _, k := range jsonKeys(t, l) {
			if seen[k] {
				t.Errorf("key %q twice in %s", k, l)
			}
			seen[k] = true
		}
	}
	var first, second map[string]any
	json.Unmarshal([]byte(lines[0]), &first)
	json.Unmarshal([]byte(lines[1]), &second)
	if first["component"] != "gate/turnstile" || first["pin"] != "GPIO27" || first["err"] != "x" {
		t.Errorf("line 1 = %v; want component gate/turnstile, the call's pin, err", first)
	}
	if second["component"] != "loop/hold" {
		t.Errorf("line 2 component = %v; want loop/hold", second["component"])
	}
}

// TestLogJournalPriority: under the journal each line starts with its
// syslog priority, ALERT lines with 1, so journalctl -p warning shows
// them; without the journal there is no prefix.
func TestLogJournalPriority(t *testing.T) {
	for _, text := range []bool{false, true} {
		var buf bytes.Buffer
		log := slog.New(newLogHandler(&buf, text, true, &slog.HandlerOptions{Level: slog.LevelDebug}))
		log.Debug("d")
		log.Info("i")
		log.Warn("w")
		log.Error("e")
		log.Warn("ALERT", "reason", "colour_red")
		log.Error("ALERT", "reason", "disk_full")
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			got = append(got, l[:3])
		}
		if want := "<7> <6> <4> <3> <1> <1>"; strings.Join(got, " ") != want {
			t.Errorf("text=%v: prefixes %q; want %q", text, strings.Join(got, " "), want)
		}
	}
	var buf bytes.Buffer
	slog.New(newLogHandler(&buf, false, false, nil)).Error("ALERT")
	if !strings.HasPrefix(buf.String(), "{") {
		t.Errorf("without the journal: %q; want a bare JSON line", buf.String())
	}
}

// TestUnderJournal: the prefix is used only when stderr is the stream
// JOURNAL_STREAM names.
func TestUnderJournal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t.Setenv("JOURNAL_STREAM", "")
	if underJournal(f) {
		t.Error("underJournal without JOURNAL_STREAM = true")
	}
	t.Setenv("JOURNAL_STREAM", "1:1")
	if underJournal(f) {
		t.Error("underJournal with another stream's JOURNAL_STREAM = true")
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	if !underJournal(f) {
		t.Error("underJournal with this stream's JOURNAL_STREAM = false")
	}
}
