package verifier

import (
	"bytes"
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
// certificate subject's C.
func DCCSignerKey(der, kid []byte, country string) (IssuerKey, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return IssuerKey{}, fmt.Errorf("dcc signer certificate: %w", err)
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
		return IssuerKey{}, errors.New("dcc signer certificate names no country (subject C); give one")
	}
	pk, err := NewPublicKey(cert.PublicKey, kid)
	if err != nil {
		return IssuerKey{}, fmt.Errorf("dcc signer key: %w", err)
	}
	if pk.Alg == decoder.AlgEdDSA {
		return IssuerKey{}, errors.New("dcc signer key is Ed25519; DCC signers use ES256 or PS256")
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
// kid, country and DER certificate per entry.
type trustList struct {
	Certificates []struct {
		Kid     string `json:"kid"`
		Country string `json:"country"`
		RawData string `json:"rawData"`
	} `json:"certificates"`
}

// ParseDCCSigners reads signer certificates from PEM (any number of
// CERTIFICATE blocks), a single DER certificate, or a JSON trust list.
func ParseDCCSigners(data []byte) ([]IssuerKey, error) {
	trimmed := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(trimmed, []byte("{")):
		var tl trustList
		if err := json.Unmarshal(trimmed, &tl); err != nil {
			return nil, fmt.Errorf("dcc trust list: %w", err)
		}
		var keys []IssuerKey
		for i, c := range tl.Certificates {
			der, err := base64.StdEncoding.DecodeString(c.RawData)
			if err != nil {
				return nil, fmt.Errorf("dcc trust list entry %d: rawData: %w", i, err)
			}
			var kid []byte
			if c.Kid != "" {
				if kid, err = base64.StdEncoding.DecodeString(c.Kid); err != nil {
					return nil, fmt.Errorf("dcc trust list entry %d: kid: %w", i, err)
				}
			}
			k, err := DCCSignerKey(der, kid, strings.ToUpper(c.Country))
			if err != nil {
				return nil, fmt.Errorf("dcc trust list entry %d: %w", i, err)
			}
			keys = append(keys, k)
		}
		return keys, nil
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		var keys []IssuerKey
		for rest := trimmed; ; {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if blk.Type != "CERTIFICATE" {
				continue
			}
			k, err := DCCSignerKey(blk.Bytes, nil, "")
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
		if len(keys) == 0 {
			return nil, errors.New("no PEM CERTIFICATE block")
		}
		return keys, nil
	}
	var probe asn1.RawValue
	if _, err := asn1.Unmarshal(data, &probe); err != nil {
		return nil, errors.New("not a PEM or DER certificate or a JSON trust list")
	}
	k, err := DCCSignerKey(data, nil, "")
	if err != nil {
		return nil, err
	}
	return []IssuerKey{k}, nil
}
