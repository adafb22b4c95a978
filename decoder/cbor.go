package decoder

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// strict is the CBOR decoding mode for everything signed: duplicate map keys,
// indefinite lengths, unknown struct fields, invalid UTF-8 and tags are
// errors (the only tag in the format, 18 on the COSE message, is read by
// ParseSign1 itself), and nesting and sizes are bounded by limits.go.
var strict = mustDecMode(cbor.DecOptions{
	DupMapKey:         cbor.DupMapKeyEnforcedAPF,
	IndefLength:       cbor.IndefLengthForbidden,
	MaxNestedLevels:   MaxNesting,
	MaxArrayElements:  MaxArrayElements,
	MaxMapPairs:       MaxMapPairs,
	ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	UTF8:              cbor.UTF8RejectInvalid,
	TagsMd:            cbor.TagsForbidden,
})

// headers is strict like the above but ignores header labels the format does
// not use (RFC 9052 lets senders add any), so only the ones it reads matter.
var headers = mustDecMode(cbor.DecOptions{
	DupMapKey:        cbor.DupMapKeyEnforcedAPF,
	IndefLength:      cbor.IndefLengthForbidden,
	MaxNestedLevels:  MaxNesting,
	MaxArrayElements: MaxArrayElements,
	MaxMapPairs:      MaxMapPairs,
	UTF8:             cbor.UTF8RejectInvalid,
	TagsMd:           cbor.TagsForbidden,
})

// wellformed checks a whole COSE message against the CBOR rules and
// limits, tags allowed: ParseSign1 then reads tag 18 itself and refuses
// any other tag as a COSE error.
var wellformed = mustDecMode(cbor.DecOptions{
	IndefLength:      cbor.IndefLengthForbidden,
	MaxNestedLevels:  MaxNesting,
	MaxArrayElements: MaxArrayElements,
	MaxMapPairs:      MaxMapPairs,
	TagsMd:           cbor.TagsAllowed,
})

// canonical encodes with RFC 8949 core deterministic rules, so the same
// claims always give the same bytes (and, with Ed25519, the same code).
var canonical = func() cbor.EncMode {
	m, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return m
}()

func mustDecMode(o cbor.DecOptions) cbor.DecMode {
	m, err := o.DecMode()
	if err != nil {
		panic(fmt.Sprintf("decoder: cbor options: %v", err))
	}
	return m
}

// strictLarge is strict with the bounds of signed trust documents (key sets
// and batches), which hold long lists.
var strictLarge = mustDecMode(cbor.DecOptions{
	DupMapKey:         cbor.DupMapKeyEnforcedAPF,
	IndefLength:       cbor.IndefLengthForbidden,
	MaxNestedLevels:   MaxNesting,
	MaxArrayElements:  MaxTrustListLen,
	MaxMapPairs:       MaxMapPairs,
	ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	UTF8:              cbor.UTF8RejectInvalid,
	TagsMd:            cbor.TagsForbidden,
})

// StrictUnmarshal decodes data into v with the strict rules the decoder uses
// for claims. Trailing bytes are an error. A failure wraps ErrCBOR when the
// bytes break the CBOR rules (syntax, duplicate keys, limits) and shape when
// they are good CBOR of the wrong shape (types, unknown keys).
func StrictUnmarshal(data []byte, v any, shape error) error {
	if err := CheckHeads(data); err != nil {
		return err
	}
	return classify(strict.Unmarshal(data, v), shape)
}

// classify maps a CBOR library error to ErrCBOR or to shape. A tag where
// the format has none is a shape error: it is good CBOR, in the wrong
// place (a tagged time in a claim, a tagged header).
func classify(err error, shape error) error {
	if err == nil {
		return nil
	}
	var te *cbor.UnmarshalTypeError
	var ue *cbor.UnknownFieldError
	var tm *cbor.TagsMdError
	if errors.As(err, &te) || errors.As(err, &ue) || errors.As(err, &tm) {
		return fmt.Errorf("%w: %v", shape, err)
	}
	return fmt.Errorf("%w: %v", ErrCBOR, err)
}

// Classify is classify for other profiles' decoders: ErrCBOR for broken
// CBOR rules, shape for good CBOR of the wrong shape.
func Classify(err error, shape error) error { return classify(err, shape) }

// StrictUnmarshalTrust is StrictUnmarshal with the list bound of signed
// trust documents, MaxTrustListLen.
func StrictUnmarshalTrust(data []byte, v any) error {
	if err := CheckHeads(data); err != nil {
		return err
	}
	return classify(strictLarge.Unmarshal(data, v), ErrCBOR)
}

// CanonicalMarshal encodes v with deterministic CBOR.
func CanonicalMarshal(v any) ([]byte, error) {
	return canonical.Marshal(v)
}
