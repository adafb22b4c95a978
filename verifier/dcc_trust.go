package verifier

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"wicket/decoder"
)

// DCC signer certificates (document signer certificates, DSCs) become
// keys of the signed key set with Profile "dcc": the kid is the first 8
// bytes of the SHA-256 of the certificate's DER unless a trust list gives
// another (real lists hold kids of other lengths), the issuer is the
// certificate's country, the window is its validity, and the extended key
// usage OIDs of the DCC specification restrict it to test, vaccination or
// recovery certificates (no such OID: all three).

// dccEKU maps the specification's extended key usage OIDs (both the
// published arc and the one with a 0 that some countries use) to types.
var dccEKU = map[string]string{
	"1.3.6.1.4.1.1847.2021.1.1":   dccTest,
	"1.3.6.1.4.1.1847.2021.1.2":   dccVaccination,
	"1.3.6.1.4.1.1847.2021.1.3":   dccRecovery,
	"1.3.6.1.4.1.0.1847.2021.1.1": dccTest,
	"1.3.6.1.4.1.0.1847.2021.1.2": dccVaccination,
	"1.3.6.1.4.1.0.1847.2021.1.3": dccRecovery,
}

// DCCSignerKey makes a key-set entry of a DER signer certificate. kid nil
// means the first 8 bytes of SHA-256(der); country "" means the
// certificate subject's C (a trust list's country wins: some signer
// certificates name none).
func DCCSignerKey(der, kid []byte, country string) (IssuerKey, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return IssuerKey{}, fmt.Errorf("dcc signer certificate unparseable: %w", err)
	}
	if kid == nil {
		sum := sha256.Sum256(der)
		kid = sum[:8]
	}
	if len(kid) == 0 || len(kid) > decoder.MaxKidLen {
		return IssuerKey{}, fmt.Errorf("dcc signer kid of %d bytes, want 1 to %d", len(kid), decoder.MaxKidLen)
	}
	if country == "" && len(cert.Subject.Country) > 0 {
		country = cert.Subject.Country[0]
	}
	if country == "" {
		return IssuerKey{}, errors.New("dcc signer certificate names no country (subject C) and the list gives none")
	}
	switch pub := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return IssuerKey{}, fmt.Errorf("dcc signer key is ECDSA %s; the DCC algorithms are ES256 (P-256) and PS256 (RSA)", pub.Curve.Params().Name)
		}
	case *rsa.PublicKey:
	default:
		return IssuerKey{}, fmt.Errorf("dcc signer key is %T; the DCC algorithms are ES256 (P-256) and PS256 (RSA)", pub)
	}
	pk, err := NewPublicKey(cert.PublicKey, kid)
	if err != nil {
		return IssuerKey{}, fmt.Errorf("dcc signer key: %w", err)
	}
	k := IssuerKey{PublicKey: pk, Issuer: country, NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, Profile: dccProfileName}
	for _, oid := range cert.UnknownExtKeyUsage {
		if t, ok := dccEKU[oid.String()]; ok && !slices.Contains(k.Types, t) {
			k.Types = append(k.Types, t)
		}
	}
	return k, nil
}

// trustList is the JSON form of the DSC lists countries publish: base64
// kid, country and DER certificate per entry. The DCC gateway's own trust
// list is a bare array of such entries with a certificateType (only DSC
// entries are signers).
type trustList struct {
	Certificates []trustListEntry `json:"certificates"`
}

type trustListEntry struct {
	Kid             string `json:"kid"`
	Country         string `json:"country"`
	RawData         string `json:"rawData"`
	CertificateType string `json:"certificateType"`
}

// DCCSkipped is a signer of a trust file that is not taken, and why.
type DCCSkipped struct {
	// Entry names it: "entry 3 (kid 0a1b…, FR)" or "certificate 2".
	Entry  string
	Reason string
}

// ParseDCCSigners reads signer certificates from PEM (any number of
// CERTIFICATE blocks), a single DER certificate, or a JSON trust list. It
// takes every usable signer and reports each other one with its reason
// (unparseable, a key of another curve or algorithm, no country, expired
// at now); an error means the file is none of these forms or holds no
// usable signer.
func ParseDCCSigners(data []byte, now time.Time) ([]IssuerKey, []DCCSkipped, error) {
	var keys []IssuerKey
	var skipped []DCCSkipped
	take := func(entry string, der, kid []byte, country string) {
		k, err := DCCSignerKey(der, kid, country)
		switch {
		case err != nil:
			skipped = append(skipped, DCCSkipped{entry, err.Error()})
		case now.After(k.NotAfter):
			skipped = append(skipped, DCCSkipped{entry, "expired on " + k.NotAfter.UTC().Format(time.DateOnly)})
		default:
			keys = append(keys, k)
		}
	}
	trimmed := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(trimmed, []byte("{")), bytes.HasPrefix(trimmed, []byte("[")):
		var tl trustList
		var err error
		if trimmed[0] == '[' {
			err = json.Unmarshal(trimmed, &tl.Certificates)
		} else {
			err = json.Unmarshal(trimmed, &tl)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("dcc trust list: %w", err)
		}
		for i, c := range tl.Certificates {
			entry := fmt.Sprintf("entry %d (kid %s, %s)", i, c.Kid, c.Country)
			if c.CertificateType != "" && c.CertificateType != "DSC" {
				skipped = append(skipped, DCCSkipped{entry, "certificateType " + c.CertificateType + ", not a document signer (DSC)"})
				continue
			}
			der, err := base64.StdEncoding.DecodeString(c.RawData)
			if err != nil {
				skipped = append(skipped, DCCSkipped{entry, "rawData is not base64: " + err.Error()})
				continue
			}
			var kid []byte
			if c.Kid != "" {
				if kid, err = base64.StdEncoding.DecodeString(c.Kid); err != nil {
					skipped = append(skipped, DCCSkipped{entry, "kid is not base64: " + err.Error()})
					continue
				}
			}
			take(entry, der, kid, strings.ToUpper(c.Country))
		}
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		n := 0
		for rest := trimmed; ; {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if blk.Type != "CERTIFICATE" {
				continue
			}
			take(fmt.Sprintf("certificate %d", n), blk.Bytes, nil, "")
			n++
		}
		if n == 0 {
			return nil, nil, errors.New("no PEM CERTIFICATE block")
		}
	default:
		var probe asn1.RawValue
		if _, err := asn1.Unmarshal(data, &probe); err != nil {
			return nil, nil, errors.New("not a PEM or DER certificate or a JSON trust list")
		}
		take("certificate", data, nil, "")
	}
	if len(keys) == 0 {
		var why []string
		for _, s := range skipped {
			why = append(why, s.Entry+": "+s.Reason)
		}
		return nil, skipped, fmt.Errorf("no usable dcc signer (%s)", strings.Join(why, "; "))
	}
	return keys, skipped, nil
}
