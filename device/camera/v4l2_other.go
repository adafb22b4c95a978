//go:build !linux

package camera

import (
	"context"
	"fmt"
	"log/slog"
)

// V4L2 is a Video4Linux camera; it exists on Linux only.
type V4L2 struct{}

// OpenV4L2 fails with ErrUnsupported: V4L2 exists on Linux only.
func OpenV4L2(cfg V4L2Config, log *slog.Logger) (*V4L2, error) {
	return nil, fmt.Errorf("%w: V4L2 cameras work on Linux only", ErrUnsupported)
}

// Next never returns a frame.
func (v *V4L2) Next(ctx context.Context) (Frame, error) { return Frame{}, ErrUnsupported }

// Close does nothing.
func (v *V4L2) Close() error { return nil }
