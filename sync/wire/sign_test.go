package wire

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func TestSignedRoundTrip(t *testing.T) {
	key := testKey(1)
	pub := key.Public().(ed25519.PublicKey)
	msg, err := Sign(KindAck, "f1", "C1", key, Ack{Gate: "G1", From: 3, Through: 9})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(KindAck, "f1", pub); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	a, err := DecodeAck(s.Body)
	if err != nil || a != (Ack{Gate: "G1", From: 3, Through: 9}) {
		t.Fatalf("DecodeAck = %+v, %v", a, err)
	}
	other := testKey(2).Public().(ed25519.PublicKey)
	for _, tc := range []struct {
		name        string
		kind, fleet string
		pub         ed25519.PublicKey
	}{
		{"other kind", KindRecords, "f1", pub},
		{"other fleet", KindAck, "f2", pub},
		{"other key", KindAck, "f1", other},
		{"no key", KindAck, "f1", nil},
	} {
		if err := s.Verify(tc.kind, tc.fleet, tc.pub); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: Verify = %v; want ErrSignature", tc.name, err)
		}
	}
	// The signer is covered: the same body and signature under another
	// signer's name does not verify with the same key.
	renamed := bytes.Replace(msg, []byte(`"signer":"C1"`), []byte(`"signer":"C2"`), 1)
	if s2, err := Open(renamed); err != nil || s2.Verify(KindAck, "f1", pub) == nil {
		t.Errorf("renamed signer verified (open: %v)", err)
	}
	tampered := bytes.Replace(msg, []byte(`"through":9`), []byte(`"through":99`), 1)
	if s2, err := Open(tampered); err != nil || s2.Verify(KindAck, "f1", pub) == nil {
		t.Errorf("tampered body verified (open: %v)", err)
	}
}

func TestOpenRefusesUnsigned(t *testing.T) {
	for _, p := range []string{
		`{"from":1,"through":18446744073709551615}`,
		`{"v":1,"signer":"C1","body":{},"sig":"AAAA"}`,
		`{"v":2,"signer":"C/1","body":{},"sig":"` + string(bytes.Repeat([]byte("A"), 88)) + `"}`,
		`not json`,
	} {
		if _, err := Open([]byte(p)); !errors.Is(err, ErrUnsigned) {
			t.Errorf("Open(%q) = %v; want ErrUnsigned", p, err)
		}
	}
	if _, err := Open(make([]byte, MaxMessage+1)); err == nil {
		t.Error("Open accepted an oversized message")
	}
}

func TestIdentityFile(t *testing.T) {
	path := t.TempDir() + "/identity.key"
	pub, err := GenerateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o; want 0600", st.Mode().Perm())
	}
	priv, err := ReadIdentity(path)
	if err != nil || !pub.Equal(priv.Public()) {
		t.Fatalf("ReadIdentity = %v, %v", priv, err)
	}
	if _, err := GenerateIdentity(path); err == nil {
		t.Error("GenerateIdentity replaced an existing identity")
	}
	os.Chmod(path, 0o640)
	if _, err := ReadIdentity(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("ReadIdentity of a 0640 key = %v; want a refusal", err)
	}
}

// TestOpenForms: Open takes the form Sign writes without parsing the body,
// and any other JSON form of the same envelope the slow way; both verify
// the same signed bytes.
func TestOpenForms(t *testing.T) {
	key := testKey(3)
	pub := key.Public().(ed25519.PublicKey)
	msg, err := Sign(KindStatus, "f1", "G1", key, Status{Gate: "G1", Online: true})
	if err != nil {
		t.Fatal(err)
	}
	fast, ok := openAsSigned(msg)
	if !ok || fast.Signer != "G1" || fast.Verify(KindStatus, "f1", pub) != nil {
		t.Fatalf("openAsSigned(%s) = %+v, %v", msg, fast, ok)
	}
	var env Signed
	json.Unmarshal(msg, &env)
	reordered := fmt.Sprintf(`{ "sig": %q, "body": %s, "signer": "G1", "v": 2 }`, base64.StdEncoding.EncodeToString(env.Sig), env.Body)
	if _, ok := openAsSigned([]byte(reordered)); ok {
		t.Error("the fast path took a reordered envelope")
	}
	s, err := Open([]byte(reordered))
	if err != nil || s.Verify(KindStatus, "f1", pub) != nil {
		t.Errorf("reordered envelope: %v", err)
	}
	for _, bad := range []string{string(msg) + "junk", strings.Replace(string(msg), `"sig":"`, `"sig":"!`, 1)} {
		if s, err := Open([]byte(bad)); err == nil && s.Verify(KindStatus, "f1", pub) == nil {
			t.Errorf("Open(%q) verified", bad)
		}
	}
}

// FuzzOpen: no input panics Open, and what opens has a valid signer and
// a signature of the right size.
func FuzzOpen(f *testing.F) {
	msg, _ := Sign(KindRecords, "f1", "G1", testKey(1), Records{Gate: "G1", Records: []Record{{Seq: 1, Gate: "G1"}}})
	f.Add(msg)
	f.Add([]byte(`{"v":2,"signer":"G1","body":{},"sig":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Open(b)
		if err != nil {
			return
		}
		if ValidName(s.Signer) != nil || len(s.Sig) != ed25519.SignatureSize {
			t.Fatalf("Open(%q) = %+v", b, s)
		}
		s.Verify(KindRecords, "f1", testKey(1).Public().(ed25519.PublicKey))
	})
}
