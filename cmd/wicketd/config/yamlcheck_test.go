package config

import (
	"strings"
	"testing"
)

// TestParseProblems: YAML mistakes are reported at their own line, in
// plain words, never with Go type names.
func TestParseProblems(t *testing.T) {
	const head = "gate: {id: G1, venue: V1}\ntrust: {root_keys: [r.pub]}\nturnstile: {backend: sim}\n"
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"tab", head + "scanner:\n\ttype: stdin\n", []string{"line 5: a tab is used for indentation; YAML needs spaces"}},
		{"over-indented key", head + "scanner:\n  type: serial\n    device: /dev/ttyUSB0\n", []string{"line 6: this key is indented further"}},
		{"over-indented under an empty key", head + "scanner:\n  type: stdin\n  device:\n      baud: 9600\n", []string{"line 7: scanner.device: a single value goes here, not a section of keys; is a key under it indented too far?"}},
		{"typo in a section", head + "scanner:\n  type: stdin\n  devce: /dev/ttyUSB0\n", []string{`line 6: scanner: unknown key "devce"; did you mean "device"?`}},
		{"typo at the top", head + "scaner:\n  type: stdin\n", []string{`line 4: unknown key "scaner"; did you mean "scanner"?`}},
		{"no near key", head + "scanner: {type: stdin, colour: red}\n", []string{`line 4: scanner: unknown key "colour"; see configs/wicketd.yaml`}},
		{"duration without unit", head + "scanner:\n  type: stdin\n  hold_off: 3\n", []string{"line 6: scanner.hold_off: 3 is not a duration; write e.g. 3s or 500ms"}},
		{"word for a number", head + "scanner:\n  type: stdin\n  baud: fast\n", []string{"line 6: scanner.baud: fast is not a whole number"}},
		{"scalar for a section", head + "scanner: serial\n", []string{"line 4: scanner: a section of keys goes here"}},
		{"two problems", head + "scanner:\n  type: stdin\n  hold_off: 3\n  baudd: 9600\n", []string{"line 6: scanner.hold_off", `line 7: scanner: unknown key "baudd"; did you mean "baud"?`}},
		{"section written twice", head + "scanner: {type: stdin}\nscanner: {hold_off: 1s}\n", []string{"line 5: scanner: already written at line 4"}},
		{"validation names the line", head + "scanner:\n  type: tape\n", []string{"line 5: scanner.type: \"tape\" is not allowed"}},
		{"a type's own parse error names the line", head + "scanner:\n  type: stdin\n  terminator: tab\n", []string{"line 6: scanner.terminator: terminator \"tab\": use cr, lf or crlf"}},
	} {
		_, err := Parse([]byte(tc.yaml), ".")
		if err == nil {
			t.Errorf("Parse(%s) = nil; want %q", tc.name, tc.want)
			continue
		}
		got := err.Error()
		lines := strings.Split(got, "\n")
		if len(lines) != len(tc.want) {
			t.Errorf("Parse(%s) = %d problems:\n%s\nwant %d", tc.name, len(lines), got, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if !strings.HasPrefix(lines[i], w) {
				t.Errorf("Parse(%s) problem %d = %q; want it to start %q", tc.name, i, lines[i], w)
			}
		}
		for _, goType := range []string{"config.", "!!int", "time.Duration", "cannot unmarshal", "cannot start any token"} {
			if strings.Contains(got, goType) {
				t.Errorf("Parse(%s) = %q; names %q", tc.name, got, goType)
			}
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"devce", "device", 1}, {"baud", "baud", 0}, {"kitten", "sitting", 3}, {"", "abc", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d; want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// FuzzParse: no config text makes Parse panic; what it refuses comes with
// at least one problem.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"gate: {id: G1, venue: V1}\ntrust: {root_keys: [r.pub]}\nscanner: {type: stdin}\nturnstile: {backend: sim}\n",
		"scanner:\n\ttype: stdin\n",
		"scanner:\n  type: serial\n    device: /dev/x\n",
		"a: &x {b: *x}\n",
		"policy: {profiles: {dcc: [1, {a: b}]}}\nscanner: [1]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := Parse(data, "."); err != nil && err.Error() == "" {
			t.Errorf("Parse(%q) = an error without words", data)
		}
	})
}
