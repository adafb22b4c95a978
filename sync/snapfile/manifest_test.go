package snapfile

import (
	"errors"
	"strings"
	"testing"

	"wicket/decoder"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

func testManifest() Manifest {
	return Manifest{
		Version: 7, IssuedAt: verifiertest.Epoch,
		Parts: []Part{PartOf([]byte("part zero")), PartOf([]byte("part one"))},
		URLs:  []string{"https://files.example/snap", "http://10.0.0.1:8080/mirror/"},
	}
}

func TestManifestRoundTrip(t *testing.T) {
	f := verifiertest.New(t)
	m := testManifest()
	raw, err := m.Sign(f.Root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(f.Roots(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 7 || !got.IssuedAt.Equal(verifiertest.Epoch) || len(got.Parts) != 2 || !got.Parts[1].Matches([]byte("part one")) || got.Parts[1].Matches([]byte("part two")) {
		t.Fatalf("Parse(Sign(m)) = %+v", got)
	}
	if u := got.URL(0, 1); u != "https://files.example/snap/"+got.Parts[1].Name() {
		t.Errorf("URL(0, 1) = %q", u)
	}
	if u := got.URL(1, 0); u != "http://10.0.0.1:8080/mirror/"+got.Parts[0].Name() {
		t.Errorf("URL(1, 0) = %q", u)
	}
}

// TestManifestRefused: every manifest a gate must not act on is refused
// with an error that says why.
func TestManifestRefused(t *testing.T) {
	f := verifiertest.New(t)
	stranger, _ := decoder.NewSigner(verifiertest.EdKey(9), nil)
	forged, _ := testManifest().Sign(stranger)
	batch, _ := verifier.SignBatch(f.Root, verifier.Batch{Version: 7, IssuedAt: verifiertest.Epoch})
	sign := func(m manifestDoc) []byte {
		p, err := decoder.CanonicalMarshal(m)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := f.Root.EncodeSign1(p)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	good := manifestDoc{Type: verifier.DocSnapshotManifest, Version: 7, IssuedAt: verifiertest.Epoch.Unix(), Parts: testManifest().Parts, URLs: []string{"http://a.example/"}}
	with := func(fn func(*manifestDoc)) []byte {
		d := good
		fn(&d)
		return sign(d)
	}
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"signed by a stranger", forged, verifier.ErrTrustSignature},
		{"a batch, not a manifest", batch, ErrManifest},
		{"garbage", []byte("not cose"), verifier.ErrTrustFormat},
		{"no version", with(func(d *manifestDoc) { d.Version = 0 }), ErrManifest},
		{"no parts", with(func(d *manifestDoc) { d.Parts = nil }), ErrManifest},
		{"short hash", with(func(d *manifestDoc) { d.Parts = []Part{{Size: 3, SHA256: []byte{1, 2}}} }), ErrManifest},
		{"part over the size limit", with(func(d *manifestDoc) { d.Parts = []Part{{Size: MaxPartSize + 1, SHA256: make([]byte, 32)}} }), ErrManifest},
		{"negative size", with(func(d *manifestDoc) { d.Parts = []Part{{Size: -1, SHA256: make([]byte, 32)}} }), ErrManifest},
		{"no URL", with(func(d *manifestDoc) { d.URLs = nil }), ErrManifest},
		{"file URL", with(func(d *manifestDoc) { d.URLs = []string{"file:///etc/"} }), ErrManifest},
		{"URL with a query", with(func(d *manifestDoc) { d.URLs = []string{"http://a.example/?x=1"} }), ErrManifest},
		{"too many URLs", with(func(d *manifestDoc) { d.URLs = strings.Fields(strings.Repeat("http://a.example/ ", MaxURLs+1)) }), ErrManifest},
	}
	for _, tt := range tests {
		_, err := Parse(f.Roots(), tt.raw)
		if !errors.Is(err, tt.want) {
			t.Errorf("Parse(%s) = %v; want %v", tt.name, err, tt.want)
		}
	}
}

// FuzzParse: no input panics, and what parses signs back to a manifest
// that parses the same.
func FuzzParse(f *testing.F) {
	fx := verifiertest.New(f)
	raw, _ := testManifest().Sign(fx.Root)
	f.Add(raw)
	f.Add(raw[:len(raw)/2])
	f.Add([]byte{0xd2, 0x84})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(fx.Roots(), data)
		if err != nil {
			return
		}
		again, err := m.Sign(fx.Root)
		if err != nil {
			t.Fatalf("a parsed manifest does not sign: %v", err)
		}
		m2, err := Parse(fx.Roots(), again)
		if err != nil || m2.Version != m.Version || len(m2.Parts) != len(m.Parts) || m2.IssuedAt.Unix() != m.IssuedAt.Unix() {
			t.Fatalf("re-signed manifest parses as %+v, %v", m2, err)
		}
	})
}

func TestContentRange(t *testing.T) {
	tests := []struct {
		in          string
		from, total int64
		ok          bool
	}{
		{"bytes 100-199/200", 100, 200, true},
		{"bytes 0-0/*", 0, -1, true},
		{"bytes */200", 0, 0, false},
		{"items 1-2/3", 0, 0, false},
		{"", 0, 0, false},
		{"bytes 5-9/x", 0, 0, false},
	}
	for _, tt := range tests {
		from, total, ok := contentRange(tt.in)
		if from != tt.from || total != tt.total || ok != tt.ok {
			t.Errorf("contentRange(%q) = %d, %d, %v; want %d, %d, %v", tt.in, from, total, ok, tt.from, tt.total, tt.ok)
		}
	}
}

func TestStateString(t *testing.T) {
	if s := (State{}).String(); s != "" {
		t.Errorf("idle state = %q, want empty", s)
	}
	s := State{Version: 9, Phase: FromBroker, Parts: 4, Have: 1, BrokerParts: 0, Reason: "no URL delivered part 1: x", Refused: 2, LastRefusal: "manifest 3: replayed"}.String()
	if s != "9: from broker 1/4; no URL delivered part 1: x; 2 refused, last: manifest 3: replayed" {
		t.Errorf("State.String() = %q", s)
	}
}
