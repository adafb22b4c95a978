package verifier

import (
	"bufio"
	"compress/gzip"
	"crypto/ed25519"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// agree checks newEdKey(pub).verify against crypto/ed25519.Verify and
// returns the verdict.
func agree(t *testing.T, pub, msg, sig []byte) bool {
	t.Helper()
	got := newEdKey(pub).verify(msg, sig)
	if want := ed25519.Verify(pub, msg, sig); got != want {
		t.Fatalf("verify(pub %x, msg %x, sig %x) = %v; crypto/ed25519 says %v", pub, msg, sig, got, want)
	}
	return got
}

// RFC 8032 section 7.1, tests 1, 2, 3 and SHA(abc).
var rfc8032 = []struct{ seed, pub, msg, sig string }{
	{"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
		"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
		"e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
	{"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
		"3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
		"92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
	{"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
		"fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
		"6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
	{"833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
		"ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
		"ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
		"dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"},
}

func TestEdKeyRFC8032(t *testing.T) {
	for i, v := range rfc8032 {
		pub, msg, sig := unhex(t, v.pub), unhex(t, v.msg), unhex(t, v.sig)
		if got := ed25519.NewKeyFromSeed(unhex(t, v.seed)).Public().(ed25519.PublicKey); !ed25519.PublicKey(pub).Equal(got) {
			t.Fatalf("vector %d: public key %x, seed gives %x", i, pub, got)
		}
		if !agree(t, pub, msg, sig) {
			t.Errorf("vector %d does not verify", i)
		}
		bad := append([]byte(nil), sig...)
		bad[i] ^= 1
		if agree(t, pub, msg, bad) {
			t.Errorf("vector %d verifies with a flipped signature bit", i)
		}
	}
}

// TestEdKeyGoVectors runs the 128 vectors crypto/ed25519 tests itself
// with (its testdata, a selection of the SUPERCOP reference's), when the
// Go source tree is installed.
func TestEdKeyGoVectors(t *testing.T) {
	z, err := gzip.NewReader(goTestdata(t, "ed25519", "sign.input.gz"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(z)
	n := 0
	for sc.Scan() {
		p := strings.Split(sc.Text(), ":")
		if len(p) != 5 {
			t.Fatalf("line %d: %d fields", n+1, len(p))
		}
		pub, msg, sig := unhex(t, p[1]), unhex(t, p[2]), unhex(t, p[3])[:64]
		if !agree(t, pub, msg, sig) {
			t.Fatalf("line %d does not verify", n+1)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 128 {
		t.Fatalf("%d vectors, want 128", n)
	}
}

// goTestdata opens a file of the testdata of the standard library's
// package crypto/pkg, closed when the test ends; it skips the test where
// the Go source tree is not installed.
func goTestdata(t *testing.T, pkg, name string) *os.File {
	t.Helper()
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Skip("no go command to find the Go source tree:", err)
	}
	f, err := os.Open(filepath.Join(strings.TrimSpace(string(goroot)), "src", "crypto", pkg, "testdata", name))
	if err != nil {
		t.Skip("Go source tree not installed:", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestEdKeyRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		var seed [32]byte
		for j := range seed {
			seed[j] = byte(r.Uint32())
		}
		priv := ed25519.NewKeyFromSeed(seed[:])
		pub := priv.Public().(ed25519.PublicKey)
		msg := make([]byte, r.IntN(600))
		for j := range msg {
			msg[j] = byte(r.Uint32())
		}
		sig := ed25519.Sign(priv, msg)
		if !agree(t, pub, msg, sig) {
			t.Fatalf("round %d: a fresh signature does not verify", i)
		}
		// One flipped bit anywhere in the key, message or signature.
		all := [3][]byte{pub, msg, sig}
		which := r.IntN(3)
		if len(all[which]) == 0 {
			which = 2
		}
		b := append([]byte(nil), all[which]...)
		b[r.IntN(len(b))] ^= 1 << r.IntN(8)
		all[which] = b
		agree(t, all[0], all[1], all[2])
		// Random bytes as key and signature.
		junkKey, junkSig := make([]byte, 32), make([]byte, 64)
		for j := range junkKey {
			junkKey[j] = byte(r.Uint32())
		}
		for j := range junkSig {
			junkSig[j] = byte(r.Uint32())
		}
		agree(t, junkKey, msg, junkSig)
		agree(t, pub, msg, junkSig)
	}
}

// groupOrder is L, little-endian.
var groupOrder = [32]byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}

// TestEdKeyEdgeCases: non-canonical S, small-order keys and R, and
// non-canonical encodings of y (y ≥ p) as keys and as R.
func TestEdKeyEdgeCases(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	pub := priv.Public().(ed25519.PublicKey)
	msg := []byte("wicket")
	sig := ed25519.Sign(priv, msg)

	// S + L is the same scalar, not canonical: refused.
	plusL := append([]byte(nil), sig...)
	carry := 0
	for i := range 32 {
		v := int(plusL[32+i]) + int(groupOrder[i]) + carry
		plusL[32+i], carry = byte(v), v>>8
	}
	if agree(t, pub, msg, plusL) {
		t.Error("S + L verifies")
	}
	highS := append([]byte(nil), sig...)
	highS[63] |= 0x20
	if agree(t, pub, msg, highS) {
		t.Error("S with bit 253 set verifies")
	}
	if agree(t, pub, msg, sig[:63]) {
		t.Error("a short signature verifies")
	}
	// crypto/ed25519 panics on a key of the wrong length; here it
	// verifies nothing.
	if newEdKey(pub[:31]).verify(msg, sig) {
		t.Error("a short key verifies")
	}

	// The eight points of small order (encodings from "Taming the many
	// EdDSAs", Chalkias et al. 2020) and encodings of y ≥ p.
	var points [][]byte
	for _, s := range []string{
		"0100000000000000000000000000000000000000000000000000000000000000",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0000000000000000000000000000000000000000000000000000000000000080",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
	} {
		points = append(points, unhex(t, s))
	}
	for low := 0xed; low <= 0xff; low++ { // y = p ... p + 18
		for _, top := range []byte{0x7f, 0xff} {
			y := make([]byte, 32)
			for i := range y {
				y[i] = 0xff
			}
			y[0], y[31] = byte(low), top
			points = append(points, y)
		}
	}
	var accepted, refused int
	for _, a := range points {
		for _, r := range points {
			for _, s := range []byte{0, 1} {
				sig := make([]byte, 64)
				copy(sig, r)
				sig[32] = s
				if agree(t, a, msg, sig) {
					accepted++
				} else {
					refused++
				}
			}
		}
		agree(t, a, msg, sig)
	}
	// The identity as key and R with S = 0 verifies any message under the
	// cofactorless equation, as crypto/ed25519 has it; most pairs do not.
	if accepted == 0 || refused == 0 {
		t.Errorf("%d accepted, %d refused: the edge cases test nothing", accepted, refused)
	}
}

// FuzzEdKey: on any 32-byte key, message and signature, the verdict is
// crypto/ed25519's.
func FuzzEdKey(f *testing.F) {
	for _, v := range rfc8032 {
		pub, _ := hex.DecodeString(v.pub)
		msg, _ := hex.DecodeString(v.msg)
		sig, _ := hex.DecodeString(v.sig)
		f.Add(pub, msg, sig)
	}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		if len(pub) != ed25519.PublicKeySize {
			return // crypto/ed25519 panics; TestEdKeyEdgeCases covers it
		}
		agree(t, pub, msg, sig)
	})
}
