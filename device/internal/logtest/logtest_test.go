package logtest

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestUniqueKeys(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string // "" for no error
	}{
		{`{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`, ""},
		{`{"component":"scanner","msg":"x","component":"scanner"}`, `key "component" twice`},
		{`{"a":{"b":1,"b":2}}`, `a: key "b" twice`},
		{`{"a":[{"b":1,"b":2}]}`, `a: key "b" twice`},
	} {
		err := uniqueKeys(json.NewDecoder(strings.NewReader(tt.in)))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("uniqueKeys(%s) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
