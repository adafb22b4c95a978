// Package cameratest provides a FrameSource driven by a test.
package cameratest

import (
	"context"
	"sync/atomic"

	"wicket/device/camera"
)

// Result is what one call of Next returns.
type Result struct {
	Frame camera.Frame
	Err   error
}

// Frames is a camera.FrameSource whose Next returns the Results sent on C.
// Fill a buffered C for a fixed script, or send on an unbuffered one to
// hand frames over one by one.
type Frames struct {
	// C supplies what Next returns. Required.
	C chan Result
	// Calls, if not nil, receives a value each time Next is entered,
	// before it waits on C; a test learns from it that the previous frame
	// has been taken.
	Calls chan struct{}

	active atomic.Int32
	closed atomic.Bool
}

var _ camera.FrameSource = (*Frames)(nil)

// Next returns the next Result from C, or ctx.Err() once ctx is done.
func (f *Frames) Next(ctx context.Context) (camera.Frame, error) {
	f.active.Add(1)
	defer f.active.Add(-1)
	if f.Calls != nil {
		select {
		case f.Calls <- struct{}{}:
		case <-ctx.Done():
			return camera.Frame{}, ctx.Err()
		}
	}
	select {
	case r := <-f.C:
		return r.Frame, r.Err
	case <-ctx.Done():
		return camera.Frame{}, ctx.Err()
	}
}

// Close marks the source closed.
func (f *Frames) Close() error {
	f.closed.Store(true)
	return nil
}

// Closed reports whether Close was called.
func (f *Frames) Closed() bool { return f.closed.Load() }

// Active returns how many calls of Next are in progress.
func (f *Frames) Active() int { return int(f.active.Load()) }
