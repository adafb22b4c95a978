package camera

import "time"

// Bounds and defaults, in one place.
const (
	// DefaultMaxFPS caps how many frames a Source takes per second. A code
	// is shown to the glass for half a second or more; 15 frames a second
	// sees it several times without keeping a small board busy.
	DefaultMaxFPS = 15

	// DefaultRepeatAfter is how long a Source waits before emitting the
	// payload it emitted last again. The decision loop's device.HoldOff is
	// the real hold-off; this only keeps a code held still in front of the
	// camera from sending a scan for every frame.
	DefaultRepeatAfter = time.Second

	// DefaultRetryMin and DefaultRetryMax bound the wait between attempts
	// to reopen a camera that is gone, as for serial scanners.
	DefaultRetryMin = 250 * time.Millisecond
	DefaultRetryMax = 10 * time.Second

	// DefaultStallTimeout is how long an open V4L2 device may deliver no
	// frame before it counts as gone. A camera runs at 5 fps or more, so
	// five seconds of silence means a stalled USB link or driver.
	DefaultStallTimeout = 5 * time.Second

	// DefaultWidth and DefaultHeight are the frame size asked of a camera.
	// 640x480 resolves a voucher code filling a fifth of the frame and
	// decodes in tens of milliseconds on a Raspberry Pi.
	DefaultWidth  = 640
	DefaultHeight = 480

	// MaxFrameSide bounds a frame's width and height: no camera used at a
	// gate delivers more, and larger frames would only slow decoding.
	MaxFrameSide = 4096

	// MaxJPEGSize bounds one JPEG in an MJPEG stream or image file. A
	// 4096x4096 frame at high quality stays well below it.
	MaxJPEGSize = 8 << 20

	// MaxFileFrames bounds the frames a FileFrames holds in memory, at
	// most MaxFrameSide squared bytes each in theory, a few hundred KiB in
	// practice.
	MaxFileFrames = 10000

	// v4l2Buffers is how many mmap'd buffers a V4L2 device streams into:
	// enough for the driver to fill one while another is read, few enough
	// that a frame is never old when it is read.
	v4l2Buffers = 4

	// logEvery rate-limits repeated log lines of one kind: a broken MJPEG
	// stream can fail thirty times a second.
	logEvery = 5 * time.Second
)
