// Package qr turns an image into the text of the QR code it shows, and a text
// into a QR code image, using the gozxing library.
//
// Encode picks the densest mode for the text (alphanumeric for base45
// vouchers) and marks byte-mode texts with their character set, so Decode, or
// any standard reader, returns exactly the bytes that were encoded. A Decoder
// reads camera frames (DecodeGray reads an *image.Gray luminance plane in
// place) with reused buffers, an optional region of interest and downscaling,
// and searches inverted and with global thresholds (the histogram's
// valley, and where finder patterns show also thresholds for a dim code on a
// bright ground and for a blurred one); where it sees
// evidence of a code (finder pattern candidates whose triple or pair shows
// a timing pattern, or a lone one) it retries sharpened and rescaled, and
// tries other
// finder triples with sizes counted along the timing patterns and transforms
// fitted to them, and finder patterns squashed by a steep slant where only
// one or two were found, before giving up; a frame reads a bounded number
// of sampled grids.
// Decoding never panics and reports a missing code as ErrNotFound.
package qr
