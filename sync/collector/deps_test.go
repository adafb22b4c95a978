package collector

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoGateStore: the collector links the wire contract, not the gate's
// store (bbolt).
func TestNoGateStore(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "wicket/sync/collector").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "bbolt") || p == "wicket/sync/store" {
			t.Errorf("collector depends on %s", p)
		}
	}
}
