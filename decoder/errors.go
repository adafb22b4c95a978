package decoder

import "errors"

// Sentinel errors. Each layer of the code returns exactly one of these,
// wrapped with context; callers branch with errors.Is.
var (
	// ErrEmpty: no text at all.
	ErrEmpty = errors.New("empty code")
	// ErrTooLong: the text is longer than MaxTextLen.
	ErrTooLong = errors.New("code too long")
	// ErrPrefix: the text does not start with a known prefix.
	ErrPrefix = errors.New("unknown prefix")
	// ErrBase45: a character outside the base45 alphabet, a length with
	// remainder 1 modulo 3, or a group whose value is out of range.
	ErrBase45 = errors.New("invalid base45")
	// ErrCompression: not a valid zlib stream (header, data or checksum),
	// or bytes after its end.
	ErrCompression = errors.New("invalid zlib stream")
	// ErrTooLarge: the zlib stream inflates to more than MaxDecompressedLen.
	ErrTooLarge = errors.New("decompressed size over limit")
	// ErrCBOR: not well-formed CBOR under the strict rules (duplicate map
	// keys, indefinite lengths, nesting or size limits, trailing bytes).
	ErrCBOR = errors.New("malformed cbor")
	// ErrCOSE: well-formed CBOR that is not a tagged COSE_Sign1 with the
	// header rules of the format.
	ErrCOSE = errors.New("malformed cose_sign1")
	// ErrAlgNotProtected: the alg header is missing from the protected
	// bucket or appears in the unprotected one.
	ErrAlgNotProtected = errors.New("alg not in protected header")
	// ErrUnsupportedAlg: an alg this build does not verify.
	ErrUnsupportedAlg = errors.New("unsupported algorithm")
	// ErrClaims: the payload is not a valid claims map for the format
	// (missing, unknown or ill-typed claims, values out of range).
	ErrClaims = errors.New("invalid claims")
)
