package gate

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestChipPermission: a GPIO chip the user may not open is reported as a
// permission problem with the fix, not as a missing pin.
func TestChipPermission(t *testing.T) {
	err := chipError("/dev/gpiochip0", &fs.PathError{Op: "open", Path: "/dev/gpiochip0", Err: syscall.EACCES})
	want := "permission denied opening /dev/gpiochip0: add the wicket user to the gpio group"
	if !errors.Is(err, ErrGPIO) || err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("chipError(EACCES) = %v; want ErrGPIO saying %q", err, want)
	}
	if err := chipError("/dev/gpiochip0", &fs.PathError{Op: "open", Err: syscall.EBUSY}); err != nil {
		t.Errorf("chipError(EBUSY) = %v; want nil", err)
	}

	dir := t.TempDir()
	chip := filepath.Join(dir, "gpiochip0")
	if err := os.WriteFile(chip, nil, 0o000); err != nil {
		t.Fatal(err)
	}
	err = ChipAccess(filepath.Join(dir, "gpiochip*"))
	if os.Geteuid() == 0 {
		if err != nil {
			t.Errorf("ChipAccess as root = %v; want nil (root opens any file)", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), "permission denied opening "+chip) {
		t.Errorf("ChipAccess(mode 0000 chip) = %v; want permission denied naming %s", err, chip)
	}
}
