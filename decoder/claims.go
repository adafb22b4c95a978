package decoder

import (
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Colour is the health-code colour a voucher states at issue time.
type Colour uint8

const (
	ColourNone   Colour = 0
	ColourGreen  Colour = 1
	ColourYellow Colour = 2
	ColourRed    Colour = 3
)

var colourNames = [...]string{"none", "green", "yellow", "red"}

func (c Colour) String() string {
	if int(c) < len(colourNames) {
		return colourNames[c]
	}
	return fmt.Sprintf("colour(%d)", uint8(c))
}

// ParseColour reads a colour name.
func ParseColour(s string) (Colour, error) {
	for i, n := range colourNames[1:] {
		if s == n {
			return Colour(i + 1), nil
		}
	}
	return 0, fmt.Errorf("unknown colour %q (want green, yellow or red)", s)
}

// Kind is how a voucher is presented.
type Kind uint8

const (
	KindDynamic Kind = 1 // refreshed code on a phone screen, short validity
	KindPrinted Kind = 2 // printed voucher or card, valid for weeks
	KindWatch   Kind = 3 // code on a device bound to the holder (child's watch)
)

var kindNames = [...]string{"none", "dynamic", "printed", "watch"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind reads a voucher kind name.
func ParseKind(s string) (Kind, error) {
	for i, n := range kindNames[1:] {
		if s == n {
			return Kind(i + 1), nil
		}
	}
	return 0, fmt.Errorf("unknown voucher kind %q (want dynamic, printed or watch)", s)
}

// Class is the holder's class.
type Class uint8

const (
	ClassAdult   Class = 1
	ClassChild   Class = 2 // 16 and under
	ClassElderly Class = 3 // 60 and over
)

var classNames = [...]string{"none", "adult", "child", "elderly"}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// ParseClass reads a holder class name.
func ParseClass(s string) (Class, error) {
	for i, n := range classNames[1:] {
		if s == n {
			return Class(i + 1), nil
		}
	}
	return 0, fmt.Errorf("unknown holder class %q (want adult, child or elderly)", s)
}

// TestKind is the kind of the latest test.
type TestKind uint8

const (
	TestNAAT    TestKind = 1 // nucleic-acid (PCR)
	TestAntigen TestKind = 2 // rapid antigen
)

var testKindNames = [...]string{"none", "naat", "antigen"}

func (t TestKind) String() string {
	if int(t) < len(testKindNames) {
		return testKindNames[t]
	}
	return fmt.Sprintf("test(%d)", uint8(t))
}

// ParseTestKind reads a test kind name.
func ParseTestKind(s string) (TestKind, error) {
	for i, n := range testKindNames[1:] {
		if s == n {
			return TestKind(i + 1), nil
		}
	}
	return 0, fmt.Errorf("unknown test kind %q (want naat or antigen)", s)
}

// TestResult is a test's outcome.
type TestResult uint8

const (
	ResultNegative TestResult = 0
	ResultPositive TestResult = 1
)

func (r TestResult) String() string {
	switch r {
	case ResultNegative:
		return "negative"
	case ResultPositive:
		return "positive"
	}
	return fmt.Sprintf("result(%d)", uint8(r))
}

// Test is the latest test result: [kind, result, sample time].
type Test struct {
	_       struct{} `cbor:",toarray"`
	Kind    TestKind
	Result  TestResult
	Sampled int64 // seconds since the Unix epoch
}

// Vaccination is [doses, time of the last dose].
type Vaccination struct {
	_     struct{} `cbor:",toarray"`
	Doses uint8
	Last  int64 // seconds since the Unix epoch; 0 when Doses is 0
}

// Voucher holds the Wicket claims, under claim key ClaimVoucher.
type Voucher struct {
	Version     uint8        `cbor:"1,keyasint"`
	Subject     []byte       `cbor:"2,keyasint"`
	Colour      Colour       `cbor:"3,keyasint"`
	Kind        Kind         `cbor:"4,keyasint"`
	Class       Class        `cbor:"5,keyasint"`
	Name        string       `cbor:"6,keyasint,omitempty"`
	Test        *Test        `cbor:"7,keyasint,omitempty"`
	Vaccination *Vaccination `cbor:"8,keyasint,omitempty"`
}

// ClaimVoucher is the private-use CWT claim key (RFC 8392 section 9.1:
// keys below -65536) holding the Voucher map.
const ClaimVoucher = -65537

// VoucherVersion is the only voucher map version this build reads.
const VoucherVersion = 1

// Claims is the CWT claims map of a Wicket voucher.
type Claims struct {
	Issuer    string  `cbor:"1,keyasint"`
	Expiry    int64   `cbor:"4,keyasint"`
	NotBefore int64   `cbor:"5,keyasint,omitempty"`
	IssuedAt  int64   `cbor:"6,keyasint"`
	ID        []byte  `cbor:"7,keyasint"`
	Voucher   Voucher `cbor:"-65537,keyasint"`
}

// ExpiryTime, IssuedTime and NotBeforeTime convert the claims' times.
func (c *Claims) ExpiryTime() time.Time { return time.Unix(c.Expiry, 0) }
func (c *Claims) IssuedTime() time.Time { return time.Unix(c.IssuedAt, 0) }

// ValidFrom is nbf if present, else iat.
func (c *Claims) ValidFrom() time.Time {
	if c.NotBefore != 0 {
		return time.Unix(c.NotBefore, 0)
	}
	return time.Unix(c.IssuedAt, 0)
}

// maxTime bounds every timestamp: the year 9999, so conversions can't overflow.
const maxTime = 253402300799

// ParseClaims decodes and checks a voucher's claims map. Required: iss,
// exp, iat, cti and the voucher map with version, subject, colour, kind
// and class. Unknown keys anywhere are refused: a later format version
// uses a new prefix or voucher version. The ID and Subject of the result
// may point into payload.
func ParseClaims(payload []byte) (*Claims, error) {
	var c Claims
	if !parseClaimsDirect(&c, payload) {
		if err := parseClaimsGeneral(&c, payload); err != nil {
			return nil, err
		}
	}
	if err := c.Check(); err != nil {
		return nil, err
	}
	return &c, nil
}

// parseClaimsGeneral is the decoding of ParseClaims by the CBOR library,
// for any map: into a zero c, it reports the error of a map that is not
// a claims map.
func parseClaimsGeneral(c *Claims, payload []byte) error {
	*c = Claims{}
	return StrictUnmarshal(payload, c, ErrClaims)
}

// Check reports the first claim that is missing or out of range.
func (c *Claims) Check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrClaims}, a...)...)
	}
	v := &c.Voucher
	switch {
	case c.Issuer == "" || len(c.Issuer) > MaxIssuerLen || !printable(c.Issuer):
		return bad("iss must be 1 to %d printable characters", MaxIssuerLen)
	case c.IssuedAt <= 0 || c.IssuedAt > maxTime:
		return bad("iat missing or out of range")
	case c.Expiry <= 0 || c.Expiry > maxTime:
		return bad("exp missing or out of range")
	case c.NotBefore < 0 || c.NotBefore > maxTime:
		return bad("nbf out of range")
	case c.Expiry <= c.IssuedAt:
		return bad("exp is not after iat")
	case c.NotBefore != 0 && c.NotBefore >= c.Expiry:
		return bad("nbf is not before exp")
	case len(c.ID) < MinIDLen || len(c.ID) > MaxIDLen:
		return bad("cti must be %d to %d bytes, got %d", MinIDLen, MaxIDLen, len(c.ID))
	case v.Version != VoucherVersion:
		return bad("voucher version %d, want %d", v.Version, VoucherVersion)
	case len(v.Subject) < MinIDLen || len(v.Subject) > MaxIDLen:
		return bad("subject must be %d to %d bytes, got %d", MinIDLen, MaxIDLen, len(v.Subject))
	case v.Colour < ColourGreen || v.Colour > ColourRed:
		return bad("colour %d out of range", v.Colour)
	case v.Kind < KindDynamic || v.Kind > KindWatch:
		return bad("kind %d out of range", v.Kind)
	case v.Class < ClassAdult || v.Class > ClassElderly:
		return bad("class %d out of range", v.Class)
	case len(v.Name) > MaxNameLen || !printable(v.Name):
		return bad("name must be at most %d printable characters", MaxNameLen)
	}
	if t := v.Test; t != nil {
		switch {
		case t.Kind < TestNAAT || t.Kind > TestAntigen:
			return bad("test kind %d out of range", t.Kind)
		case t.Result > ResultPositive:
			return bad("test result %d out of range", t.Result)
		case t.Sampled <= 0 || t.Sampled > maxTime:
			return bad("test sample time out of range")
		}
	}
	if d := v.Vaccination; d != nil {
		switch {
		case d.Doses > 10:
			return bad("%d doses is out of range", d.Doses)
		case d.Doses == 0 && d.Last != 0, d.Doses > 0 && (d.Last <= 0 || d.Last > maxTime):
			return bad("time of last dose out of range")
		}
	}
	return nil
}

// printable reports whether s is valid UTF-8 with no control or format
// characters (a scanner's stray CR or a bidi override can't hide in a name).
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
