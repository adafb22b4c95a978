package thermo

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"wicket/device"
)

// LineSensor reads a thermometer that prints each measurement as a text
// line ("36.6", "T=36.6C", "TEMP 97.9 F") through a device.Source: a
// serial port with device.SerialSource, which reopens the port when it is
// unplugged, or a file or pipe for tests.
type LineSensor struct {
	frames chan device.Scan
	cancel context.CancelFunc
	done   chan struct{} // closed once the source's Run has returned
	err    error         // what Run returned; read only after done
	corr   Correction
}

// NewLineSensor starts src in a goroutine the sensor owns until Close.
// Emissivity does not apply (such a thermometer reports a body
// temperature already); Offset does.
func NewLineSensor(src device.Source, corr Correction) *LineSensor {
	ctx, cancel := context.WithCancel(context.Background())
	s := &LineSensor{frames: make(chan device.Scan, 4), cancel: cancel, done: make(chan struct{}), corr: corr}
	go func() {
		defer close(s.done)
		s.err = src.Run(ctx, s.frames)
	}()
	return s
}

// Read waits for the next line and parses it. Once the source has ended
// it returns an error wrapping ErrFault at once.
func (s *LineSensor) Read(ctx context.Context) (float64, bool, error) {
	select {
	case <-ctx.Done():
		return 0, false, ctx.Err()
	case <-s.done:
		return 0, false, fmt.Errorf("%w: thermometer source ended: %v", ErrFault, s.err)
	case f := <-s.frames:
		c, err := ParseLine(f.Payload)
		if err != nil {
			return 0, false, err
		}
		return check(c + s.corr.Offset)
	}
}

// Close stops the source and waits until its goroutine has ended. It
// returns the error the source ended with, if that was not the stop
// itself; calling it again returns the same.
func (s *LineSensor) Close() error {
	s.cancel()
	<-s.done
	if errors.Is(s.err, context.Canceled) {
		return nil
	}
	return s.err
}

var lineRE = regexp.MustCompile(`(-?\d{1,3}(?:[.,]\d{1,3})?)\s*(?:°|deg|º)?\s*([CcFf])?\b`)

// ParseLine reads the first number of a line as a temperature, in °C
// unless followed by F. A line without a number is a fault.
func ParseLine(b []byte) (float64, error) {
	m := lineRE.FindSubmatch(b)
	if m == nil {
		return 0, fmt.Errorf("%w: thermometer line %q has no temperature", ErrFault, truncate(b))
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(string(m[1]), ",", "."), 64)
	if err != nil {
		return 0, fmt.Errorf("%w: thermometer line %q: %v", ErrFault, truncate(b), err)
	}
	if u := strings.ToUpper(string(m[2])); u == "F" {
		v = (v - 32) * 5 / 9
	}
	return v, nil
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}
