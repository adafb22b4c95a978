//go:build !linux

package qr

import "time"

var wallStart = time.Now()

// threadCPU falls back to wall time where there is no per-thread CPU
// clock.
func threadCPU() time.Duration { return time.Since(wallStart) }
