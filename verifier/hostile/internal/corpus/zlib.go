package corpus

import (
	"bytes"
	"compress/flate"
	"fmt"

	"wicket/decoder"
	"wicket/verifier"
)

// zlibHeader returns a two-byte zlib header with a valid check value for
// the CMF byte and flags (FLEVEL and FDICT bits) given.
func zlibHeader(cmf, flags byte) []byte {
	flg := flags &^ 0x1f
	for fcheck := byte(0); fcheck < 32; fcheck++ {
		if (uint(cmf)<<8|uint(flg|fcheck))%31 == 0 {
			return []byte{cmf, flg | fcheck}
		}
	}
	panic("unreachable")
}

func rawDeflate(b []byte, level int) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, level)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zeros(n int) []byte { return make([]byte, n) }

func (g *gen) zlibCases() {
	Z := LayerZlib
	cose := g.edCOSE(dynClaims().enc())
	z := deflate(cose)
	n := len(z)
	data := z[2 : n-4]
	adler := z[n-4:]

	// Truncation at every point of the header and checksum, and through
	// the deflate data.
	for cut := 0; cut < n; cut++ {
		if cut > 2 && cut < n-4 && (cut-3)%9 != 0 {
			continue
		}
		g.add(Z, fmt.Sprintf("stream cut to %d of %d bytes", cut, n), []byte(wkRaw(z[:cut])), verifier.ReasonBadZlib)
	}
	// Every bit of the Adler-32 checksum.
	for bit := range 32 {
		g.add(Z, fmt.Sprintf("checksum bit %d flipped", bit), []byte(wkRaw(cat(z[:n-4], flipBit(adler, bit)))), verifier.ReasonBadZlib)
	}
	g.add(Z, "checksum zeroed", []byte(wkRaw(cat(z[:n-4], zeros(4)))), verifier.ReasonBadZlib)
	g.add(Z, "checksum of the compressed bytes", []byte(wkRaw(cat(z[:n-4], adler32Of(z[:n-4])))), verifier.ReasonBadZlib)
	// Bits of the deflate data: the reference inflater decides whether
	// the stream breaks or the checksum catches it.
	for i := range 24 {
		bit := g.rng.IntN(len(data) * 8)
		t := wkRaw(cat(z[:2], flipBit(data, bit), adler))
		g.addOracle(Z, fmt.Sprintf("deflate data bit %d flipped (%d)", bit, i), t, decoder.Prefix)
	}
	// Trailing bytes after the checksum.
	for _, tail := range [][]byte{{0}, {0, 0}, {0xff}, {0x78}, {0x78, 0xda}, zeros(8), []byte("WK1:"), z} {
		g.add(Z, fmt.Sprintf("%d trailing bytes % x", len(tail), tail[:min(4, len(tail))]), []byte(wkRaw(cat(z, tail))), verifier.ReasonBadZlib)
	}
	// Headers: compression method, window size, check bits, preset
	// dictionary, other formats.
	for _, cmf := range []byte{0x70, 0x71, 0x77, 0x7f, 0x0f, 0x79} {
		g.add(Z, fmt.Sprintf("compression method %d (CMF %02x)", cmf&0x0f, cmf), []byte(wkRaw(cat(zlibHeader(cmf, 0xc0), data, adler))), verifier.ReasonBadZlib)
	}
	for _, cmf := range []byte{0x88, 0xf8, 0x98} {
		g.add(Z, fmt.Sprintf("window size field %d", cmf>>4), []byte(wkRaw(cat(zlibHeader(cmf, 0xc0), data, adler))), verifier.ReasonBadZlib)
	}
	for _, flg := range []byte{0x00, 0x01, 0xdb, 0x9d, 0xff} {
		if (0x78<<8|uint(flg))%31 == 0 {
			continue
		}
		g.add(Z, fmt.Sprintf("header check bits wrong (78 %02x)", flg), []byte(wkRaw(cat([]byte{0x78, flg}, data, adler))), verifier.ReasonBadZlib)
	}
	g.add(Z, "preset dictionary flag", []byte(wkRaw(cat(zlibHeader(0x78, 0xe0), []byte{0x12, 0x34, 0x56, 0x78}, data, adler))), verifier.ReasonBadZlib)
	g.add(Z, "preset dictionary flag, no dictionary id", []byte(wkRaw(cat(zlibHeader(0x78, 0xe0), data, adler))), verifier.ReasonBadZlib)
	g.add(Z, "gzip member", []byte(wkRaw(cat([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, rawDeflate(cose, 9), adler, zeros(4)))), verifier.ReasonBadZlib)
	g.addOracle(Z, "raw deflate without zlib header", wkRaw(rawDeflate(cose, 9)), decoder.Prefix)
	g.add(Z, "COSE bytes not compressed", []byte(wkRaw(cose)), verifier.ReasonBadZlib)
	g.add(Z, "reserved block type 3", []byte(wkRaw(cat(zlibHeader(0x78, 0xc0), []byte{0x07, 0, 0}, adler))), verifier.ReasonBadZlib)
	g.add(Z, "stored block with a bad length complement", []byte(wkRaw(cat(zlibHeader(0x78, 0x00), []byte{0x01, 0x04, 0x00, 0x00, 0x00}, []byte("abcd"), adler))), verifier.ReasonBadZlib)
	g.add(Z, "stored block longer than the data", []byte(wkRaw(cat(zlibHeader(0x78, 0x00), []byte{0x01, 0xff, 0x00, 0x00, 0xff}, cose))), verifier.ReasonBadZlib)
	g.add(Z, "non-final block and nothing after it", []byte(wkRaw(cat(zlibHeader(0x78, 0x00), []byte{0x00, 0x00, 0x00, 0xff, 0xff}))), verifier.ReasonBadZlib)
	g.addOracle(Z, "dynamic block with garbage code lengths", wkRaw(cat(zlibHeader(0x78, 0xc0), []byte{0x05, 0xe0, 0xff, 0xff, 0xff}, adler)), decoder.Prefix)

	// Bombs: streams that inflate past 16 KiB. The gate stops at the
	// bound, so the checksum and trailing bytes are never reached.
	for _, size := range []int{maxInflate + 1, maxInflate + 2, maxInflate + 1000, 32 << 10, 64 << 10, 1 << 20, 2 << 20, 5 << 19} {
		g.add(Z, fmt.Sprintf("bomb of %d zero bytes", size), []byte(wkRaw(deflate(zeros(size)))), verifier.ReasonTooLarge)
	}
	g.add(Z, "bomb of 1 MiB of 0xff", []byte(wkRaw(deflate(bytes.Repeat([]byte{0xff}, 1<<20)))), verifier.ReasonTooLarge)
	g.add(Z, "bomb of a repeated valid voucher", []byte(wkRaw(deflate(bytes.Repeat(cose, 300)))), verifier.ReasonTooLarge)
	padded := cat(cose, zeros(1<<20))
	g.add(Z, "valid COSE followed by 1 MiB of zeros", []byte(wkRaw(deflate(padded))), verifier.ReasonTooLarge)
	g.add(Z, "valid COSE padded to 16385 bytes", []byte(wkRaw(deflate(cat(cose, zeros(maxInflate+1-len(cose)))))), verifier.ReasonTooLarge)
	bomb := deflate(zeros(1 << 20))
	g.add(Z, "bomb with a bad checksum", []byte(wkRaw(cat(bomb[:len(bomb)-4], zeros(4)))), verifier.ReasonTooLarge)
	g.add(Z, "bomb with trailing bytes", []byte(wkRaw(cat(bomb, []byte{1, 2, 3}))), verifier.ReasonTooLarge)
	g.add(Z, "bomb cut before its checksum", []byte(wkRaw(bomb[:len(bomb)-4])), verifier.ReasonTooLarge)
	g.add(Z, "bomb of stored and compressed blocks", []byte(wkRaw(deflate(cat(cose, bytes.Repeat([]byte("WK1:"), 8192))))), verifier.ReasonTooLarge)
	// At the bound itself the stream inflates; what it holds is then
	// refused as CBOR.
	g.add(Z, "valid COSE padded to exactly 16384 bytes", []byte(wkRaw(deflate(cat(cose, zeros(maxInflate-len(cose)))))), verifier.ReasonBadCBOR)
	g.add(Z, "exactly 16384 zero bytes", []byte(wkRaw(deflate(zeros(maxInflate)))), verifier.ReasonBadCBOR)
}

// adler32Of is the Adler-32 of b, big-endian.
func adler32Of(b []byte) []byte {
	var a, s uint32 = 1, 0
	for _, c := range b {
		a = (a + uint32(c)) % 65521
		s = (s + a) % 65521
	}
	v := s<<16 | a
	return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}
