package decoder

import (
	"errors"
	"strings"
	"testing"
)

// TestBase45Errors: each way a text can fail names its cause and offset.
func TestBase45Errors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"A", "length 1 leaves a single character"},
		{"GGW", "group at offset 0 is 65536, over 65535"},
		{"000GGW", "group at offset 3 is 65536, over 65535"},
		{"000A~B", "character outside alphabet at offset 4"},
		{"~~~", "character outside alphabet at offset 0"},
		{"000a0", "character outside alphabet at offset 3"},
		{"000:Z", "final group at offset 3 is 1619, over 255"},
		{"0000~", "character outside alphabet at offset 4"},
	} {
		_, err := Base45Decode(c.in)
		if !errors.Is(err, ErrBase45) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Base45Decode(%q) = %v; want ErrBase45 with %q", c.in, err, c.want)
		}
	}
	for _, in := range []string{"FGW", "000000", "00000", "U5"} {
		if _, err := Base45Decode(in); err != nil {
			t.Errorf("Base45Decode(%q) = %v; want no error", in, err)
		}
	}
}
