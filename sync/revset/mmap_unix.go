//go:build unix

package revset

import (
	"errors"
	"math"
	"os"
	"syscall"
)

func mmapFile(f *os.File, size uint64) ([]byte, error) {
	if size > math.MaxInt32 && math.MaxInt == math.MaxInt32 {
		return nil, errors.New("file larger than a 32-bit mapping")
	}
	return syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
}

func munmapFile(b []byte) { syscall.Munmap(b) }

// adviseRandom turns off read-ahead on the mapping: lookups touch one
// page each, far apart.
func (fl *File) adviseRandom() {
	if fl.data != nil {
		syscall.Madvise(fl.data, syscall.MADV_RANDOM)
	}
}
