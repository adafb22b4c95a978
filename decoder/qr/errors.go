package qr

import "errors"

// Sentinel errors; callers branch on them with errors.Is.
var (
	// ErrNotFound: the image shows no QR code that Decode could locate.
	ErrNotFound = errors.New("no qr code found")
	// ErrUnreadable: a QR code was located but its format information or
	// error correction failed (blur, glare, damage, a partial code).
	ErrUnreadable = errors.New("qr code unreadable")
	// ErrImageTooLarge: the image has more than MaxPixels pixels.
	ErrImageTooLarge = errors.New("image too large")
	// ErrText: the text is empty, longer than MaxTextLen, not valid
	// UTF-8, or too long for a QR code at the requested level.
	ErrText = errors.New("text not encodable")
	// ErrSize: the requested image size is outside [MinSize, MaxSize] or
	// smaller than the code needs.
	ErrSize = errors.New("image size out of range")
	// ErrLevel: an error-correction level other than L, M, Q or H.
	ErrLevel = errors.New("unknown error-correction level")
)
