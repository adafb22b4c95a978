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

	"wicket/decoder"
)

// The EU Digital COVID Certificate profile (eu-dcc-hcert-spec): "HC1:" +
// base45 + zlib + COSE_Sign1 (ES256 or PS256) over a CWT whose claim -260
// holds the certificate (key 1) in the v1 schema: vaccination (v), test
// (t) or recovery (r) entries. The mapping reads what member states
// issued (docs/profiles.md lists each leniency and each rule where
// Wicket is stricter than the EU reference apps).

const dccProfileName = "dcc"

type dccProfile struct{}

func (dccProfile) Name() string   { return dccProfileName }
func (dccProfile) Prefix() string { return "HC1:" }

func (dccProfile) Envelope(text []byte) (*decoder.Sign1, error) {
	cose, err := decoder.Unwrap(text, "HC1:")
	if err != nil {
		return nil, err
	}
	s, err := decoder.ParseSign1DCC(cose)
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
// pseudonym is a keyed hash of them: DCCPseudonym).
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
	TestType string `json:"test_type,omitempty"`
	// Result is the result code as written (tr); only 260415000 (not
	// detected) passes a gate.
	Result    string    `json:"result,omitempty"`
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
// Tags are allowed because issuers wrap date-times in tag 0 or 1 (read by
// dccDateTime); elsewhere a tag's content is read as if untagged.
var dccDecMode = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  12,
		MaxArrayElements: 64,
		MaxMapPairs:      64,
		IntDec:           cbor.IntDecConvertSignedOrFail,
		UTF8:             cbor.UTF8RejectInvalid,
		TagsMd:           cbor.TagsAllowed,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// Bounds of the DCC mapping (the schema's, or what issuers wrote).
const (
	// maxDCCIssuerLen bounds iss: the specification wants a country code
	// but issuers wrote ministries' names (80 bytes seen); 255 is the
	// schema's bound for the other free-text fields.
	maxDCCIssuerLen = 255
	// maxDCCCILen bounds the certificate identifier (the schema's 80).
	maxDCCCILen = 80
	// maxDCCDoses bounds dn and sd (the schema says 1-9; 0 is accepted
	// and decided on, see Content).
	maxDCCDoses = 10
)

// errDCCTime: a time claim that is not a number in range.
var errDCCTime = errors.New("time claim")

// cwtTime is a CWT NumericDate: an integer, or a float as some issuers
// write (fractions are dropped).
type cwtTime int64

func (t *cwtTime) UnmarshalCBOR(data []byte) error {
	if len(data) > 0 && data[0]>>5 == 6 {
		return fmt.Errorf("%w is tagged, want a number", errDCCTime)
	}
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

// dccDateTime is a schema date-time (sc, dr) as issuers wrote it: an
// RFC 3339 text, that text in tag 0, or epoch seconds in tag 1 (the CBOR
// library reads both tags into a time.Time).
type dccDateTime struct {
	text string
	at   time.Time
}

func (t *dccDateTime) UnmarshalCBOR(data []byte) error {
	var v any
	if err := dccDecMode.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("%w: %v", errDCCTime, err)
	}
	switch x := v.(type) {
	case string:
		t.text = x
	case time.Time:
		t.at = x.UTC()
	case cbor.Tag:
		return fmt.Errorf("%w in tag %d, want 0 or 1", errDCCTime, x.Number)
	default:
		return fmt.Errorf("%w is a %T, want text", errDCCTime, v)
	}
	return nil
}

// dateTimeLayouts are the date-time forms issuers wrote: RFC 3339 (with
// or without fractions), an offset without its colon, and no offset at
// all (read as UTC).
var dateTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999"}

// time returns the instant, or false if it is none of the forms.
func (t dccDateTime) time() (time.Time, bool) {
	if !t.at.IsZero() {
		return t.at, true
	}
	for _, l := range dateTimeLayouts {
		if at, err := time.Parse(l, t.text); err == nil {
			return at.UTC(), true
		}
	}
	return time.Time{}, false
}

// dccDate reads a schema date (dt, df, du, fr): "2021-03-09", or a
// date-time as some issuers wrote it ("2021-03-09T00:00:00",
// "2021-03-18T22:54:00+02:00"), whose date is the one written, before
// any offset is applied (what the holder's paper says).
func dccDate(s string) (string, bool) {
	if _, err := time.Parse(dateLayout, s); err == nil {
		return s, true
	}
	if len(s) > len(dateLayout) && s[len(dateLayout)] == 'T' {
		if _, ok := (dccDateTime{text: s}).time(); ok {
			return s[:len(dateLayout)], true
		}
	}
	return "", false
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
		Tg string      `cbor:"tg"`
		Tt string      `cbor:"tt"`
		Sc dccDateTime `cbor:"sc"`
		Dr dccDateTime `cbor:"dr"`
		Tr string      `cbor:"tr"`
		Co string      `cbor:"co"`
		Ci string      `cbor:"ci"`
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

// Claims maps a certificate. Every entry of its group is checked; the
// decision reads the first, as the EU business rules do (payload.v.0).
// The subject pseudonym and the EU revocation keys are made by the
// verifier once the signer is known (dcc_revocation.go): Claims leaves
// Subject nil.
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
	case len(c.Issuer) > maxDCCIssuerLen:
		return nil, bad("iss of %d bytes, over %d", len(c.Issuer), maxDCCIssuerLen)
	}
	groups := 0
	for _, n := range []int{len(cert.V), len(cert.T), len(cert.R)} {
		if n > 0 {
			groups++
		}
	}
	if groups != 1 {
		return nil, bad("entries of %d kinds; a certificate is one of vaccination, test or recovery", groups)
	}
	d := &DCC{}
	var ci string
	switch {
	case len(cert.V) > 0:
		for i, v := range cert.V {
			date, ok := dccDate(v.Dt)
			if !ok {
				return nil, bad("vaccination %d: date %q", i, v.Dt)
			}
			if v.Dn < 0 || v.Sd < 0 || v.Dn > maxDCCDoses || v.Sd > maxDCCDoses {
				return nil, bad("vaccination %d: dose %d of %d out of range", i, v.Dn, v.Sd)
			}
			if i == 0 {
				d.Type, d.Country, d.Dose, d.Doses, d.Product, d.Date, ci = "vaccination", v.Co, v.Dn, v.Sd, v.Mp, date, v.Ci
			}
		}
	case len(cert.T) > 0:
		for i, t := range cert.T {
			sc, ok := t.Sc.time()
			if !ok {
				return nil, bad("test %d: sample time %q", i, t.Sc.text)
			}
			if i == 0 {
				d.Type, d.Country, d.TestType, d.Result, d.Positive, d.SampledAt, ci = "test", t.Co, testTypeName(t.Tt), t.Tr, t.Tr == testDetected, sc, t.Ci
			}
		}
	default:
		for i, r := range cert.R {
			from, ok1 := dccDate(r.Df)
			until, ok2 := dccDate(r.Du)
			if !ok1 || !ok2 {
				return nil, bad("recovery %d: dates %q to %q", i, r.Df, r.Du)
			}
			if i == 0 {
				d.Type, d.Country, d.ValidFrom, d.ValidUntil, ci = "recovery", r.Co, from, until, r.Ci
			}
		}
	}
	if ci == "" || len(ci) > maxDCCCILen {
		return nil, bad("certificate identifier missing or over %d characters", maxDCCCILen)
	}
	// The certificate identifier becomes a hash: Wicket's own revocation
	// batches name it. The EU revocation keys and the keyed subject
	// pseudonym are made by the verifier (dccKeys).
	id := sha256.Sum256([]byte("wicket-dcc-ci\x00" + ci))
	return &Input{
		Profile: dccProfileName, Issuer: dccIssuerCountry(c.Issuer), ID: id[:16],
		Kind: decoder.KindPrinted, Class: decoder.ClassAdult, Colour: decoder.ColourGreen,
		Name:     maskLatin(cert.Name.Fnt, cert.Name.Gnt),
		IssuedAt: time.Unix(int64(c.IssuedAt), 0), Expiry: time.Unix(int64(c.Expiry), 0),
		DCC: d,
		dcc: &dccKeys{ci: ci, iss: c.Issuer, holder: dccHolder(cert.Name.Fnt, cert.Name.Gnt, cert.Dob)},
	}, nil
}

// dccIssuerCountry is the issuer the decision compares with the signer's
// country: iss when it is a country code (two ASCII letters, compared as
// written), else none, so the signer's country stands (issuers wrote
// ministries' names in iss).
func dccIssuerCountry(iss string) string {
	if len(iss) != 2 {
		return ""
	}
	for _, c := range []byte(iss) {
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return ""
		}
	}
	return iss
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

// DCCPolicy is policy.profiles.dcc: the gate takes DCCs when the policy
// has one. Start from DefaultDCCPolicy; a section read from a file does.
type DCCPolicy struct {
	// Accept lists the certificate types the gate takes: vaccination,
	// test, recovery.
	Accept []string `yaml:"accept"`
	// Countries lists the issuing countries accepted (the key's issuer);
	// empty means every country in the key set.
	Countries []string `yaml:"countries"`
	// Vaccination rules.
	Vaccination DCCVaccinationPolicy `yaml:"vaccination"`
	// Test rules.
	Test DCCTestPolicy `yaml:"test"`
}

// DCCVaccinationPolicy is policy.profiles.dcc.vaccination.
type DCCVaccinationPolicy struct {
	// Complete: dose number must reach the total of the series.
	Complete bool `yaml:"complete"`
	// MinAge: time after the last dose before it counts.
	MinAge time.Duration `yaml:"min_age"`
	// MaxAge: time after the last dose when it stops counting; 0: none.
	MaxAge time.Duration `yaml:"max_age"`
}

// DCCTestPolicy is policy.profiles.dcc.test.
type DCCTestPolicy struct {
	// MaxAge bounds now - sample time.
	MaxAge time.Duration `yaml:"max_age"`
	// Types lists the accepted test types: naat, antigen.
	Types []string `yaml:"types"`
}

// DefaultDCCPolicy is what a dcc section leaves unsaid: complete series
// only, tests of either type up to 72 hours old. It accepts no type yet:
// a section must list them.
func DefaultDCCPolicy() DCCPolicy {
	return DCCPolicy{
		Vaccination: DCCVaccinationPolicy{Complete: true},
		Test:        DCCTestPolicy{MaxAge: 72 * time.Hour, Types: []string{"naat", "antigen"}},
	}
}

// UnmarshalYAML starts a section read from a file from DefaultDCCPolicy,
// then lets the caller's decoder fill in what the section says, with the
// decoder's own strictness. It is the form of the hook YAML decoders call
// without this package importing one: the configuration owns the YAML.
func (d *DCCPolicy) UnmarshalYAML(decode func(any) error) error {
	type plain DCCPolicy
	v := plain(DefaultDCCPolicy())
	if err := decode(&v); err != nil {
		return err
	}
	*d = DCCPolicy(v)
	return nil
}

// Validate checks the section and names the first bad field with its fix.
func (d *DCCPolicy) Validate() error {
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("policy.profiles.dcc.%s: %s", field, fmt.Sprintf(format, a...))
	}
	if len(d.Accept) == 0 {
		return bad("accept", "list at least one of vaccination, test, recovery")
	}
	for _, a := range d.Accept {
		if a != "vaccination" && a != "test" && a != "recovery" {
			return bad("accept", "%q is not vaccination, test or recovery", a)
		}
	}
	for _, t := range d.Test.Types {
		if t != "naat" && t != "antigen" {
			return bad("test.types", "%q is not naat or antigen", t)
		}
	}
	if d.Vaccination.MinAge < 0 || d.Vaccination.MaxAge < 0 || d.Test.MaxAge <= 0 {
		return bad("durations", "vaccination ages must not be negative and test.max_age must be set")
	}
	return nil
}

type dccRules struct{ DCCPolicy }

// Rules: no policy.profiles.dcc, no DCCs.
func (dccProfile) Rules(p *Policy) (ProfileRules, error) {
	d := p.Profiles.DCC
	if d == nil {
		return nil, nil
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	r := &dccRules{DCCPolicy: *d}
	r.Accept = slices.Clone(d.Accept)
	r.Countries = slices.Clone(d.Countries)
	r.Test.Types = slices.Clone(d.Test.Types)
	return r, nil
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
		if d.Dose < 1 {
			return ReasonDCCVaccinationIncomplete, fmt.Sprintf("dose %d of %d: no dose", d.Dose, d.Doses)
		}
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
		if d.Result != testNotDetected {
			return ReasonDCCTestResult, fmt.Sprintf("test result %q is not %s (not detected)", d.Result, testNotDetected)
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
