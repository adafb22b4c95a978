package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"os"
	"strings"
	"time"

	"wicket/decoder"
)

func cmdIssue(e env, args []string) error {
	fs := newFlags(e, "issue", "-key ISSUER.key -issuer ID -kind KIND -subject HEX|-id-number N -pseudonym-secret FILE [flags]")
	keyPath := fs.String("key", "", "issuer private key")
	issuer := fs.String("issuer", "", "issuer id, as in the key set")
	kindS := fs.String("kind", "printed", "dynamic, printed or watch")
	classS := fs.String("class", "adult", "adult, child or elderly")
	colourS := fs.String("colour", "green", "green, yellow or red")
	subject := fs.String("subject", "", "subject pseudonym (hex, 8 to 32 bytes)")
	idNumber := fs.String("id-number", "", "ID number to derive the pseudonym from (never stored in the voucher)")
	secret := fs.String("pseudonym-secret", "", "issuer's pseudonym secret file (with -id-number)")
	name := fs.String("name", "", "holder's name; only a masked form (张*明) goes into the voucher")
	valid := fs.Duration("valid", 0, "validity (default 5m for dynamic and watch, 720h for printed)")
	iatS := fs.String("issued-at", "", "issue time, RFC 3339 (default now)")
	idHex := fs.String("voucher-id", "", "voucher id, hex (default 16 random bytes)")
	testS := fs.String("test", "", "latest test KIND:RESULT:TIME, e.g. naat:negative:2026-06-01T08:00:00+08:00")
	doses := fs.Int("doses", 0, "vaccine doses")
	lastDose := fs.String("last-dose", "", "time of the last dose, RFC 3339")
	png := fs.String("png", "", "also write the QR code as a PNG to this file")
	card := fs.String("card", "", "also write a printable ID-card-sized voucher PNG to this file")
	font := fs.String("font", "", "CJK font for -card (.ttf/.ttc); default: search the system")
	photo := fs.String("photo", "", "holder's photo (JPEG or PNG) to print on -card for the attendant to compare; it goes into no QR code or record")
	asJSON := fs.Bool("json", false, "print a JSON object instead of the bare text")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *keyPath == "" || *issuer == "" {
		return usagef("-key and -issuer are required")
	}
	if *photo != "" && *card == "" {
		return usagef("-photo is printed on the card only: add -card FILE")
	}
	var holderPhoto image.Image
	if *photo != "" {
		var err error
		if holderPhoto, err = readPhoto(*photo); err != nil {
			return fmt.Errorf("-photo: %w", err)
		}
	}
	kind, err := decoder.ParseKind(*kindS)
	if err != nil {
		return usagef("-kind: %v", err)
	}
	class, err := decoder.ParseClass(*classS)
	if err != nil {
		return usagef("-class: %v", err)
	}
	colour, err := decoder.ParseColour(*colourS)
	if err != nil {
		return usagef("-colour: %v", err)
	}
	sub, err := subjectFrom(*subject, *idNumber, *secret)
	if err != nil {
		return err
	}
	iat := time.Now()
	if *iatS != "" {
		if iat, err = time.Parse(time.RFC3339, *iatS); err != nil {
			return usagef("-issued-at: %v", err)
		}
	}
	if *valid == 0 {
		*valid = 5 * time.Minute
		if kind == decoder.KindPrinted {
			*valid = 720 * time.Hour
		}
	}
	id := make([]byte, 16)
	if *idHex != "" {
		if id, err = hex.DecodeString(*idHex); err != nil {
			return usagef("-voucher-id: %v", err)
		}
	} else {
		rand.Read(id)
	}
	c := &decoder.Claims{
		Issuer: *issuer, IssuedAt: iat.Unix(), Expiry: iat.Add(*valid).Unix(), ID: id,
		Voucher: decoder.Voucher{
			Version: decoder.VoucherVersion, Subject: sub, Colour: colour, Kind: kind, Class: class,
			Name: MaskName(*name),
		},
	}
	if *testS != "" {
		if c.Voucher.Test, err = parseTest(*testS); err != nil {
			return usagef("-test: %v", err)
		}
	}
	if *doses > 0 {
		c.Voucher.Vaccination = &decoder.Vaccination{Doses: uint8(min(*doses, 255)), Last: iat.Unix()}
		if *lastDose != "" {
			t, err := time.Parse(time.RFC3339, *lastDose)
			if err != nil {
				return usagef("-last-dose: %v", err)
			}
			c.Voucher.Vaccination.Last = t.Unix()
		}
	}
	signer, err := readSigner(*keyPath)
	if err != nil {
		return err
	}
	text, err := decoder.Issue(signer, c)
	if err != nil {
		return err
	}
	if *png != "" {
		if err := writeQRPNG(*png, text); err != nil {
			return fmt.Errorf("-png: %w", err)
		}
	}
	if *card != "" {
		if err := writeCard(e, *card, text, c, *font, holderPhoto); err != nil {
			return fmt.Errorf("-card: %w", err)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(map[string]any{
			"text": text, "voucher_id": hex.EncodeToString(id), "subject": hex.EncodeToString(sub),
			"kid": hex.EncodeToString(signer.Kid()), "issued_at": iat.UTC(), "expires": c.ExpiryTime().UTC(),
		})
	}
	fmt.Fprintln(e.stdout, text)
	return nil
}

// MaskName keeps the first and last character of a name and masks the
// rest: 张三明 → 张*明, 张明 → 张*. A name with a * is taken as masked.
func MaskName(name string) string {
	if name == "" || strings.Contains(name, "*") {
		return name
	}
	r := []rune(name)
	switch len(r) {
	case 1:
		return "*"
	case 2:
		return string(r[0]) + "*"
	}
	return string(r[0]) + strings.Repeat("*", len(r)-2) + string(r[len(r)-1])
}

func parseTest(s string) (*decoder.Test, error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("%q is not KIND:RESULT:TIME", s)
	}
	k, err := decoder.ParseTestKind(parts[0])
	if err != nil {
		return nil, err
	}
	var res decoder.TestResult
	switch parts[1] {
	case "negative":
	case "positive":
		res = decoder.ResultPositive
	default:
		return nil, fmt.Errorf("result %q: want negative or positive", parts[1])
	}
	t, err := time.Parse(time.RFC3339, parts[2])
	if err != nil {
		return nil, err
	}
	return &decoder.Test{Kind: k, Result: res, Sampled: t.Unix()}, nil
}

// subjectFrom takes a hex pseudonym, or derives one from an ID number.
func subjectFrom(hexSub, idNumber, secretPath string) ([]byte, error) {
	switch {
	case hexSub != "" && idNumber != "":
		return nil, usagef("give -subject or -id-number, not both")
	case hexSub != "":
		b, err := hex.DecodeString(hexSub)
		if err != nil || len(b) < decoder.MinIDLen || len(b) > decoder.MaxIDLen {
			return nil, usagef("-subject: want %d to %d bytes of hex", decoder.MinIDLen, decoder.MaxIDLen)
		}
		return b, nil
	case idNumber != "":
		if secretPath == "" {
			return nil, usagef("-id-number needs -pseudonym-secret")
		}
		secret, err := readSecret(secretPath)
		if err != nil {
			return nil, err
		}
		return Pseudonym(secret, idNumber), nil
	}
	return nil, usagef("-subject or -id-number is required")
}

// Pseudonym is HMAC-SHA-256(secret, "wicket-subject-v1:" + ID number in
// upper case, spaces removed), first 16 bytes: stable per person for one
// issuer's secret, and no way back to the number without the secret.
func Pseudonym(secret []byte, idNumber string) []byte {
	norm := strings.ToUpper(strings.Join(strings.Fields(idNumber), ""))
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("wicket-subject-v1:" + norm))
	return m.Sum(nil)[:16]
}

func readSecret(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: mode %v lets others read a secret; chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 32 {
		return nil, fmt.Errorf("%s: a secret needs at least 32 bytes, has %d", path, len(b))
	}
	return b, nil
}

func cmdPseudonym(e env, args []string) error {
	fs := newFlags(e, "pseudonym", "-secret FILE [-new] [-id-number N]")
	sf := addSecretFileFlags(fs, "pseudonym secret file")
	idNumber := fs.String("id-number", "", "ID number to derive the pseudonym of")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := sf.prepare(e); err != nil {
		return err
	}
	if *idNumber != "" {
		s, err := readSecret(*sf.path)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, hex.EncodeToString(Pseudonym(s, *idNumber)))
	}
	return nil
}

// secretFileFlags are the -secret FILE and -new flags of the commands
// that make and use a pseudonym secret.
type secretFileFlags struct {
	path   *string
	create *bool
}

func addSecretFileFlags(fs *flag.FlagSet, what string) secretFileFlags {
	return secretFileFlags{
		path:   fs.String("secret", "", what),
		create: fs.Bool("new", false, "create the file (32 random bytes, 0600; never overwrites)"),
	}
}

// prepare checks -secret is given and, with -new, creates the file.
func (s secretFileFlags) prepare(e env) error {
	if *s.path == "" {
		return usagef("-secret is required")
	}
	if *s.create {
		return newSecretFile(e, *s.path)
	}
	return nil
}

// newSecretFile writes 32 random bytes to a new file of mode 0600; an
// existing file is never overwritten.
func newSecretFile(e env, path string) error {
	b := make([]byte, 32)
	rand.Read(b)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	f.Write(b)
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s (32 random bytes, 0600)\n", path)
	return nil
}

// parseTime reads RFC 3339, or a Go duration from now (336h, -1h).
func parseTime(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(d), nil
	}
	return time.Parse(time.RFC3339, s)
}
