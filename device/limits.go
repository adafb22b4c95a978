package device

import "time"

// Bounds and defaults for scan sources, in one place.
const (
	// DefaultMaxFrame bounds one frame. A version-40 QR code holds at most
	// 4296 alphanumeric characters; with a 3-byte AIM prefix and some slack
	// no genuine read is longer.
	DefaultMaxFrame = 4352

	// MaxFrameLimit is the largest MaxFrame a config may ask for: a frame is
	// buffered whole, and nothing a gate scans comes near 64 KiB.
	MaxFrameLimit = 64 << 10

	// DefaultInterByteTimeout is how long a partial frame may wait for its
	// next byte. A scanner sends a code in one burst, about a millisecond
	// per byte even at 9600 baud, so half a second of silence means the rest
	// is not coming. Shorter cut a code in two on a stalled board
	// (docs/BENCHMARKS.md, "Scan to relay on SD-class storage").
	DefaultInterByteTimeout = 500 * time.Millisecond

	// DefaultBaud is the line speed of a SerialConfig without one: the
	// factory setting of most scanners.
	DefaultBaud = 9600

	// DefaultReadTimeout is how long one serial read waits for data before
	// Run checks its context again. termios counts in tenths of a second, so
	// 100 ms is also the smallest possible value.
	DefaultReadTimeout = 100 * time.Millisecond

	// DefaultRetryMin and DefaultRetryMax bound the wait between attempts
	// to reopen a scanner that is gone: quick enough to resume right after
	// a re-plug, slow enough not to spin on a dead port.
	DefaultRetryMin = 250 * time.Millisecond
	DefaultRetryMax = 10 * time.Second

	// DefaultHoldOffWindow is how long a code must be out of sight before
	// it counts as a new scan. Scanners re-read a code every few hundred
	// milliseconds while it is held in front of them, a camera source every
	// second (camera.DefaultRepeatAfter): three seconds keeps a held code
	// held across two missed reads.
	DefaultHoldOffWindow = 3 * time.Second

	// DefaultHoldOffSize is how many recent codes HoldOff remembers: a
	// queue of a few people presenting in turn within one window, with room
	// to spare. A code forgotten while still held gives a second decision;
	// remembering one more costs 16 bytes.
	DefaultHoldOffSize = 16

	// previewLen bounds the bytes of dropped input kept in a Frame for logs.
	previewLen = 32

	// readChunk is the buffer for one read from a scanner or file.
	readChunk = 512

	// logEvery rate-limits repeated log lines of one kind per source: a
	// scanner can repeat a bad code ten times a second.
	logEvery = 5 * time.Second

	// maxFastEOF is how many zero-byte reads in a row that return well
	// before ReadTimeout mean the line is hung up (an unplugged USB serial
	// device reads as end of file at once, forever).
	maxFastEOF = 3
)
