package verifier_test

import (
	"bytes"
	"compress/zlib"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// wrapCOSE compresses and base45-encodes raw COSE bytes with the prefix.
func wrapCOSE(cose []byte) string { return decoder.Wrap(decoder.Prefix, cose) }

// signRaw signs an arbitrary payload with the fixture's Ed25519 issuer key.
func signRaw(t *testing.T, f *verifiertest.Fixture, protected, unprotected, payload []byte) string {
	t.Helper()
	cose, err := f.Ed.EncodeSign1Headers(protected, unprotected, payload)
	if err != nil {
		t.Fatal(err)
	}
	return wrapCOSE(cose)
}

func mustPayload(t *testing.T, c any) []byte {
	t.Helper()
	b, err := decoder.CanonicalMarshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func zlibBomb() string {
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	w.Write(make([]byte, 1<<20))
	w.Close()
	return decoder.Prefix + decoder.Base45Encode(buf.Bytes())
}

type reasonCase struct {
	name  string
	setup func(t *testing.T, f *verifiertest.Fixture) string
	want  verifier.Reason
	check func(t *testing.T, d verifier.Decision)
}

func issueWith(mod func(c *decoder.Claims)) func(t *testing.T, f *verifiertest.Fixture) string {
	return issueKind(decoder.KindDynamic, mod)
}

func issueKind(k decoder.Kind, mod func(c *decoder.Claims)) func(t *testing.T, f *verifiertest.Fixture) string {
	return func(t *testing.T, f *verifiertest.Fixture) string {
		c := f.Claims(k)
		if mod != nil {
			mod(c)
		}
		return f.Issue(t, f.Ed, c)
	}
}

func withPolicy(mod func(p *verifier.Policy), next func(t *testing.T, f *verifiertest.Fixture) string) func(t *testing.T, f *verifiertest.Fixture) string {
	return func(t *testing.T, f *verifiertest.Fixture) string {
		p := verifier.DefaultPolicy()
		mod(&p)
		f.SetPolicy(t, p)
		return next(t, f)
	}
}

func installKey(mod func(k *verifier.IssuerKey)) func(t *testing.T, f *verifiertest.Fixture) string {
	return func(t *testing.T, f *verifiertest.Fixture) string {
		k := f.IssuerKey(f.EdPub)
		mod(&k)
		ks, err := f.Roots().ParseKeySet(f.SignKeySet(t, 2, k))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Verifier.InstallKeySet(ks); err != nil {
			t.Fatal(err)
		}
		return issueWith(nil)(t, f)
	}
}

func reasonCases() []reasonCase {
	h := time.Hour
	day := 24 * h
	return []reasonCase{
		{name: "dynamic", setup: issueKind(decoder.KindDynamic, nil), want: verifier.ReasonOK},
		{name: "printed", setup: issueKind(decoder.KindPrinted, nil), want: verifier.ReasonOK},
		{name: "watch", setup: issueKind(decoder.KindWatch, nil), want: verifier.ReasonOK},
		{name: "es256", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			return f.Issue(t, f.ES, f.Claims(decoder.KindPrinted))
		}, want: verifier.ReasonOK},
		{name: "kid in unprotected header only", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			unprot := mustPayload(t, map[int]any{4: f.Ed.Kid()})
			return signRaw(t, f, decoder.ProtectedHeader(decoder.AlgEdDSA, nil), unprot, mustPayload(t, f.Claims(decoder.KindDynamic)))
		}, want: verifier.ReasonOK},
		{name: "protected kid wins over unprotected", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			unprot := mustPayload(t, map[int]any{4: []byte("wrongkid")})
			return signRaw(t, f, decoder.ProtectedHeader(decoder.AlgEdDSA, f.Ed.Kid()), unprot, mustPayload(t, f.Claims(decoder.KindDynamic)))
		}, want: verifier.ReasonOK},
		{name: "kid collision: all keys with the kid are tried", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			other := f.IssuerKey(f.ESPub)
			other.Kid = f.Ed.Kid()
			ks, err := f.Roots().ParseKeySet(f.SignKeySet(t, 2, other, f.IssuerKey(f.EdPub)))
			if err != nil {
				t.Fatal(err)
			}
			f.Verifier.InstallKeySet(ks)
			return issueWith(nil)(t, f)
		}, want: verifier.ReasonOK},
		{name: "untrusted clock allowed with warning", setup: withPolicy(func(p *verifier.Policy) { p.OnUntrustedClock = verifier.FallbackWarn }, func(t *testing.T, f *verifiertest.Fixture) string {
			text := issueWith(func(c *decoder.Claims) {
				// The floor is the key set's issue time, Epoch - 1h.
				c.IssuedAt = verifiertest.Epoch.Add(-h - time.Minute).Unix()
				c.Expiry = verifiertest.Epoch.Add(-h + 4*time.Minute).Unix()
			})(t, f)
			f.Clock.Set(time.Unix(0, 0))
			return text
		}), want: verifier.ReasonOK, check: func(t *testing.T, d verifier.Decision) {
			if len(d.Warnings) != 1 || d.Warnings[0] != verifier.ReasonClockUntrusted {
				t.Errorf("warnings = %v; want [clock_untrusted]", d.Warnings)
			}
		}},

		{name: "empty", setup: func(*testing.T, *verifiertest.Fixture) string { return "" }, want: verifier.ReasonEmpty},
		{name: "too long", setup: func(*testing.T, *verifiertest.Fixture) string {
			return decoder.Prefix + strings.Repeat("0", decoder.MaxTextLen)
		}, want: verifier.ReasonTooLong},
		{name: "foreign prefix", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			return "XY1:" + strings.TrimPrefix(issueWith(nil)(t, f), decoder.Prefix)
		}, want: verifier.ReasonBadPrefix},
		{name: "base45 length", setup: func(*testing.T, *verifiertest.Fixture) string { return decoder.Prefix + "ABCD" }, want: verifier.ReasonBadBase45},
		{name: "base45 triplet over 65535", setup: func(*testing.T, *verifiertest.Fixture) string { return decoder.Prefix + "GGW" }, want: verifier.ReasonBadBase45},
		{name: "base45 foreign character", setup: func(*testing.T, *verifiertest.Fixture) string { return decoder.Prefix + "AB#" }, want: verifier.ReasonBadBase45},
		{name: "lowercase base45", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			text := issueWith(nil)(t, f)
			return decoder.Prefix + strings.ToLower(strings.TrimPrefix(text, decoder.Prefix))
		}, want: verifier.ReasonBadBase45},
		{name: "not zlib", setup: func(*testing.T, *verifiertest.Fixture) string {
			return decoder.Prefix + decoder.Base45Encode([]byte{0xd2, 0x84, 0x40, 0xa0})
		}, want: verifier.ReasonBadZlib},
		{name: "zlib checksum", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			text := issueWith(nil)(t, f)
			raw, _ := decoder.Base45Decode(strings.TrimPrefix(text, decoder.Prefix))
			raw[len(raw)-1] ^= 1
			return decoder.Prefix + decoder.Base45Encode(raw)
		}, want: verifier.ReasonBadZlib},
		{name: "zlib trailing bytes", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			text := issueWith(nil)(t, f)
			raw, _ := decoder.Base45Decode(strings.TrimPrefix(text, decoder.Prefix))
			return decoder.Prefix + decoder.Base45Encode(append(raw, 0))
		}, want: verifier.ReasonBadZlib},
		{name: "zlib bomb", setup: func(*testing.T, *verifiertest.Fixture) string { return zlibBomb() }, want: verifier.ReasonTooLarge},
		{name: "truncated cbor", setup: func(*testing.T, *verifiertest.Fixture) string { return wrapCOSE([]byte{0xd2, 0x84, 0x43}) }, want: verifier.ReasonBadCBOR},
		{name: "duplicate key in protected header", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			prot := []byte{0xa2, 0x01, 0x27, 0x01, 0x27}
			return signRaw(t, f, prot, []byte{0xa0}, mustPayload(t, f.Claims(decoder.KindDynamic)))
		}, want: verifier.ReasonBadCBOR},
		{name: "duplicate key in claims", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			payload := mustPayload(t, f.Claims(decoder.KindDynamic))
			// Claims map with one more pair: iss again.
			dup := append([]byte{payload[0] + 1}, payload[1:]...)
			dup = append(dup, 0x01, 0x62, 'G', 'D')
			return signRaw(t, f, decoder.ProtectedHeader(decoder.AlgEdDSA, f.Ed.Kid()), []byte{0xa0}, dup)
		}, want: verifier.ReasonBadCBOR},
		{name: "untagged cose", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			cose := decoder.AssembleSign1(decoder.ProtectedHeader(decoder.AlgEdDSA, f.Ed.Kid()), []byte{0xa0}, []byte{0xa0}, make([]byte, 64))
			return wrapCOSE(cose[1:])
		}, want: verifier.ReasonBadCOSE},
		{name: "cose_sign tag 98", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			cose := decoder.AssembleSign1(decoder.ProtectedHeader(decoder.AlgEdDSA, f.Ed.Kid()), []byte{0xa0}, []byte{0xa0}, make([]byte, 64))
			return wrapCOSE(append([]byte{0xd8, 0x62}, cose[1:]...))
		}, want: verifier.ReasonBadCOSE},
		{name: "detached payload", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			prot := decoder.ProtectedHeader(decoder.AlgEdDSA, f.Ed.Kid())
			cose := append([]byte{0xd2, 0x84, byte(0x40 + len(prot))}, prot...)
			cose = append(cose, 0xa0, 0xf6, 0x58, 64)
			return wrapCOSE(append(cose, make([]byte, 64)...))
		}, want: verifier.ReasonBadCOSE},
		{name: "crit header", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			prot := mustPayload(t, map[int]any{1: -8, 2: []int{99}, 4: f.Ed.Kid()})
			return signRaw(t, f, prot, []byte{0xa0}, mustPayload(t, f.Claims(decoder.KindDynamic)))
		}, want: verifier.ReasonBadCOSE},
		{name: "alg only in unprotected header", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			prot := mustPayload(t, map[int]any{4: f.Ed.Kid()})
			return signRaw(t, f, prot, mustPayload(t, map[int]any{1: -8}), mustPayload(t, f.Claims(decoder.KindDynamic)))
		}, want: verifier.ReasonAlgNotProtected},
		{name: "alg in both headers", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			return signRaw(t, f, decoder.ProtectedHeader(decoder.AlgEdDSA, f.Ed.Kid()), mustPayload(t, map[int]any{1: -8}), mustPayload(t, f.Claims(decoder.KindDynamic)))
		}, want: verifier.ReasonAlgNotProtected},
		{name: "no alg at all", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			return signRaw(t, f, nil, []byte{0xa0}, mustPayload(t, f.Claims(decoder.KindDynamic)))
		}, want: verifier.ReasonAlgNotProtected},
		{name: "alg ES384", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			return signRaw(t, f, decoder.ProtectedHeader(-35, f.Ed.Kid()), []byte{0xa0}, mustPayload(t, f.Claims(decoder.KindDynamic)))
		}, want: verifier.ReasonUnsupportedAlg},
		{name: "claims missing cti", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			c := f.Claims(decoder.KindDynamic)
			c.ID = nil
			return signRaw(t, f, decoder.ProtectedHeader(decoder.AlgEdDSA, f.Ed.Kid()), []byte{0xa0}, mustPayload(t, c))
		}, want: verifier.ReasonBadClaims},
		{name: "claims unknown key", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			return signRaw(t, f, decoder.ProtectedHeader(decoder.AlgEdDSA, f.Ed.Kid()), []byte{0xa0}, mustPayload(t, map[int]any{1: "GX", 99: 1}))
		}, want: verifier.ReasonBadClaims},
		{name: "control character in name", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			c := f.Claims(decoder.KindDynamic)
			c.Voucher.Name = "张\r明"
			return signRaw(t, f, decoder.ProtectedHeader(decoder.AlgEdDSA, f.Ed.Kid()), []byte{0xa0}, mustPayload(t, c))
		}, want: verifier.ReasonBadClaims},

		{name: "unknown kid", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			s, _ := decoder.NewSigner(verifiertest.EdKey(9), nil)
			return f.Issue(t, s, f.Claims(decoder.KindDynamic))
		}, want: verifier.ReasonUnknownKid},
		{name: "signed by another key with a trusted kid", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			s, _ := decoder.NewSigner(verifiertest.EdKey(9), f.Ed.Kid())
			return f.Issue(t, s, f.Claims(decoder.KindDynamic))
		}, want: verifier.ReasonBadSignature},
		{name: "alg confusion: ES256 header on an Ed25519 kid", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			s, _ := decoder.NewSigner(verifiertest.ESKey(9), f.Ed.Kid())
			return f.Issue(t, s, f.Claims(decoder.KindDynamic))
		}, want: verifier.ReasonBadSignature},
		{name: "signature byte flipped", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			c := f.Claims(decoder.KindDynamic)
			prot := decoder.ProtectedHeader(decoder.AlgEdDSA, f.Ed.Kid())
			payload := mustPayload(t, c)
			sig, _ := f.Ed.Sign(decoder.AppendToBeSigned(nil, prot, payload))
			sig[10] ^= 0x40
			return wrapCOSE(decoder.AssembleSign1(prot, []byte{0xa0}, payload, sig))
		}, want: verifier.ReasonBadSignature},
		{name: "issuer mismatch", setup: issueWith(func(c *decoder.Claims) { c.Issuer = "GD" }), want: verifier.ReasonIssuerMismatch},
		{name: "key not yet valid at issue", setup: installKey(func(k *verifier.IssuerKey) { k.NotBefore = verifiertest.Epoch.Add(h) }), want: verifier.ReasonKeyNotValid},
		{name: "key expired", setup: installKey(func(k *verifier.IssuerKey) { k.NotAfter = verifiertest.Epoch.Add(-30 * time.Minute) }), want: verifier.ReasonKeyNotValid},
		{name: "key only for printed", setup: installKey(func(k *verifier.IssuerKey) { k.Kinds = []decoder.Kind{decoder.KindPrinted} }), want: verifier.ReasonKeyKindNotAllowed},

		{name: "not yet valid", setup: issueWith(func(c *decoder.Claims) { c.IssuedAt += 3600; c.Expiry += 3600 }), want: verifier.ReasonNotYetValid},
		{name: "nbf in future", setup: issueWith(func(c *decoder.Claims) { c.NotBefore = c.Expiry - 1 }), want: verifier.ReasonNotYetValid},
		{name: "expired", setup: issueWith(func(c *decoder.Claims) { c.IssuedAt -= 3600; c.Expiry -= 3600 }), want: verifier.ReasonExpired},
		{name: "dynamic code valid a day", setup: issueWith(func(c *decoder.Claims) { c.Expiry = c.IssuedAt + 86400 }), want: verifier.ReasonValidityTooLong},
		{name: "printed voucher 40 days old", setup: issueKind(decoder.KindPrinted, func(c *decoder.Claims) {
			c.IssuedAt = verifiertest.Epoch.Add(-40 * day).Unix()
		}), want: verifier.ReasonVoucherTooOld},

		// No way around the validity rules with a future iat and an early
		// nbf: every limit counts from the earlier of the two.
		{name: "dynamic code issued in a month, valid from a month ago", setup: issueWith(func(c *decoder.Claims) {
			c.IssuedAt = verifiertest.Epoch.Add(30 * day).Unix()
			c.Expiry = c.IssuedAt + 300
			c.NotBefore = verifiertest.Epoch.Add(-30 * day).Unix()
		}), want: verifier.ReasonNotYetValid},
		{name: "dynamic code valid 60 days from its nbf", setup: issueWith(func(c *decoder.Claims) {
			c.NotBefore = verifiertest.Epoch.Add(-60 * day).Unix()
		}), want: verifier.ReasonValidityTooLong},
		{name: "printed voucher issued 170 days ahead, nbf an hour ago", setup: issueKind(decoder.KindPrinted, func(c *decoder.Claims) {
			c.IssuedAt = verifiertest.Epoch.Add(170 * day).Unix()
			c.Expiry = verifiertest.Epoch.Add(200 * day).Unix()
			c.NotBefore = verifiertest.Epoch.Add(-h).Unix()
		}), want: verifier.ReasonNotYetValid},
		{name: "printed voucher valid since 170 days by its nbf", setup: issueKind(decoder.KindPrinted, func(c *decoder.Claims) {
			c.NotBefore = verifiertest.Epoch.Add(-170 * day).Unix()
		}), want: verifier.ReasonVoucherTooOld},
		{name: "issued a minute ahead (within the skew)", setup: issueWith(func(c *decoder.Claims) {
			c.IssuedAt = verifiertest.Epoch.Add(time.Minute).Unix()
			c.Expiry = c.IssuedAt + 300
		}), want: verifier.ReasonOK},
		{name: "printed voucher valid from an hour after its issue", setup: issueKind(decoder.KindPrinted, func(c *decoder.Claims) {
			c.IssuedAt = verifiertest.Epoch.Add(-2 * h).Unix()
			c.NotBefore = verifiertest.Epoch.Add(-h).Unix()
		}), want: verifier.ReasonOK},
		{name: "red override reaches a voucher issued after it but valid before", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			c := f.Claims(decoder.KindPrinted)
			c.IssuedAt = verifiertest.Epoch.Add(time.Minute).Unix()
			c.NotBefore = verifiertest.Epoch.Add(-day).Unix()
			f.ApplyBatch(t, verifier.Batch{Version: 2, Base: 1, IssuedAt: verifiertest.Epoch, Entries: []verifier.Entry{
				{Op: verifier.OpColour, Key: c.Voucher.Subject, Time: verifiertest.Epoch.Add(-h).Unix(), Expires: verifiertest.Epoch.Add(14 * day).Unix(), Colour: decoder.ColourRed},
			}})
			return f.Issue(t, f.Ed, c)
		}, want: verifier.ReasonColourRed},
		{name: "void-before reaches a voucher issued after it but valid before", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			c := f.Claims(decoder.KindPrinted)
			c.IssuedAt = verifiertest.Epoch.Add(time.Minute).Unix()
			c.NotBefore = verifiertest.Epoch.Add(-day).Unix()
			f.ApplyBatch(t, verifier.Batch{Version: 2, Base: 1, IssuedAt: verifiertest.Epoch, Entries: []verifier.Entry{
				{Op: verifier.OpVoidBefore, Key: c.Voucher.Subject, Time: verifiertest.Epoch.Add(-h).Unix(), Expires: verifiertest.Epoch.Add(60 * day).Unix()},
			}})
			return f.Issue(t, f.Ed, c)
		}, want: verifier.ReasonSuperseded},

		{name: "revoked", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			c := f.Claims(decoder.KindPrinted)
			f.ApplyBatch(t, verifier.Batch{Version: 2, Base: 1, IssuedAt: verifiertest.Epoch, Entries: []verifier.Entry{
				{Op: verifier.OpRevoke, Key: c.ID, Time: verifiertest.Epoch.Unix(), Expires: c.Expiry},
			}})
			return f.Issue(t, f.Ed, c)
		}, want: verifier.ReasonRevoked},
		{name: "void before", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			c := f.Claims(decoder.KindPrinted)
			f.ApplyBatch(t, verifier.Batch{Version: 2, Base: 1, IssuedAt: verifiertest.Epoch, Entries: []verifier.Entry{
				{Op: verifier.OpVoidBefore, Key: c.Voucher.Subject, Time: verifiertest.Epoch.Unix(), Expires: verifiertest.Epoch.Add(60 * day).Unix()},
			}})
			return f.Issue(t, f.Ed, c)
		}, want: verifier.ReasonSuperseded},
		{name: "yellow voucher", setup: issueWith(func(c *decoder.Claims) { c.Voucher.Colour = decoder.ColourYellow }), want: verifier.ReasonColourYellow,
			check: func(t *testing.T, d verifier.Decision) {
				if d.Alert {
					t.Error("yellow raised an alert")
				}
			}},
		{name: "red voucher", setup: issueWith(func(c *decoder.Claims) { c.Voucher.Colour = decoder.ColourRed }), want: verifier.ReasonColourRed,
			check: func(t *testing.T, d verifier.Decision) {
				if !d.Alert || d.Overridden {
					t.Errorf("alert=%v overridden=%v; want alert, not overridden", d.Alert, d.Overridden)
				}
			}},
		{name: "overridden to red", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			c := f.Claims(decoder.KindPrinted)
			f.ApplyBatch(t, verifier.Batch{Version: 2, Base: 1, IssuedAt: verifiertest.Epoch, Entries: []verifier.Entry{
				{Op: verifier.OpColour, Key: c.Voucher.Subject, Time: verifiertest.Epoch.Add(-30 * time.Second).Unix(), Expires: verifiertest.Epoch.Add(14 * day).Unix(), Colour: decoder.ColourRed},
			}})
			return f.Issue(t, f.Ed, c)
		}, want: verifier.ReasonColourRed, check: func(t *testing.T, d verifier.Decision) {
			if !d.Alert || !d.Overridden || d.Colour != decoder.ColourRed {
				t.Errorf("alert=%v overridden=%v colour=%v; want alert, overridden, red", d.Alert, d.Overridden, d.Colour)
			}
		}},
		{name: "override older than voucher loses", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			c := f.Claims(decoder.KindPrinted)
			f.ApplyBatch(t, verifier.Batch{Version: 2, Base: 1, IssuedAt: verifiertest.Epoch, Entries: []verifier.Entry{
				{Op: verifier.OpColour, Key: c.Voucher.Subject, Time: verifiertest.Epoch.Add(-2 * h).Unix(), Expires: verifiertest.Epoch.Add(14 * day).Unix(), Colour: decoder.ColourRed},
			}})
			return f.Issue(t, f.Ed, c)
		}, want: verifier.ReasonOK},
		{name: "expired override is ignored", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			c := f.Claims(decoder.KindPrinted)
			f.ApplyBatch(t, verifier.Batch{Version: 2, Base: 1, IssuedAt: verifiertest.Epoch, Entries: []verifier.Entry{
				{Op: verifier.OpColour, Key: c.Voucher.Subject, Time: verifiertest.Epoch.Add(-30 * time.Second).Unix(), Expires: verifiertest.Epoch.Add(h).Unix(), Colour: decoder.ColourYellow},
			}})
			f.Clock.Set(verifiertest.Epoch.Add(2 * h))
			return f.Issue(t, f.Ed, c)
		}, want: verifier.ReasonOK},
		{name: "green not in allowed colours", setup: withPolicy(func(p *verifier.Policy) { p.Colours.Allow = []string{"yellow"} }, issueWith(nil)), want: verifier.ReasonColourNotAllowed},
		{name: "watch codes not accepted", setup: withPolicy(func(p *verifier.Policy) { p.Kinds.Watch.Accept = false }, issueKind(decoder.KindWatch, nil)), want: verifier.ReasonKindNotAccepted},
		{name: "children denied", setup: withPolicy(func(p *verifier.Policy) { p.Classes.Child = verifier.ActionDeny }, issueWith(func(c *decoder.Claims) { c.Voucher.Class = decoder.ClassChild })), want: verifier.ReasonClassDenied},
		{name: "test missing", setup: withPolicy(func(p *verifier.Policy) { p.Test.MaxAge = 48 * h }, issueWith(func(c *decoder.Claims) { c.Voucher.Test = nil })), want: verifier.ReasonTestMissing},
		{name: "child exempt from test", setup: withPolicy(func(p *verifier.Policy) { p.Test.MaxAge = 48 * h; p.Test.ExemptClasses = []string{"child"} }, issueWith(func(c *decoder.Claims) {
			c.Voucher.Test = nil
			c.Voucher.Class = decoder.ClassChild
		})), want: verifier.ReasonOK},
		{name: "antigen not accepted", setup: withPolicy(func(p *verifier.Policy) { p.Test.MaxAge = 48 * h; p.Test.Kinds = []string{"naat"} }, issueWith(func(c *decoder.Claims) { c.Voucher.Test.Kind = decoder.TestAntigen })), want: verifier.ReasonTestKindNotAccepted},
		{name: "positive test", setup: issueWith(func(c *decoder.Claims) { c.Voucher.Test.Result = decoder.ResultPositive }), want: verifier.ReasonTestPositive},
		{name: "test too old", setup: withPolicy(func(p *verifier.Policy) { p.Test.MaxAge = 48 * h }, issueWith(func(c *decoder.Claims) { c.Voucher.Test.Sampled -= 72 * 3600 })), want: verifier.ReasonTestTooOld},
		{name: "two doses, three needed", setup: withPolicy(func(p *verifier.Policy) { p.MinDoses = 3 }, issueWith(nil)), want: verifier.ReasonDosesInsufficient},
		{name: "elderly need an attendant", setup: withPolicy(func(p *verifier.Policy) { p.Classes.Elderly = verifier.ActionAttendant }, issueKind(decoder.KindPrinted, func(c *decoder.Claims) { c.Voucher.Class = decoder.ClassElderly })),
			want: verifier.ReasonAttendantRequired, check: func(t *testing.T, d verifier.Decision) {
				if !d.Attendant {
					t.Error("Attendant not set")
				}
			}},
		{name: "no key set", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			text := issueWith(nil)(t, f)
			v, err := verifier.New(f.TClock, f.Status, &f.Policy)
			if err != nil {
				t.Fatal(err)
			}
			f.Verifier = v
			return text
		}, want: verifier.ReasonNoTrustData},
		{name: "clock at 1970", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			text := issueWith(nil)(t, f)
			f.Clock.Set(time.Unix(0, 0))
			return text
		}, want: verifier.ReasonClockUntrusted},
		{name: "revocations four days old", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			f.Clock.Set(verifiertest.Epoch.Add(4 * day))
			return issueWith(nil)(t, f)
		}, want: verifier.ReasonTrustDataStale},
		{name: "key set 31 days old", setup: withPolicy(func(p *verifier.Policy) { p.MaxStatusAge = 0 }, func(t *testing.T, f *verifiertest.Fixture) string {
			f.Clock.Set(verifiertest.Epoch.Add(31 * day))
			return issueWith(nil)(t, f)
		}), want: verifier.ReasonTrustDataStale},
		{name: "status lookup fails", setup: func(t *testing.T, f *verifiertest.Fixture) string {
			v, err := verifier.New(f.TClock, failingStatus{f.Status}, &f.Policy)
			if err != nil {
				t.Fatal(err)
			}
			v.InstallKeySet(f.KeySet)
			f.Verifier = v
			return issueWith(nil)(t, f)
		}, want: verifier.ReasonInternal},
	}
}

type failingStatus struct{ *verifier.MemStatus }

func (failingStatus) Standing(_, _ []byte) (verifier.Standing, error) {
	return verifier.Standing{}, errors.New("disk on fire")
}

// notFromVerify lists reasons Verify never returns, with where they come from.
var notFromVerify = map[verifier.Reason]string{
	verifier.ReasonAntiPassback:     "the daemon's store (anti-passback window)",
	verifier.ReasonFever:            "the daemon's temperature check",
	verifier.ReasonNoTemperature:    "the daemon's temperature check",
	verifier.ReasonThermometerFault: "the daemon's temperature check",
}

func TestReasons(t *testing.T) {
	seen := map[verifier.Reason]bool{}
	for _, tc := range append(reasonCases(), dccReasonCases()...) {
		t.Run(tc.name, func(t *testing.T) {
			f := verifiertest.New(t)
			text := tc.setup(t, f)
			d := f.Verifier.Verify([]byte(text))
			if d.Reason != tc.want || d.Allow != (tc.want == verifier.ReasonOK) {
				t.Fatalf("Verify(%s) = %v %q (%s); want %q", tc.name, d.Allow, d.Reason, d.Detail, tc.want)
			}
			if d.Message.Zh == "" || d.Message.En == "" {
				t.Errorf("reason %q has no message", d.Reason)
			}
			if tc.check != nil {
				tc.check(t, d)
			}
			seen[d.Reason] = true
		})
	}
	for _, r := range verifier.Reasons() {
		if !seen[r] && notFromVerify[r] == "" {
			t.Errorf("no test case produces reason %q", r)
		}
	}
}

// TestSingleByteChanges changes each character of a valid code to every
// other base45 character: none of the results may be allowed.
func TestSingleByteChanges(t *testing.T) {
	f := verifiertest.New(t)
	text := []byte(f.Issue(t, f.Ed, f.Claims(decoder.KindPrinted)))
	if d := f.Verifier.Verify(text); !d.Allow {
		t.Fatalf("original denied: %v %s", d.Reason, d.Detail)
	}
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
	mutated := make([]byte, len(text))
	n := 0
	for i := range text {
		for j := 0; j < len(alphabet); j++ {
			if alphabet[j] == text[i] {
				continue
			}
			copy(mutated, text)
			mutated[i] = alphabet[j]
			if d := f.Verifier.Verify(mutated); d.Allow {
				t.Fatalf("code changed at %d to %q was allowed", i, alphabet[j])
			}
			n++
		}
	}
	t.Logf("%d single-character changes, all denied", n)
}

func TestKeySetVersion(t *testing.T) {
	f := verifiertest.New(t)
	if err := f.Verifier.InstallKeySet(f.KeySet); !errors.Is(err, verifier.ErrTrustVersion) {
		t.Errorf("reinstall of version 1 = %v; want ErrTrustVersion", err)
	}
	other, _ := decoder.NewSigner(verifiertest.EdKey(9), nil)
	doc, err := verifier.KeySetSpec{Version: 5, IssuedAt: verifiertest.Epoch, Keys: []verifier.IssuerKey{f.IssuerKey(f.EdPub)}}.Sign(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Roots().ParseKeySet(doc); !errors.Is(err, verifier.ErrTrustSignature) {
		t.Errorf("key set signed by a stranger = %v; want ErrTrustSignature", err)
	}
	batch, _ := verifier.SignBatch(f.Root, verifier.Batch{Version: 3, IssuedAt: verifiertest.Epoch})
	if _, err := f.Roots().ParseKeySet(batch); !errors.Is(err, verifier.ErrTrustFormat) {
		t.Errorf("batch passed as key set = %v; want ErrTrustFormat", err)
	}
	if _, err := f.Roots().ParseKeySet(f.KeySetDoc[:len(f.KeySetDoc)-1]); !errors.Is(err, verifier.ErrTrustFormat) {
		t.Errorf("truncated key set = %v; want ErrTrustFormat", err)
	}
	tampered := bytes.Clone(f.KeySetDoc)
	tampered[len(tampered)/2] ^= 1
	if _, err := f.Roots().ParseKeySet(tampered); err == nil {
		t.Error("tampered key set accepted")
	}
	if f.TClock.Floor().Before(f.KeySet.IssuedAt) {
		t.Errorf("clock floor %v below key set issue time %v", f.TClock.Floor(), f.KeySet.IssuedAt)
	}
}

func TestBatchVersions(t *testing.T) {
	f := verifiertest.New(t)
	apply := func(b verifier.Batch) error {
		doc, err := verifier.SignBatch(f.Root, b)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := f.Roots().ParseBatch(doc)
		if err != nil {
			t.Fatal(err)
		}
		return f.Status.Apply(parsed, verifiertest.Epoch)
	}
	for _, tc := range []struct {
		b    verifier.Batch
		want error
	}{
		{verifier.Batch{Version: 1, IssuedAt: verifiertest.Epoch}, verifier.ErrTrustVersion},
		{verifier.Batch{Version: 3, Base: 2, IssuedAt: verifiertest.Epoch}, verifier.ErrTrustGap},
		{verifier.Batch{Version: 2, Base: 1, IssuedAt: verifiertest.Epoch}, nil},
		{verifier.Batch{Version: 2, Base: 1, IssuedAt: verifiertest.Epoch}, verifier.ErrTrustVersion},
		{verifier.Batch{Version: 7, IssuedAt: verifiertest.Epoch}, nil},
	} {
		if err := apply(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("Apply(v%d base %d) = %v; want %v", tc.b.Version, tc.b.Base, err, tc.want)
		}
	}
	if got := f.Status.Info().Version; got != 7 {
		t.Errorf("installed version = %d; want 7", got)
	}
}

func TestPolicyParse(t *testing.T) {
	for _, tc := range []struct {
		in, wantErr string
	}{
		{"", ""},
		{"test:\n  max_age: 48h\nmin_doses: 2\n", ""},
		{"colours:\n  allow: [green, red]\n", "policy.colours.allow"},
		{"classes:\n  child: maybe\n", "policy.classes.child"},
		{"on_untrusted_clock: allow\n", "policy.on_untrusted_clock"},
		{"min_dose: 2\n", "line 1"},
		{"clock_skew: 2 hours\n", "line 1"},
		{"kinds:\n  dynamic: {accept: false}\n  printed: {accept: false}\n  watch: {accept: false}\n", "policy.kinds"},
	} {
		_, err := verifiertest.ParsePolicy([]byte(tc.in))
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("ParsePolicy(%q) = %v; want error containing %q", tc.in, err, tc.wantErr)
		}
	}
}

// TestReasonDocs checks docs/reason-codes.md lists every reason with its
// exact messages.
func TestReasonDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/reason-codes.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range verifier.Reasons() {
		m := r.Message()
		row := "| `" + string(r) + "` | " + m.Zh + " / " + m.En + " |"
		if !bytes.Contains(doc, []byte(row)) {
			t.Errorf("docs/reason-codes.md has no row starting %q", row)
		}
	}
}

func TestReadiness(t *testing.T) {
	day := 24 * time.Hour
	for _, tc := range []struct {
		name        string
		setup       func(f *verifiertest.Fixture)
		notReady    string
		stale, trst bool
	}{
		{"ready", func(*verifiertest.Fixture) {}, "", false, true},
		{"status four days old", func(f *verifiertest.Fixture) { f.Clock.Set(verifiertest.Epoch.Add(4 * day)) }, "trust data stale", true, true},
		{"stale but warn", func(f *verifiertest.Fixture) {
			p := verifier.DefaultPolicy()
			p.OnStaleTrustData = verifier.FallbackWarn
			f.Verifier.SetPolicy(&p)
			f.Clock.Set(verifiertest.Epoch.Add(4 * day))
		}, "", true, true},
		{"clock at 1970", func(f *verifiertest.Fixture) { f.Clock.Set(time.Unix(0, 0)) }, "clock below", false, false},
		{"no key set", func(f *verifiertest.Fixture) {
			f.Verifier, _ = verifier.New(f.TClock, f.Status, &f.Policy)
		}, "no key set", false, true},
	} {
		f := verifiertest.New(t)
		tc.setup(f)
		r := f.Verifier.Readiness()
		if (tc.notReady == "") != (r.NotReady == "") || !strings.Contains(r.NotReady, tc.notReady) ||
			(r.Stale != "") != tc.stale || r.ClockTrusted != tc.trst {
			t.Errorf("Readiness(%s) = %+v; want not ready %q, stale %v, clock trusted %v", tc.name, r, tc.notReady, tc.stale, tc.trst)
		}
	}
}

// TestBatchParts: the numbering of a multi-part snapshot is checked when
// signing and parsing, a part is never applied as a whole batch, and
// JoinParts puts parts given in any order back in order.
func TestBatchParts(t *testing.T) {
	f := verifiertest.New(t)
	at := verifiertest.Epoch
	rev := func(n byte) verifier.Entry {
		return verifier.Entry{Op: verifier.OpRevoke, Key: []byte{'p', 'a', 'r', 't', 0, 0, 0, n}, Time: at.Unix(), Expires: at.Unix() + 60}
	}
	for _, b := range []verifier.Batch{
		{Version: 5, Base: 4, IssuedAt: at, Part: 0, Parts: 2}, // a delta in parts
		{Version: 5, IssuedAt: at, Part: 2, Parts: 2},
		{Version: 5, IssuedAt: at, Part: 0, Parts: 1},
		{Version: 5, IssuedAt: at, Part: 1},
		{Version: 5, IssuedAt: at, Part: 0, Parts: verifier.MaxSnapshotParts + 1},
	} {
		if _, err := verifier.SignBatch(f.Root, b); err == nil {
			t.Errorf("SignBatch(part %d of %d, base %d) accepted", b.Part, b.Parts, b.Base)
		}
	}
	var parts []*verifier.Batch
	for p := range uint32(3) {
		doc, err := verifier.SignBatch(f.Root, verifier.Batch{Version: 9, IssuedAt: at, Part: p, Parts: 3, Entries: []verifier.Entry{rev(byte(p))}})
		if err != nil {
			t.Fatal(err)
		}
		b, err := f.Roots().ParseBatch(doc)
		if err != nil || b.Part != p || b.Parts != 3 {
			t.Fatalf("ParseBatch(part %d) = %+v, %v", p, b, err)
		}
		if err := f.Status.Apply(b, at); !errors.Is(err, verifier.ErrSnapshotPart) {
			t.Fatalf("Apply(part %d) = %v; want ErrSnapshotPart", p, err)
		}
		parts = append([]*verifier.Batch{b}, parts...) // reversed
	}
	whole, err := verifier.JoinParts(parts)
	if err != nil {
		t.Fatal(err)
	}
	if whole.Parts != 0 || len(whole.Entries) != 3 || whole.Entries[0].Key[7] != 0 || whole.Entries[2].Key[7] != 2 {
		t.Fatalf("JoinParts = %+v", whole)
	}
	if err := f.Status.Apply(whole, at); err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.JoinParts(parts[:2]); err == nil {
		t.Error("JoinParts with a part missing succeeded")
	}
	if _, err := verifier.JoinParts([]*verifier.Batch{parts[0], parts[0], parts[1]}); err == nil {
		t.Error("JoinParts with a part twice succeeded")
	}
}
