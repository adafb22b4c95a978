package storetest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Disk is a mounted tmpfs of a fixed size.
type Disk struct {
	// Dir is the mount point.
	Dir    string
	filler string
}

// SmallDisk mounts a tmpfs of size bytes on a new temporary directory and
// unmounts it at cleanup. It skips the test where mounting is not allowed
// (not root, or no mount namespace), saying so.
func SmallDisk(tb testing.TB, size int) *Disk {
	tb.Helper()
	dir, err := os.MkdirTemp("", "wicket-fulldisk-")
	if err != nil {
		tb.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		os.Remove(dir)
		tb.Skipf("cannot mount a tmpfs to fill (needs root): %v", err)
	}
	tb.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			tb.Errorf("unmount %s: %v", dir, err)
		}
		os.Remove(dir)
	})
	return &Disk{Dir: dir, filler: filepath.Join(dir, "filler")}
}

// Fill writes a file until the file system has no space left.
func (d *Disk) Fill(tb testing.TB) {
	tb.Helper()
	f, err := os.OpenFile(d.filler, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				tb.Fatalf("fill %s: %v", d.Dir, err)
			}
			return
		}
	}
}

// Free removes what Fill wrote.
func (d *Disk) Free(tb testing.TB) {
	tb.Helper()
	if err := os.Remove(d.filler); err != nil {
		tb.Fatal(err)
	}
}
