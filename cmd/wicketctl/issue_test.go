package main

import (
	"bytes"
	"encoding/hex"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMaskName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""}, {"张", "*"}, {"张明", "张*"}, {"张三明", "张*明"}, {"欧阳小明", "欧**明"},
		{"Li Wei", "L****i"}, {"张*明", "张*明"},
	} {
		if got := MaskName(tc.in); got != tc.want {
			t.Errorf("MaskName(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestPseudonym(t *testing.T) {
	secret := bytes.Repeat([]byte{1}, 32)
	a := Pseudonym(secret, "450100 20000101 123x")
	b := Pseudonym(secret, "45010020000101123X")
	if !bytes.Equal(a, b) || len(a) != 16 {
		t.Fatalf("Pseudonym is not stable under spacing and case: %x vs %x", a, b)
	}
	if bytes.Equal(a, Pseudonym(bytes.Repeat([]byte{2}, 32), "45010020000101123X")) {
		t.Error("two secrets give the same pseudonym")
	}
	if bytes.Contains([]byte(hex.EncodeToString(a)), []byte("450100")) {
		t.Error("pseudonym shows the ID number")
	}
}

// TestIssueCardPhoto: -photo prints the holder's photo on the -card and
// changes nothing else: the voucher text (the QR payload) is the same
// byte for byte. A photo without a card, or a file that is no usable
// photo, is refused before anything is written.
func TestIssueCardPhoto(t *testing.T) {
	dir := t.TempDir()
	stem := filepath.Join(dir, "issuer")
	if rc, _, errs := run(t, "keygen", "-out", stem); rc != exitOK {
		t.Fatal(errs)
	}
	var img bytes.Buffer
	png.Encode(&img, image.NewGray(image.Rect(0, 0, 300, 400)))
	photo := filepath.Join(dir, "holder.png")
	notes := filepath.Join(dir, "holder.txt")
	os.WriteFile(photo, img.Bytes(), 0o600)
	os.WriteFile(notes, []byte("not a picture\n"), 0o600)
	issue := func(extra ...string) (int, string, string) {
		args := []string{"issue", "-key", stem + ".key", "-issuer", "metro", "-subject", "00112233445566778899aabbccddeeff",
			"-voucher-id", "7f3a91c20b1d2e3f405162738495a6b7", "-issued-at", "2026-12-01T08:00:00Z", "-name", "张三明"}
		return run(t, append(args, extra...)...)
	}
	plainCard, photoCard := filepath.Join(dir, "plain.png"), filepath.Join(dir, "photo.png")
	rc, plain, errs := issue("-card", plainCard)
	if rc != exitOK {
		t.Fatalf("issue -card = %d: %s", rc, errs)
	}
	rc, withPhoto, errs := issue("-card", photoCard, "-photo", photo)
	if rc != exitOK {
		t.Fatalf("issue -card -photo = %d: %s", rc, errs)
	}
	if plain == "" || plain != withPhoto {
		t.Errorf("voucher text with -photo = %q; without = %q; want the same", withPhoto, plain)
	}
	a, errA := os.ReadFile(plainCard)
	b, errB := os.ReadFile(photoCard)
	if errA != nil || errB != nil || bytes.Equal(a, b) {
		t.Errorf("cards with and without a photo: %v, %v, same bytes %v; want two different cards", errA, errB, bytes.Equal(a, b))
	}
	if bytes.Contains(b, img.Bytes()) {
		t.Error("the photo file is embedded in the card PNG as it was given")
	}

	for _, tc := range []struct {
		name   string
		args   []string
		rc     int
		stderr string
	}{
		{"photo without card", []string{"-photo", photo}, exitUsage, "-photo is printed on the card only"},
		{"not a picture", []string{"-card", filepath.Join(dir, "bad.png"), "-photo", notes}, exitFail, "-photo: unusable photo: " + notes + " is not a JPEG or PNG image"},
		{"missing", []string{"-card", filepath.Join(dir, "bad.png"), "-photo", filepath.Join(dir, "none.jpg")}, exitFail, "no such file"},
	} {
		rc, out, errs := issue(tc.args...)
		if rc != tc.rc || !strings.Contains(errs, tc.stderr) || out != "" {
			t.Errorf("issue (%s) = %d, stdout %q, stderr %q; want %d and %q, nothing on stdout", tc.name, rc, out, errs, tc.rc, tc.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.png")); err == nil {
		t.Error("a card was written although the photo was refused")
	}
}
