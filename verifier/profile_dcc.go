package verifier

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	"go.yaml.in/yaml/v3"

	"wicket/decoder"
)

// The EU Digital COVID Certificate profile (eu-dcc-hcert-spec): "HC1:" +
// base45 + zlib + COSE_Sign1 (ES256 or PS256) over a CWT whose claim -260
// holds the certificate (key 1) in the v1 schema: exactly one vaccination
// (v), test (t) or recovery (r) entry.

const dccProfileName = "dcc"

func init() { RegisterProfile(dccProfile{}) }

type dccProfile struct{}

func (dccProfile) Name() string   { return dccProfileName }
func (dccProfile) Prefix() string { return "HC1:" }

func (dccProfile) Envelope(text []byte) (*decoder.Sign1, error) {
	cose, err := decoder.Unwrap(text, "HC1:")
	if err != nil {
		return nil, err
	}
	s, err := decoder.ParseSign1MaybeTagged(cose)
	if err != nil {
		return nil, err
	}
	if s.Alg != decoder.AlgES256 && s.Alg != decoder.AlgPS256 {
		return nil, fmt.Errorf("%w: %v in a DCC (ES256 or PS256)", decoder.ErrUnsupportedAlg, s.Alg)
	}
	return s, nil
}

// DCC is the mapped content of a certificate: what the decision and the
// display use. Names and the date of birth are never kept (the subject
// pseudonym is a hash of them).
type DCC struct {
	// Type is vaccination, test or recovery.
	Type    string `json:"type"`
	Country string `json:"country"`
	// Vaccination: dose Dose of Doses, given on Date.
	Dose    int    `json:"dose,omitempty"`
	Doses   int    `json:"doses,omitempty"`
	Product string `json:"product,omitempty"`
	Date    string `json:"date,omitempty"`
	// Test: type (naat, antigen or the code), result, sample time.
	TestType  string    `json:"test_type,omitempty"`
	Positive  bool      `json:"positive,omitempty"`
	SampledAt time.Time `json:"sampled_at,omitzero"`
	// Recovery: valid from and until (dates).
	ValidFrom  string `json:"valid_from,omitempty"`
	ValidUntil string `json:"valid_until,omitempty"`
}

// DCC type letters, as the extended key usage of a signer names them.
const (
	dccTest        = "t"
	dccVaccination = "v"
	dccRecovery    = "r"
)

// Value set codes of the schema (eu-dcc-valuesets).
const (
	testNAAT        = "LP6464-4"
	testAntigen     = "LP217198-3"
	testNotDetected = "260415000"
	testDetected    = "260373001"
	dateLayout      = "2006-01-02"
)

// dccDecMode is lenient about unknown keys (real certificates carry
// more than the schema's required fields) and strict about structure.
var dccDecMode = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  12,
		MaxArrayElements: 64,
		MaxMapPairs:      64,
		IntDec:           cbor.IntDecConvertSigned,
		UTF8:             cbor.UTF8RejectInvalid,
		TagsMd:           cbor.TagsForbidden,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// errDCCTime: a time claim that is not a number in range.
var errDCCTime = errors.New("time claim")

// cwtTime is a CWT NumericDate: an integer, or a float as some issuers
// write (fractions are dropped).
type cwtTime int64

func (t *cwtTime) UnmarshalCBOR(data []byte) error {
	var v any
	if err := dccDecMode.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("%w: %v", errDCCTime, err)
	}
	switch x := v.(type) {
	case int64:
		*t = cwtTime(x)
	case uint64:
		if x > math.MaxInt64 {
			return fmt.Errorf("%w out of range", errDCCTime)
		}
		*t = cwtTime(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 || x > 253402300799 {
			return fmt.Errorf("%w out of range", errDCCTime)
		}
		*t = cwtTime(math.Floor(x))
	default:
		return fmt.Errorf("%w is a %T, want a number", errDCCTime, v)
	}
	return nil
}

type dccCWT struct {
	Issuer   string          `cbor:"1,keyasint,omitempty"`
	Expiry   cwtTime         `cbor:"4,keyasint"`
	IssuedAt cwtTime         `cbor:"6,keyasint"`
	HCert    map[int]dccCert `cbor:"-260,keyasint"`
}

type dccCert struct {
	Ver  string `cbor:"ver"`
	Name struct {
		Fn  string `cbor:"fn"`
		Fnt string `cbor:"fnt"`
		Gn  string `cbor:"gn"`
		Gnt string `cbor:"gnt"`
	} `cbor:"nam"`
	Dob string `cbor:"dob"`
	V   []struct {
		Tg string `cbor:"tg"`
		Mp string `cbor:"mp"`
		Dn int    `cbor:"dn"`
		Sd int    `cbor:"sd"`
		Dt string `cbor:"dt"`
		Co string `cbor:"co"`
		Ci string `cbor:"ci"`
	} `cbor:"v"`
	T []struct {
		Tg string `cbor:"tg"`
		Tt string `cbor:"tt"`
		Sc string `cbor:"sc"`
		Tr string `cbor:"tr"`
		Co string `cbor:"co"`
		Ci string `cbor:"ci"`
	} `cbor:"t"`
	R []struct {
		Tg string `cbor:"tg"`
		Fr string `cbor:"fr"`
		Df string `cbor:"df"`
		Du string `cbor:"du"`
		Co string `cbor:"co"`
		Ci string `cbor:"ci"`
	} `cbor:"r"`
}

func (dccProfile) Claims(payload []byte) (*Input, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: dcc: "+format, append([]any{decoder.ErrClaims}, a...)...)
	}
	var c dccCWT
	if err := decoder.CheckHeads(payload); err != nil {
		return nil, fmt.Errorf("dcc: %w", err)
	}
	if err := dccDecMode.Wellformed(payload); err != nil {
		return nil, fmt.Errorf("dcc: %w", decoder.Classify(err, decoder.ErrClaims))
	}
	if err := dccDecMode.Unmarshal(payload, &c); err != nil {
		// Well-formed CBOR that does not fit the schema (wrong types,
		// times that are not numbers) is a claims error; duplicate keys
		// break the CBOR rules.
		if errors.Is(err, errDCCTime) {
			return nil, fmt.Errorf("%w: dcc: %v", decoder.ErrClaims, err)
		}
		return nil, fmt.Errorf("dcc: %w", decoder.Classify(err, decoder.ErrClaims))
	}
	cert, ok := c.HCert[1]
	switch {
	case !ok:
		return nil, bad("no hcert claim (-260 → 1)")
	case c.IssuedAt <= 0 || c.Expiry <= 0:
		return nil, bad("iat and exp are required")
	case c.Expiry <= c.IssuedAt:
		return nil, bad("exp is not after iat")
	case !strings.HasPrefix(cert.Ver, "1."):
		return nil, bad("schema version %q, want 1.x", cert.Ver)
	case cert.Name.Fnt == "" && cert.Name.Gnt == "":
		return nil, bad("no standardised name")
	case len(c.Issuer) > decoder.MaxIssuerLen || !utf8.ValidString(c.Issuer):
		return nil, bad("iss too long or not UTF-8")
	}
	if n := len(cert.V) + len(cert.T) + len(cert.R); n != 1 {
		return nil, bad("%d entries; a certificate holds exactly one vaccination, test or recovery", n)
	}
	d := &DCC{}
	var ci string
	switch {
	case len(cert.V) == 1:
		v := cert.V[0]
		if _, err := time.Parse(dateLayout, v.Dt); err != nil {
			return nil, bad("vaccination date %q", v.Dt)
		}
		if v.Dn < 1 || v.Sd < 1 || v.Dn > 10 || v.Sd > 10 {
			return nil, bad("dose %d of %d out of range", v.Dn, v.Sd)
		}
		d.Type, d.Country, d.Dose, d.Doses, d.Product, d.Date, ci = "vaccination", v.Co, v.Dn, v.Sd, v.Mp, v.Dt, v.Ci
	case len(cert.T) == 1:
		t := cert.T[0]
		sc, err := time.Parse(time.RFC3339, t.Sc)
		if err != nil {
			return nil, bad("sample time %q", t.Sc)
		}
		if t.Tr != testDetected && t.Tr != testNotDetected {
			return nil, bad("test result %q", t.Tr)
		}
		d.Type, d.Country, d.TestType, d.Positive, d.SampledAt, ci = "test", t.Co, testTypeName(t.Tt), t.Tr == testDetected, sc.UTC(), t.Ci
	default:
		r := cert.R[0]
		for _, s := range []string{r.Df, r.Du} {
			if _, err := time.Parse(dateLayout, s); err != nil {
				return nil, bad("recovery date %q", s)
			}
		}
		d.Type, d.Country, d.ValidFrom, d.ValidUntil, ci = "recovery", r.Co, r.Df, r.Du, r.Ci
	}
	if ci == "" || len(ci) > 80 {
		return nil, bad("certificate identifier missing or over 80 characters")
	}
	// The certificate identifier and the holder's standardised name and
	// birth date become hashes: revocation and overrides work on them,
	// and nothing personal is kept.
	id := sha256.Sum256([]byte("wicket-dcc-ci\x00" + ci))
	sub := sha256.Sum256([]byte("wicket-dcc-subject\x00" + cert.Name.Fnt + "\x00" + cert.Name.Gnt + "\x00" + cert.Dob))
	return &Input{
		Profile: dccProfileName, Issuer: c.Issuer, ID: id[:16], Subject: sub[:16],
		Kind: decoder.KindPrinted, Class: decoder.ClassAdult, Colour: decoder.ColourGreen,
		Name:     maskLatin(cert.Name.Fnt, cert.Name.Gnt),
		IssuedAt: time.Unix(int64(c.IssuedAt), 0), Expiry: time.Unix(int64(c.Expiry), 0),
		DCC: d,
	}, nil
}

// typeLetter is the extended-key-usage letter of a certificate type.
func (d *DCC) typeLetter() string {
	switch d.Type {
	case "test":
		return dccTest
	case "vaccination":
		return dccVaccination
	case "recovery":
		return dccRecovery
	}
	return ""
}

func testTypeName(tt string) string {
	switch tt {
	case testNAAT:
		return "naat"
	case testAntigen:
		return "antigen"
	}
	return tt
}

// maskLatin masks standardised names (MUSTERMANN, ERIKA → M* E*).
func maskLatin(parts ...string) string {
	var out []string
	for _, p := range parts {
		if r, _ := utf8.DecodeRuneInString(p); p != "" && r != utf8.RuneError {
			out = append(out, string(r)+"*")
		}
	}
	return strings.Join(out, " ")
}

// DCCPolicy is policy.profiles.dcc.
type DCCPolicy struct {
	// Accept lists the certificate types the gate takes: vaccination,
	// test, recovery.
	Accept []string `yaml:"accept"`
	// Countries lists the issuing countries accepted (the key's issuer);
	// empty means every country in the key set.
	Countries []string `yaml:"countries"`
	// Vaccination rules.
	Vaccination struct {
		// Complete: dose number must reach the total of the series.
		Complete bool `yaml:"complete"`
		// MinAge: time after the last dose before it counts.
		MinAge time.Duration `yaml:"min_age"`
		// MaxAge: time after the last dose when it stops counting; 0: none.
		MaxAge time.Duration `yaml:"max_age"`
	} `yaml:"vaccination"`
	// Test rules.
	Test struct {
		// MaxAge bounds now - sample time.
		MaxAge time.Duration `yaml:"max_age"`
		// Types lists the accepted test types: naat, antigen.
		Types []string `yaml:"types"`
	} `yaml:"test"`
}

type dccRules struct{ DCCPolicy }

func (dccProfile) Rules(p *Policy, section *yaml.Node) (ProfileRules, error) {
	if section == nil {
		return nil, errors.New("not accepted")
	}
	var r dccRules
	r.Vaccination.Complete = true
	r.Test.MaxAge = 72 * time.Hour
	r.Test.Types = []string{"naat", "antigen"}
	if err := section.Decode(&r.DCCPolicy); err != nil {
		return nil, fmt.Errorf("policy.profiles.dcc: %w", err)
	}
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("policy.profiles.dcc.%s: %s", field, fmt.Sprintf(format, a...))
	}
	if len(r.Accept) == 0 {
		return nil, bad("accept", "list at least one of vaccination, test, recovery")
	}
	for _, a := range r.Accept {
		if a != "vaccination" && a != "test" && a != "recovery" {
			return nil, bad("accept", "%q is not vaccination, test or recovery", a)
		}
	}
	for _, t := range r.Test.Types {
		if t != "naat" && t != "antigen" {
			return nil, bad("test.types", "%q is not naat or antigen", t)
		}
	}
	if r.Vaccination.MinAge < 0 || r.Vaccination.MaxAge < 0 || r.Test.MaxAge <= 0 {
		return nil, bad("durations", "vaccination ages must not be negative and test.max_age must be set")
	}
	return &r, nil
}

func (r *dccRules) Admit(in *Input, key *IssuerKey, now time.Time, skew time.Duration) (Reason, string) {
	d := in.DCC
	if !key.AllowsType(d.typeLetter()) {
		return ReasonDCCSignerType, fmt.Sprintf("signer %x may sign %v, not %s certificates", key.Kid, key.Types, d.Type)
	}
	if len(r.Countries) > 0 && !slices.Contains(r.Countries, key.Issuer) {
		return ReasonIssuerNotAccepted, fmt.Sprintf("country %q is not in policy.profiles.dcc.countries", key.Issuer)
	}
	if !slices.Contains(r.Accept, d.Type) {
		return ReasonDCCTypeNotAccepted, fmt.Sprintf("%s certificates are not accepted", d.Type)
	}
	return ReasonOK, ""
}

func (r *dccRules) Content(in *Input, now time.Time) (Reason, string) {
	d := in.DCC
	switch d.Type {
	case "vaccination":
		if r.Vaccination.Complete && d.Dose < d.Doses {
			return ReasonDCCVaccinationIncomplete, fmt.Sprintf("dose %d of %d", d.Dose, d.Doses)
		}
		on, _ := time.Parse(dateLayout, d.Date)
		age := now.Sub(on)
		if age < r.Vaccination.MinAge {
			return ReasonDCCVaccinationTooRecent, fmt.Sprintf("last dose %s, counts after %v", d.Date, r.Vaccination.MinAge)
		}
		if r.Vaccination.MaxAge > 0 && age > r.Vaccination.MaxAge {
			return ReasonDCCVaccinationTooOld, fmt.Sprintf("last dose %s, over %v ago", d.Date, r.Vaccination.MaxAge)
		}
	case "test":
		if d.Positive {
			return ReasonTestPositive, "test result: detected"
		}
		if !slices.Contains(r.Test.Types, d.TestType) {
			return ReasonTestKindNotAccepted, fmt.Sprintf("test type %s is not accepted", d.TestType)
		}
		if now.Before(d.SampledAt) {
			return ReasonNotYetValid, fmt.Sprintf("sampled in the future (%v)", d.SampledAt)
		}
		if age := now.Sub(d.SampledAt); age > r.Test.MaxAge {
			return ReasonTestTooOld, fmt.Sprintf("sampled %v ago, over %v", age.Round(time.Minute), r.Test.MaxAge)
		}
	case "recovery":
		from, _ := time.Parse(dateLayout, d.ValidFrom)
		until, _ := time.Parse(dateLayout, d.ValidUntil)
		if now.Before(from) {
			return ReasonDCCRecoveryNotYetValid, "valid from " + d.ValidFrom
		}
		if !now.Before(until.Add(24 * time.Hour)) {
			return ReasonDCCRecoveryExpired, "valid until " + d.ValidUntil
		}
	}
	return ReasonOK, ""
}
