//go:build !unix

package revset

import (
	"errors"
	"os"
)

func mmapFile(*os.File, uint64) ([]byte, error) { return nil, errors.New("mmap not supported") }

func munmapFile([]byte) {}

func (fl *File) adviseRandom() {}
