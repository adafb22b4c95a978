package device

import (
	"context"
	"errors"
	"time"
)

// Scan is one complete code read by a scanner.
type Scan struct {
	// Payload is the frame without its terminator and AIM prefix. It is
	// never shared with another Scan and never empty.
	Payload []byte
	// Source names where the scan came from (a device path, a file name).
	Source string
	// At is when the last byte of the frame arrived, from the monotonic
	// clock of the process, so it is safe to compare against other Scans
	// even if the wall clock is stepped.
	At time.Time
	// Symbology is the AIM symbology identifier the scanner sent before the
	// code, without its ']' (for example "Q1" for a QR code), or "" when
	// the source does not strip it or the scanner did not send one.
	Symbology string
}

// Source produces scans. Run delivers scans on out until ctx is done, then
// returns nil; it returns an error only for a failure it cannot recover
// from. Run blocks while out is full. A Source is run at most once at a
// time.
//
// SerialSource and ReaderSource implement it; a camera source decoding QR
// codes from images would too, and its scans would go through the same
// HoldOff.
type Source interface {
	Run(ctx context.Context, out chan<- Scan) error
}

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrFrameTooLong: more than MaxFrame bytes came without a terminator.
	// They are dropped up to the next terminator.
	ErrFrameTooLong = errors.New("frame too long")
	// ErrPartialFrame: a frame stopped arriving midway and was dropped.
	ErrPartialFrame = errors.New("partial frame dropped")
	// ErrDisconnected: the scanner went away (unplugged, read error, hang-up).
	ErrDisconnected = errors.New("scanner disconnected")
	// ErrConfig: a config field is invalid; the message names it.
	ErrConfig = errors.New("invalid config")
)
