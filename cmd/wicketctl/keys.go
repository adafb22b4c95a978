package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"wicket/decoder"
	"wicket/verifier"
)

func cmdKeygen(e env, args []string) error {
	fs := newFlags(e, "keygen", "-alg EdDSA|ES256 -out NAME   (writes NAME.key 0600 and NAME.pub)")
	alg := fs.String("alg", "EdDSA", "EdDSA (Ed25519) or ES256 (P-256)")
	out := fs.String("out", "", "file name stem")
	force := fs.Bool("force", false, "overwrite existing files")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("-out is required")
	}
	a, err := decoder.ParseAlg(*alg)
	if err != nil {
		return usagef("-alg: %v", err)
	}
	var priv crypto.Signer
	if a == decoder.AlgEdDSA {
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	} else {
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if *force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	if err := writePEM(*out+".key", "PRIVATE KEY", der, 0o600, flags); err != nil {
		return err
	}
	if err := writePEM(*out+".pub", "PUBLIC KEY", pubDER, 0o644, flags); err != nil {
		return err
	}
	kid, _ := decoder.KeyID(priv.Public())
	fmt.Fprintf(e.stdout, "wrote %s.key (private, 0600) and %s.pub; alg %v, kid %x\n", *out, *out, a, kid)
	return nil
}

func writePEM(path, typ string, der []byte, mode os.FileMode, flags int) error {
	f, err := os.OpenFile(path, flags, mode)
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: typ, Bytes: der}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readSigner reads a PKCS#8 PEM private key and refuses one that others
// can read.
func readSigner(path string) (*decoder.Signer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: mode %v lets others read a private key; chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	return decoder.NewSigner(s, nil)
}

func cmdKeyset(e env, args []string) error {
	fs := newFlags(e, "keyset", "-root ROOT.key -version N -out FILE [-key 'pub=FILE,issuer=ID[,kinds=dynamic+printed+watch][,not-before=T][,not-after=T]']... [-dcc SIGNERS]...")
	root := fs.String("root", "", "root private key that gates pin")
	ver := fs.Uint64("version", 0, "key set version; must be higher than every earlier one")
	out := fs.String("out", "", "output file (signed COSE)")
	var keys multiFlag
	fs.Var(&keys, "key", "an issuer key (repeat): pub=FILE,issuer=ID,kinds=...,not-before=RFC3339,not-after=RFC3339 (default: now to +1 year, all kinds)")
	var dcc multiFlag
	fs.Var(&dcc, "dcc", "EU DCC signer certificates (repeat): a PEM bundle, a DER certificate or a JSON trust list")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *root == "" || *out == "" || *ver == 0 || len(keys)+len(dcc) == 0 {
		return usagef("-root, -version, -out and at least one -key or -dcc are required")
	}
	signer, err := readSigner(*root)
	if err != nil {
		return err
	}
	now := time.Now().Truncate(time.Second)
	spec := verifier.KeySetSpec{Version: *ver, IssuedAt: now}
	for _, k := range keys {
		ik, err := parseKeySpec(k, now)
		if err != nil {
			return usagef("-key %q: %v", k, err)
		}
		spec.Keys = append(spec.Keys, ik)
	}
	skippedAll := 0
	for _, path := range dcc {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		signers, skipped, err := verifier.ParseDCCSigners(data, now)
		skippedAll += len(skipped)
		for _, sk := range skipped {
			fmt.Fprintf(e.stdout, "dcc signer skipped: %s: %s: %s\n", path, sk.Entry, sk.Reason)
		}
		if err != nil {
			return fmt.Errorf("-dcc %s: %w", path, err)
		}
		for _, k := range signers {
			types := "all types"
			if len(k.Types) > 0 {
				types = strings.Join(k.Types, "+")
			}
			fmt.Fprintf(e.stdout, "dcc signer %s kid %x %v %s to %s, %s\n", k.Issuer, k.Kid, k.Alg,
				k.NotBefore.UTC().Format(time.DateOnly), k.NotAfter.UTC().Format(time.DateOnly), types)
		}
		spec.Keys = append(spec.Keys, signers...)
	}
	doc, err := spec.Sign(signer)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, doc, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s: key set version %d, %d keys, signed by root kid %x\n", *out, *ver, len(spec.Keys), signer.Kid())
	if skippedAll > 0 {
		fmt.Fprintf(e.stdout, "%d dcc signers skipped (listed above); the key set holds every other one\n", skippedAll)
	}
	return nil
}

func parseKeySpec(s string, now time.Time) (verifier.IssuerKey, error) {
	k := verifier.IssuerKey{
		NotBefore: now, NotAfter: now.AddDate(1, 0, 0),
		Kinds: []decoder.Kind{decoder.KindDynamic, decoder.KindPrinted, decoder.KindWatch},
	}
	var pubPath string
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return k, fmt.Errorf("%q is not name=value", part)
		}
		var err error
		switch name {
		case "pub":
			pubPath = val
		case "issuer":
			k.Issuer = val
		case "kinds":
			k.Kinds = nil
			for _, n := range strings.Split(val, "+") {
				kind, err := decoder.ParseKind(n)
				if err != nil {
					return k, err
				}
				k.Kinds = append(k.Kinds, kind)
			}
		case "not-before":
			k.NotBefore, err = time.Parse(time.RFC3339, val)
		case "not-after":
			k.NotAfter, err = time.Parse(time.RFC3339, val)
		case "kid":
			var kid []byte
			if kid, err = hex.DecodeString(val); err == nil {
				k.Kid = kid
			}
		default:
			return k, fmt.Errorf("unknown field %q", name)
		}
		if err != nil {
			return k, fmt.Errorf("%s: %w", name, err)
		}
	}
	if pubPath == "" || k.Issuer == "" {
		return k, errors.New("pub and issuer are required")
	}
	kid := k.Kid
	pk, err := verifier.ReadPublicKeyFile(pubPath)
	if err != nil {
		return k, err
	}
	k.PublicKey = pk
	if kid != nil {
		k.Kid = kid
	}
	return k, nil
}
