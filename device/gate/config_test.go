package gate

import (
	"errors"
	"testing"
)

// TestRelayModeText: a relay mode reads back as written, and a mode
// outside the two is refused rather than written out.
func TestRelayModeText(t *testing.T) {
	for _, m := range []RelayMode{RelayPulse, RelayLevel} {
		b, err := m.MarshalText()
		if err != nil {
			t.Fatalf("MarshalText(%v) = %v", m, err)
		}
		var got RelayMode
		if err := got.UnmarshalText(b); err != nil || got != m {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", b, got, err, m)
		}
	}
	if b, err := RelayMode(7).MarshalText(); !errors.Is(err, ErrConfig) {
		t.Errorf("MarshalText(RelayMode(7)) = %q, %v; want ErrConfig", b, err)
	}
	var m RelayMode
	if err := m.UnmarshalText([]byte("toggle")); !errors.Is(err, ErrConfig) {
		t.Errorf("UnmarshalText(%q) = %v; want ErrConfig", "toggle", err)
	}
}
