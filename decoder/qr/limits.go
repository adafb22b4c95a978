package qr

// Bounds for the images and texts this package handles.
const (
	// MaxTextLen bounds the text given to Encode: a version-40 QR code at
	// level L holds at most 4296 alphanumeric characters.
	MaxTextLen = 4296

	// MinSize is the smallest image Encode draws: a version-1 code (21
	// modules) with its quiet zone of 4 modules on each side, one pixel a
	// module. Anything smaller cannot hold any QR code.
	MinSize = 21 + 2*QuietZone

	// MaxSize bounds the side of an image Encode draws. 4096 pixels is a
	// 35 cm square at 300 dpi, more than any print or screen needs, and the
	// image stays at 16 MiB.
	MaxSize = 4096

	// QuietZone is the white margin around every code Encode draws, in
	// modules; ISO/IEC 18004 asks for 4.
	QuietZone = 4

	// MaxPixels bounds the images Decode accepts. A gate camera delivers at
	// most 1920×1080 (2 MP); 16 MP leaves room for phone photos while
	// keeping the luminance buffer and bit matrix near 20 MiB.
	MaxPixels = 16 << 20

	// minDecodeSide is the smallest width or height that can show a QR
	// code: 21 modules of one pixel each, without a quiet zone.
	minDecodeSide = 21
)
