package decoder

import (
	"encoding/hex"
	"errors"
	"testing"
)

// The EU DCC envelope takes a CWT tag 61 and an alg in the unprotected
// header; the Wicket one takes neither; both refuse an alg in both
// headers.
func TestParseSign1DCC(t *testing.T) {
	const (
		prot   = "43a10126"   // bstr {1: -7}
		unprot = "a1044131"   // {4: h'31'}
		unAlg  = "a201260441" // {1: -7, 4: h'..'} (kid follows)
		body   = "4161" + "4100"
	)
	for _, tc := range []struct {
		name        string
		hex         string
		dcc, wicket error
	}{
		{"tagged 18", "d284" + prot + unprot + body, nil, nil},
		{"untagged", "84" + prot + unprot + body, nil, ErrCOSE},
		{"CWT tag 61", "d83dd284" + prot + unprot + body, nil, ErrCOSE},
		{"CWT tag 61, untagged inside", "d83d84" + prot + unprot + body, nil, ErrCOSE},
		{"alg and kid unprotected", "d28440" + unAlg + "31" + body, nil, ErrAlgNotProtected},
		{"alg in both headers", "d284" + prot + unAlg + "31" + body, ErrAlgNotProtected, ErrAlgNotProtected},
		{"no alg at all", "d28440" + unprot + body, ErrAlgNotProtected, ErrAlgNotProtected},
		{"other tag", "d83ed284" + prot + unprot + body, ErrCOSE, ErrCOSE},
	} {
		b, _ := hex.DecodeString(tc.hex)
		s, err := ParseSign1DCC(b)
		if !errors.Is(err, tc.dcc) || (err == nil && tc.dcc != nil) {
			t.Errorf("ParseSign1DCC(%s) = %v; want %v", tc.name, err, tc.dcc)
		}
		if err == nil && (s.Alg != AlgES256 || string(s.Payload) != "a") {
			t.Errorf("ParseSign1DCC(%s) = alg %v payload %q", tc.name, s.Alg, s.Payload)
		}
		if _, err := ParseSign1(b); !errors.Is(err, tc.wicket) || (err == nil && tc.wicket != nil) {
			t.Errorf("ParseSign1(%s) = %v; want %v", tc.name, err, tc.wicket)
		}
	}
}
