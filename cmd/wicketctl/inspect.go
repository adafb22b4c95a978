package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"wicket/decoder"
	"wicket/verifier"
)

// inspection is everything inspect learns about a code, layer by layer.
// Fields stay empty past the layer that failed.
type inspection struct {
	TextLength         int                `json:"text_length"`
	Prefix             string             `json:"prefix,omitempty"`
	CompressedLength   int                `json:"compressed_length,omitempty"`
	DecompressedLength int                `json:"decompressed_length,omitempty"`
	Alg                string             `json:"alg,omitempty"`
	Kid                string             `json:"kid,omitempty"`
	Claims             *claimsView        `json:"claims,omitempty"`
	Signature          string             `json:"signature"`
	Error              string             `json:"error,omitempty"`
	Reason             verifier.Reason    `json:"reason,omitempty"`
	Decision           *verifier.Decision `json:"decision,omitempty"`
}

type claimsView struct {
	Issuer      string               `json:"issuer"`
	IssuedAt    time.Time            `json:"issued_at"`
	NotBefore   *time.Time           `json:"not_before,omitempty"`
	Expires     time.Time            `json:"expires"`
	VoucherID   string               `json:"voucher_id"`
	Subject     string               `json:"subject"`
	Colour      decoder.Colour       `json:"colour"`
	Kind        decoder.Kind         `json:"kind"`
	Class       decoder.Class        `json:"class"`
	Name        string               `json:"masked_name,omitempty"`
	Test        *testView            `json:"test,omitempty"`
	Vaccination *decoder.Vaccination `json:"-"`
	Doses       int                  `json:"doses,omitempty"`
	LastDose    *time.Time           `json:"last_dose,omitempty"`
}

type testView struct {
	Kind    decoder.TestKind   `json:"kind"`
	Result  decoder.TestResult `json:"result"`
	Sampled time.Time          `json:"sampled"`
}

func viewClaims(c *decoder.Claims) *claimsView {
	v := &claimsView{
		Issuer: c.Issuer, IssuedAt: c.IssuedTime().UTC(), Expires: c.ExpiryTime().UTC(),
		VoucherID: hex.EncodeToString(c.ID), Subject: hex.EncodeToString(c.Voucher.Subject),
		Colour: c.Voucher.Colour, Kind: c.Voucher.Kind, Class: c.Voucher.Class, Name: c.Voucher.Name,
	}
	if c.NotBefore != 0 {
		t := time.Unix(c.NotBefore, 0).UTC()
		v.NotBefore = &t
	}
	if t := c.Voucher.Test; t != nil {
		v.Test = &testView{Kind: t.Kind, Result: t.Result, Sampled: time.Unix(t.Sampled, 0).UTC()}
	}
	if d := c.Voucher.Vaccination; d != nil {
		v.Doses = int(d.Doses)
		if d.Last != 0 {
			t := time.Unix(d.Last, 0).UTC()
			v.LastDose = &t
		}
	}
	return v
}

func cmdInspect(e env, args []string) error {
	fs := newFlags(e, "inspect", "[-json] [-roots ROOT.pub... -keyset FILE] [-batch FILE...] [-at T] [CODE]   (code from stdin if not given)")
	asJSON := fs.Bool("json", false, "print JSON")
	var roots, batches multiFlag
	fs.Var(&roots, "roots", "root public key to verify with (repeat)")
	keyset := fs.String("keyset", "", "signed key set to verify the code with (needs -roots)")
	fs.Var(&batches, "batch", "signed revocation/override batch to apply (repeat)")
	at := fs.String("at", "", "decide as of this time (RFC 3339)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var text []byte
	switch fs.NArg() {
	case 0:
		b, err := io.ReadAll(io.LimitReader(e.stdin, decoder.MaxTextLen+2))
		if err != nil {
			return err
		}
		text = bytes.TrimRight(b, "\r\n")
	case 1:
		text = []byte(fs.Arg(0))
	default:
		return usagef("one code at most")
	}
	var v *verifier.Verifier
	if *keyset != "" {
		var err error
		if v, err = inspectVerifier(roots, *keyset, batches, *at); err != nil {
			return err
		}
	}
	in := inspect(text, v)
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		enc.Encode(in)
	} else {
		printInspection(e.stdout, in)
	}
	if in.Error != "" || (in.Decision != nil && !in.Decision.Allow) {
		return errFailed
	}
	return nil
}

func inspectVerifier(rootPaths []string, keysetPath string, batches []string, at string) (*verifier.Verifier, error) {
	if len(rootPaths) == 0 {
		return nil, usagef("-keyset needs -roots")
	}
	var roots verifier.RootKeys
	for _, p := range rootPaths {
		k, err := verifier.ReadPublicKeyFile(p)
		if err != nil {
			return nil, fmt.Errorf("-roots %s: %w", p, err)
		}
		roots = append(roots, k)
	}
	var clock verifier.Clock = verifier.SystemClock{}
	if at != "" {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return nil, usagef("-at: %v", err)
		}
		clock = verifier.FixedClock(t)
	}
	doc, err := os.ReadFile(keysetPath)
	if err != nil {
		return nil, err
	}
	ks, err := roots.ParseKeySet(doc)
	if err != nil {
		return nil, fmt.Errorf("-keyset: %w", err)
	}
	status := verifier.NewMemStatus()
	p := verifier.DefaultPolicy()
	if len(batches) == 0 {
		p.MaxStatusAge = 0
	}
	v, err := verifier.New(verifier.NewTrustedClock(clock, time.Time{}), status, &p)
	if err != nil {
		return nil, err
	}
	if err := v.InstallKeySet(ks); err != nil {
		return nil, err
	}
	for _, path := range batches {
		doc, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		b, err := roots.ParseBatch(doc)
		if err != nil {
			return nil, fmt.Errorf("-batch %s: %w", path, err)
		}
		if err := status.Apply(b, clock.Now()); err != nil {
			return nil, fmt.Errorf("-batch %s: %w", path, err)
		}
	}
	return v, nil
}

// inspect decodes every layer it can, claims included, whether or not
// the signature verifies.
func inspect(text []byte, v *verifier.Verifier) *inspection {
	in := &inspection{TextLength: len(text), Signature: "not checked (give -roots and -keyset)"}
	fail := func(err error) *inspection {
		in.Error = err.Error()
		in.Reason = verifier.ReasonForError(err)
		return in
	}
	if v != nil {
		d := v.Verify(text)
		in.Decision = &d
		in.Signature = "verified"
		if d.Voucher == nil {
			in.Signature = "not verified: " + string(d.Reason)
		}
	}
	if bytes.HasPrefix(text, []byte(decoder.Prefix)) {
		in.Prefix = decoder.Prefix
		if c, err := decoder.Base45Decode(string(text[len(decoder.Prefix):])); err == nil {
			in.CompressedLength = len(c)
		}
	}
	cose, err := decoder.Unwrap(text, decoder.Prefix)
	if err != nil {
		return fail(err)
	}
	in.DecompressedLength = len(cose)
	env, err := decoder.ParseSign1(cose)
	if err != nil {
		return fail(err)
	}
	in.Alg, in.Kid = env.Alg.String(), hex.EncodeToString(env.Kid)
	c, err := decoder.ParseClaims(env.Payload)
	if err != nil {
		return fail(err)
	}
	in.Claims = viewClaims(c)
	return in
}

func printInspection(w io.Writer, in *inspection) {
	fmt.Fprintf(w, "text:          %d characters\n", in.TextLength)
	if in.Prefix != "" {
		fmt.Fprintf(w, "prefix:        %s\n", in.Prefix)
	}
	if in.CompressedLength > 0 {
		fmt.Fprintf(w, "zlib:          %d bytes → %d bytes of COSE\n", in.CompressedLength, in.DecompressedLength)
	}
	if in.Alg != "" {
		fmt.Fprintf(w, "cose_sign1:    alg %s, kid %s\n", in.Alg, in.Kid)
	}
	if c := in.Claims; c != nil {
		fmt.Fprintf(w, "issuer:        %s\nissued at:     %s\n", c.Issuer, c.IssuedAt.Format(time.RFC3339))
		if c.NotBefore != nil {
			fmt.Fprintf(w, "not before:    %s\n", c.NotBefore.Format(time.RFC3339))
		}
		fmt.Fprintf(w, "expires:       %s\nvoucher id:    %s\nsubject:       %s\n", c.Expires.Format(time.RFC3339), c.VoucherID, c.Subject)
		fmt.Fprintf(w, "colour:        %v\nkind:          %v\nclass:         %v\nname:          %s\n", c.Colour, c.Kind, c.Class, c.Name)
		if t := c.Test; t != nil {
			fmt.Fprintf(w, "test:          %v %v, sampled %s\n", t.Kind, t.Result, t.Sampled.Format(time.RFC3339))
		}
		if c.LastDose != nil {
			fmt.Fprintf(w, "vaccination:   %d doses, last %s\n", c.Doses, c.LastDose.Format(time.RFC3339))
		}
	}
	fmt.Fprintf(w, "signature:     %s\n", in.Signature)
	if in.Error != "" {
		fmt.Fprintf(w, "ERROR:         %s (reason %s)\n", in.Error, in.Reason)
	}
	if d := in.Decision; d != nil {
		verdict := "DENY"
		if d.Allow {
			verdict = "ALLOW"
		}
		fmt.Fprintf(w, "decision:      %s %s  %s / %s\n", verdict, d.Reason, d.Message.Zh, d.Message.En)
		if d.Detail != "" {
			fmt.Fprintf(w, "detail:        %s\n", d.Detail)
		}
	}
}
