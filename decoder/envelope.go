package decoder

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// Prefix starts the text of every Wicket voucher (version 1 of the format).
const Prefix = "WK1:"

// COSE algorithm identifiers (RFC 9053) the format allows.
type Alg int64

const (
	AlgEdDSA Alg = -8 // Ed25519 (RFC 8032)
	AlgES256 Alg = -7 // ECDSA P-256 with SHA-256, signature r||s
	// AlgPS256 is RSASSA-PSS with SHA-256 (RFC 8230), used by EU DCC
	// signers; Wicket vouchers never use it.
	AlgPS256 Alg = -37
)

func (a Alg) String() string {
	switch a {
	case AlgEdDSA:
		return "EdDSA"
	case AlgES256:
		return "ES256"
	case AlgPS256:
		return "PS256"
	}
	return fmt.Sprintf("alg(%d)", int64(a))
}

// ParseAlg reads an algorithm name as String prints it.
func ParseAlg(s string) (Alg, error) {
	switch s {
	case "EdDSA", "eddsa", "Ed25519", "ed25519":
		return AlgEdDSA, nil
	case "ES256", "es256":
		return AlgES256, nil
	}
	return 0, fmt.Errorf("%w: %q (want EdDSA or ES256)", ErrUnsupportedAlg, s)
}

// COSE header labels (RFC 9052 section 3.1).
const (
	labelAlg  = 1
	labelCrit = 2
	labelKid  = 4
)

// coseSign1Tag is the CBOR tag of a COSE_Sign1 message.
const coseSign1Tag = 18

// Sign1 is a parsed COSE_Sign1 message. Its byte slices are its own copies.
type Sign1 struct {
	// Protected is the serialized protected header, as signed.
	Protected []byte
	// Alg comes from the protected header (for an EU DCC without one,
	// from the unprotected header: see ParseSign1DCC).
	Alg Alg
	// Kid is the protected kid if there is one, else the unprotected one,
	// else nil. It is a lookup hint, not a proof of anything.
	Kid []byte
	// Payload is the signed content (a CBOR claims map for a voucher).
	Payload []byte
	// Signature is the raw signature (64 bytes for both algorithms).
	Signature []byte
}

// header is the part of a COSE header map the format reads. Other labels
// are ignored, except crit, which makes the message unacceptable.
type header struct {
	Alg  *int64          `cbor:"1,keyasint,omitempty"`
	Crit cbor.RawMessage `cbor:"2,keyasint,omitempty"`
	Kid  []byte          `cbor:"4,keyasint,omitempty"`
}

type sign1Array struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected cbor.RawMessage
	Payload     []byte
	Signature   []byte
}

// ParseSign1 parses a tagged COSE_Sign1 message. The alg must be in the
// protected header and must not be in the unprotected one, and be EdDSA,
// ES256 or PS256 (each profile narrows this); a crit header is refused
// because no profile defines critical extensions; the payload must be
// embedded (not detached).
func ParseSign1(data []byte) (*Sign1, error) {
	s := new(Sign1)
	if parseSign1Direct(s, data) {
		s.own()
		return s, nil
	}
	if err := parseSign1General(s, data); err != nil {
		return nil, err
	}
	return s, nil
}

// own makes the byte slices of s copies of their own, in one allocation.
func (s *Sign1) own() {
	buf := make([]byte, 0, len(s.Protected)+len(s.Kid)+len(s.Payload)+len(s.Signature))
	for _, p := range []*[]byte{&s.Protected, &s.Kid, &s.Payload, &s.Signature} {
		if *p != nil {
			start := len(buf)
			buf = append(buf, *p...)
			*p = buf[start:len(buf):len(buf)]
		}
	}
}

// parseSign1 is ParseSign1 into dst, with dst's byte slices pointing into
// data when the message has the shape of a voucher's (parseSign1Direct).
func parseSign1(dst *Sign1, data []byte) error {
	if parseSign1Direct(dst, data) {
		return nil
	}
	return parseSign1General(dst, data)
}

// parseSign1General is parseSign1 by the CBOR library, for any message.
func parseSign1General(dst *Sign1, data []byte) error {
	if err := CheckHeads(data); err != nil {
		return err
	}
	if data[0] != 0xd2 {
		// Broken CBOR rules (an indefinite length, deep nesting) are
		// reported before the missing tag. A tagged message is checked
		// once, by the decoding of its array.
		if err := wellformed.Wellformed(data); err != nil {
			return classify(err, ErrCOSE)
		}
		return fmt.Errorf("%w: not a COSE_Sign1 tagged 18 (0xd2)", ErrCOSE)
	}
	return parseSign1Array(dst, data, data[1:], false)
}

// cwtTag is the CBOR tag of a CWT (RFC 8392 section 6): some EU DCC
// issuers wrap the COSE_Sign1 in it.
const cwtTag = 61

// ParseSign1DCC parses a COSE_Sign1 as EU DCC issuers write it: tagged 18,
// untagged, or inside a CWT tag 61 (0xd8 0x3d); and with alg in the
// unprotected header when the protected one has none. An alg in both
// headers, a crit header and a detached payload are refused as by
// ParseSign1. Wicket vouchers never go through here.
func ParseSign1DCC(data []byte) (*Sign1, error) {
	if err := CheckHeads(data); err != nil {
		return nil, err
	}
	msg := data
	if len(data) > 2 && data[0] == 0xd8 && data[1] == cwtTag {
		data = data[2:]
	}
	if data[0] == 0xd2 {
		data = data[1:]
	}
	s := new(Sign1)
	if err := parseSign1Array(s, msg, data, true); err != nil {
		return nil, err
	}
	return s, nil
}

// sign1State is what parseSign1Array decodes into, pooled: the decoder
// needs it on the heap. It is zeroed after each use; only its byte
// slices, fresh copies made by the decoding, outlive it.
type sign1State struct {
	arr          sign1Array
	prot, unprot header
}

var sign1States = sync.Pool{New: func() any { return new(sign1State) }}

// parseSign1Array parses the four-element COSE_Sign1 array data of the
// message msg (data without its tags). unprotectedAlg lets the alg come
// from the unprotected header when the protected one has none (EU DCCs
// only).
func parseSign1Array(dst *Sign1, msg, data []byte, unprotectedAlg bool) error {
	st := sign1States.Get().(*sign1State)
	defer func() {
		*st = sign1State{}
		sign1States.Put(st)
	}()
	arr, prot, unprot := &st.arr, &st.prot, &st.unprot
	if err := headers.Unmarshal(data, arr); err != nil {
		// The decoding checked the CBOR rules with tags forbidden. When
		// the message also breaks a rule that holds with tags allowed
		// (nesting, indefinite lengths), that is the reason, as it would
		// be for a message with no tag.
		if werr := wellformed.Wellformed(msg); werr != nil {
			err = werr
		}
		return classify(err, ErrCOSE)
	}
	if arr.Payload == nil {
		return fmt.Errorf("%w: detached or missing payload", ErrCOSE)
	}
	if len(arr.Unprotected) == 0 || arr.Unprotected[0]>>5 != 5 {
		return fmt.Errorf("%w: unprotected header is not a map", ErrCOSE)
	}
	// The protected header is CBOR inside a byte string: walk it too
	// (the message's walk checked the unprotected one).
	if len(arr.Protected) > 0 {
		if err := CheckHeads(arr.Protected); err != nil {
			return fmt.Errorf("protected header: %w", err)
		}
	}
	if len(arr.Protected) > 0 {
		if err := headers.Unmarshal(arr.Protected, prot); err != nil {
			return fmt.Errorf("protected header: %w", classify(err, ErrCOSE))
		}
	}
	if err := headers.Unmarshal(arr.Unprotected, unprot); err != nil {
		return fmt.Errorf("unprotected header: %w", classify(err, ErrCOSE))
	}
	algp := prot.Alg
	switch {
	case unprot.Alg != nil && (prot.Alg != nil || !unprotectedAlg):
		return fmt.Errorf("%w: alg in unprotected header", ErrAlgNotProtected)
	case unprot.Alg != nil:
		algp = unprot.Alg
	case prot.Alg == nil:
		return fmt.Errorf("%w: no alg in protected header", ErrAlgNotProtected)
	}
	if prot.Crit != nil || unprot.Crit != nil {
		return fmt.Errorf("%w: crit header not supported", ErrCOSE)
	}
	alg := Alg(*algp)
	if alg != AlgEdDSA && alg != AlgES256 && alg != AlgPS256 {
		return fmt.Errorf("%w: %v", ErrUnsupportedAlg, alg)
	}
	kid := prot.Kid
	if kid == nil {
		kid = unprot.Kid
	}
	if len(kid) > MaxKidLen {
		return fmt.Errorf("%w: kid of %d bytes, over %d", ErrCOSE, len(kid), MaxKidLen)
	}
	*dst = Sign1{Protected: arr.Protected, Alg: alg, Kid: kid, Payload: arr.Payload, Signature: arr.Signature}
	return nil
}

// ToBeSigned returns the Sig_structure of RFC 9052 section 4.4 for a
// COSE_Sign1 with an empty external_aad:
// ["Signature1", protected, external_aad (an empty byte string), payload].
func (s *Sign1) ToBeSigned() []byte {
	return AppendToBeSigned(nil, s.Protected, s.Payload)
}

// AppendToBeSigned appends the Sig_structure of a COSE_Sign1 to dst.
func AppendToBeSigned(dst, protected, payload []byte) []byte {
	// Array and context heads, two byte string heads of up to 5 bytes
	// and the empty external_aad: one allocation at most.
	dst = slices.Grow(dst, 2+len("Signature1")+5+len(protected)+1+5+len(payload))
	dst = append(dst, 0x84, 0x6a)
	dst = append(dst, "Signature1"...)
	dst = appendBstr(dst, protected)
	dst = append(dst, 0x40)
	return appendBstr(dst, payload)
}

func appendBstr(dst, b []byte) []byte {
	n := uint64(len(b))
	switch {
	case n < 24:
		dst = append(dst, 0x40|byte(n))
	case n <= 0xff:
		dst = append(dst, 0x58, byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x59, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x5a, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, b...)
}

// inflaters reuse zlib readers: a new one allocates about 40 KiB of tables.
var inflaters = sync.Pool{New: func() any { return new(inflater) }}

type inflater struct {
	src bytes.Reader
	zr  io.ReadCloser
	// compressed and inflated hold Unwrap's base45-decoded and inflated
	// bytes between uses.
	compressed, inflated []byte
}

// Inflate decompresses one zlib stream (RFC 1950) and appends it to dst. It
// reads to the end of the stream so the Adler-32 checksum is checked, refuses
// bytes after the end, and stops with ErrTooLarge once the output would pass
// limit bytes, without inflating the rest.
func Inflate(dst, src []byte, limit int) ([]byte, error) {
	z := inflaters.Get().(*inflater)
	defer inflaters.Put(z)
	return z.inflate(dst, src, limit)
}

func (z *inflater) inflate(dst, src []byte, limit int) ([]byte, error) {
	z.src.Reset(src)
	defer z.src.Reset(nil)
	var err error
	if z.zr == nil {
		z.zr, err = zlib.NewReader(&z.src)
	} else {
		err = z.zr.(zlib.Resetter).Reset(&z.src, nil)
	}
	if err != nil {
		z.zr = nil
		return dst, fmt.Errorf("%w: %v", ErrCompression, err)
	}
	start := len(dst)
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		room := dst[len(dst):cap(dst)]
		if over := len(dst) - start + len(room) - (limit + 1); over > 0 {
			room = room[:len(room)-over]
		}
		n, rerr := z.zr.Read(room)
		dst = dst[:len(dst)+n]
		if len(dst)-start > limit {
			return dst[:start], fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return dst[:start], fmt.Errorf("%w: %v", ErrCompression, rerr)
		}
	}
	if z.src.Len() != 0 {
		return dst[:start], fmt.Errorf("%w: %d bytes after end of stream", ErrCompression, z.src.Len())
	}
	return dst, nil
}

// Unwrap strips the prefix, base45 and zlib layers of a code's text and
// returns the COSE bytes. The text must be exactly PREFIX + base45: no
// whitespace, no line breaks (the scanner layer removes its terminator).
func Unwrap(text []byte, prefix string) ([]byte, error) {
	if len(text) == 0 {
		return nil, ErrEmpty
	}
	if len(text) > MaxTextLen {
		return nil, fmt.Errorf("%w: %d characters, over %d", ErrTooLong, len(text), MaxTextLen)
	}
	if !bytes.HasPrefix(text, []byte(prefix)) {
		return nil, fmt.Errorf("%w: want %q", ErrPrefix, prefix)
	}
	b45 := text[len(prefix):]
	z := inflaters.Get().(*inflater)
	defer inflaters.Put(z)
	compressed, err := AppendBase45Decode(z.compressed[:0], b45)
	if err != nil {
		return nil, err
	}
	z.compressed = compressed
	// Inflated into the pooled buffer, then copied out at its size: a
	// buffer made for the output before its size is known would be
	// several times too large.
	cose, err := z.inflate(z.inflated[:0], compressed, MaxDecompressedLen)
	z.inflated = cose[:0]
	if err != nil {
		return nil, err
	}
	return bytes.Clone(cose), nil
}

// Envelope is a parsed Wicket voucher whose signature is not yet checked.
type Envelope struct {
	Sign1
}

// Parse decodes the text of a Wicket voucher down to its COSE_Sign1. It
// checks structure only: the claims are parsed by ParseClaims once the
// signature is good (see the verifier), or by Inspect for display. The
// envelope's byte slices share one buffer, the inflated message.
func Parse(text []byte) (*Envelope, error) {
	cose, err := Unwrap(text, Prefix)
	if err != nil {
		return nil, err
	}
	env := new(Envelope)
	if err := parseSign1(&env.Sign1, cose); err != nil {
		return nil, err
	}
	if env.Alg != AlgEdDSA && env.Alg != AlgES256 {
		return nil, fmt.Errorf("%w: %v in a Wicket voucher", ErrUnsupportedAlg, env.Alg)
	}
	return env, nil
}
