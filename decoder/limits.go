package decoder

// Hard bounds for everything the decoder reads. They are set from what a QR
// code can carry and what a gate's CPU and memory can afford; an input over a
// bound is refused before any further work is done.
const (
	// MaxTextLen bounds the scanned text. A version-40 QR code holds at most
	// 4296 alphanumeric characters, so nothing longer came from one.
	MaxTextLen = 4296

	// MaxCompressedLen bounds the bytes after base45: 2/3 of MaxTextLen.
	MaxCompressedLen = MaxTextLen / 3 * 2

	// MaxDecompressedLen caps what zlib may inflate to. A voucher's COSE
	// structure is a few hundred bytes; 16 KiB leaves room for future claims
	// while stopping a zlib bomb (ratios over 1000:1 are easy) early.
	MaxDecompressedLen = 16 << 10

	// MaxNesting bounds CBOR nesting: COSE array → header or claims map →
	// voucher map → test array is 4 levels; 8 leaves headroom for headers.
	MaxNesting = 8

	// MaxArrayElements and MaxMapPairs bound every CBOR array and map.
	// Claims maps have about a dozen entries; the smallest limit the CBOR
	// library allows is 16. Key sets and batches use their own limits.
	MaxArrayElements = 16
	MaxMapPairs      = 32

	// MaxKidLen bounds a key id. Wicket kids are 8 bytes; other schemes use
	// up to 32 (a SHA-256), so anything longer is not a kid.
	MaxKidLen = 32

	// MaxIssuerLen and MaxNameLen bound text claims (bytes of UTF-8).
	// A masked Chinese name of four characters is 12 bytes.
	MaxIssuerLen = 64
	MaxNameLen   = 64

	// VoucherID and subject pseudonym lengths: at least 8 bytes so random
	// ids don't collide, at most 32 (a SHA-256).
	MinIDLen = 8
	MaxIDLen = 32

	// MaxTrustDocLen bounds a signed key set or batch file or message. A
	// batch of MaxTrustListLen revocations of 16-byte ids is about 1.3 MiB.
	MaxTrustDocLen = 8 << 20

	// MaxTrustListLen bounds the entries of one key set or batch. Larger
	// revocation lists are split into several batches.
	MaxTrustListLen = 1 << 16
)
