//lint:file-ignore SA1019 the vectors give keys as raw coordinates, and keys off the curve or on another curve (which the checked constructors refuse) are the point of some cases; only PublicKey.X and .Y can express them.

package verifier

import (
	"bufio"
	"compress/bzip2"
	"crypto/ecdsa"
	"crypto/elliptic"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

// agreeP256 checks newP256Key(pub).verify against SHA-256 and
// ecdsa.VerifyASN1 of the same r and s and returns the verdict.
func agreeP256(t testing.TB, pub *ecdsa.PublicKey, msg, sig []byte) bool {
	t.Helper()
	got := newP256Key(pub).verify(msg, sig)
	want := false
	if len(sig) == 64 {
		der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(msg)
		want = ecdsa.VerifyASN1(pub, sum[:], der)
	}
	if got != want {
		t.Fatalf("verify(pub %x,%x, msg %x, sig %x) = %v; crypto/ecdsa says %v", pub.X, pub.Y, msg, sig, got, want)
	}
	return got
}

// TestP256KeyNISTVectors runs the P-256 with SHA-256 vectors of the NIST
// SigVer file that crypto/ecdsa tests itself with (15, some of them
// failing for a changed message, key, r or s), when the Go source tree is
// installed.
func TestP256KeyNISTVectors(t *testing.T) {
	sc := bufio.NewScanner(bzip2.NewReader(goTestdata(t, "ecdsa", "SigVer.rsp.bz2")))
	sc.Buffer(nil, 1<<20)
	var in bool
	var msg []byte
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int), Y: new(big.Int)}
	var r, s []byte
	n, pass := 0, 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			in = line == "[P-256,SHA-256]"
			continue
		}
		k, v, ok := strings.Cut(line, " = ")
		if !in || !ok {
			continue
		}
		switch k {
		case "Msg":
			msg = unhex(t, v)
		case "Qx":
			pub.X.SetBytes(unhex(t, v))
		case "Qy":
			pub.Y.SetBytes(unhex(t, v))
		case "R":
			r = unhex(t, v)
		case "S":
			s = unhex(t, v)
		case "Result":
			sig := append(new(big.Int).SetBytes(r).FillBytes(make([]byte, 32)), new(big.Int).SetBytes(s).FillBytes(make([]byte, 32))...)
			want := strings.HasPrefix(v, "P")
			if got := agreeP256(t, pub, msg, sig); got != want {
				t.Errorf("vector %d (%s): verify = %v", n, v, got)
			}
			n++
			if want {
				pass++
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 15 || pass == 0 || pass == n {
		t.Fatalf("%d vectors, %d valid; want 15, some of each", n, pass)
	}
}

// p256Edges are r or s values at and around the bounds [1, n-1].
func p256Edges() [][]byte {
	n := p256OrderInt
	var out [][]byte
	for _, v := range []*big.Int{
		big.NewInt(0), big.NewInt(1), new(big.Int).Sub(n, big.NewInt(1)), n, new(big.Int).Add(n, big.NewInt(1)),
		new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1)),
	} {
		out = append(out, v.FillBytes(make([]byte, 32)))
	}
	return out
}

func TestP256KeyRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	edges := p256Edges()
	valid := 0
	for i := range 120 {
		priv := p256KeyFrom(r)
		pub := &priv.PublicKey
		msg := make([]byte, r.IntN(400))
		for j := range msg {
			msg[j] = byte(r.Uint32())
		}
		sig := signP256(t, priv, msg)
		if !agreeP256(t, pub, msg, sig) {
			t.Fatalf("round %d: a fresh signature does not verify", i)
		}
		valid++
		// (r, n-s) is the same signature's other half: valid too.
		sInt := new(big.Int).SetBytes(sig[32:])
		high := append(append([]byte(nil), sig[:32]...), new(big.Int).Sub(p256OrderInt, sInt).FillBytes(make([]byte, 32))...)
		if !agreeP256(t, pub, msg, high) {
			t.Fatalf("round %d: (r, n-s) does not verify", i)
		}
		// One flipped bit in the message or the signature.
		b := append([]byte(nil), sig...)
		b[r.IntN(64)] ^= 1 << r.IntN(8)
		if agreeP256(t, pub, msg, b) {
			t.Fatalf("round %d: verifies with a flipped signature bit", i)
		}
		if len(msg) > 0 {
			m := append([]byte(nil), msg...)
			m[r.IntN(len(m))] ^= 1 << r.IntN(8)
			if agreeP256(t, pub, m, sig) {
				t.Fatalf("round %d: verifies with a flipped message bit", i)
			}
		}
		// r or s at a bound, the other half kept.
		e := edges[i%len(edges)]
		agreeP256(t, pub, msg, append(append([]byte(nil), e...), sig[32:]...))
		agreeP256(t, pub, msg, append(append([]byte(nil), sig[:32]...), e...))
		// Another key, wrong lengths.
		if agreeP256(t, &p256KeyFrom(r).PublicKey, msg, sig) {
			t.Fatalf("round %d: verifies under another key", i)
		}
		agreeP256(t, pub, msg, sig[:63])
		agreeP256(t, pub, msg, append(sig, 0))
	}
	if valid != 120 {
		t.Fatalf("%d valid signatures", valid)
	}
}

// TestP256KeyNotOnCurve: a key that is not a P-256 point verifies nothing.
func TestP256KeyNotOnCurve(t *testing.T) {
	priv := p256KeyFrom(rand.New(rand.NewPCG(7, 8)))
	sig := signP256(t, priv, []byte("m"))
	bad := &ecdsa.PublicKey{Curve: elliptic.P256(), X: priv.X, Y: new(big.Int).Add(priv.Y, big.NewInt(1))}
	if newP256Key(bad).verify([]byte("m"), sig) {
		t.Fatal("a key off the curve verified a signature")
	}
	if other := (&ecdsa.PublicKey{Curve: elliptic.P384(), X: priv.X, Y: priv.Y}); newP256Key(other).verify([]byte("m"), sig) {
		t.Fatal("a P-384 key verified a P-256 signature")
	}
}

func FuzzP256Key(f *testing.F) {
	priv := p256KeyFrom(rand.New(rand.NewPCG(9, 10)))
	for _, m := range []string{"", "a", "voucher"} {
		f.Add([]byte(m), signP256(f, priv, []byte(m)))
	}
	for _, e := range p256Edges() {
		f.Add([]byte("a"), append(append([]byte(nil), e...), e...))
	}
	f.Fuzz(func(t *testing.T, msg, sig []byte) {
		agreeP256(t, &priv.PublicKey, msg, sig)
	})
}

// p256KeyFrom makes a P-256 key from r.
func p256KeyFrom(r *rand.Rand) *ecdsa.PrivateKey {
	for {
		d := make([]byte, 32)
		for i := range d {
			d[i] = byte(r.Uint32())
		}
		if k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d); err == nil {
			return k
		}
	}
}

// signP256 signs msg as COSE ES256 does: SHA-256, r and s of 32 bytes.
func signP256(t testing.TB, priv *ecdsa.PrivateKey, msg []byte) []byte {
	t.Helper()
	sum := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(cryptorand.Reader, priv, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
}
