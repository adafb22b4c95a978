// Package decoder turns the text of a Wicket code into a parsed, not yet
// verified envelope, and back.
//
// A code is PREFIX + base45(zlib(COSE_Sign1(CWT claims))). Every layer is
// strict and bounded: Parse never panics, never allocates more than the limits
// in limits.go allow, and reports each failure as one of the sentinel errors in
// errors.go, which the verifier maps to a reason code. The decoder checks
// structure only; signatures, keys and time are the verifier's job.
//
// The COSE_Sign1 and claims of a voucher as issuers write them are read by
// hand (direct.go), in one pass with no reflection; every other shape goes
// to the strict decoding of the CBOR library, which gives the same result
// on what both read.
package decoder
