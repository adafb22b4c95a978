package verifier_test

import (
	"testing"

	"wicket/decoder"
	"wicket/verifier"
	"wicket/verifier/verifiertest"
)

// FuzzVerify runs the whole pipeline: any input gives a Decision with a
// known reason, and nothing but a genuine voucher is allowed.
func FuzzVerify(f *testing.F) {
	fx := verifiertest.New(f)
	valid := fx.Issue(f, fx.Ed, fx.Claims(decoder.KindPrinted))
	f.Add([]byte(valid))
	f.Add([]byte(fx.Issue(f, fx.ES, fx.Claims(decoder.KindDynamic))))
	f.Add([]byte(valid[:len(valid)-3]))
	f.Add([]byte("HC1:" + valid[4:]))
	known := map[verifier.Reason]bool{}
	for _, r := range verifier.Reasons() {
		known[r] = true
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		d := fx.Verifier.Verify(text)
		if !known[d.Reason] {
			t.Fatalf("unknown reason %q", d.Reason)
		}
		if d.Allow && d.Voucher == nil {
			t.Fatal("allowed without a verified voucher")
		}
	})
}

// FuzzKeySet feeds bytes to the key set parser.
func FuzzKeySet(f *testing.F) {
	fx := verifiertest.New(f)
	f.Add(fx.KeySetDoc)
	batch, _ := verifier.SignBatch(fx.Root, verifier.Batch{Version: 2, IssuedAt: verifiertest.Epoch})
	f.Add(batch)
	f.Fuzz(func(t *testing.T, b []byte) {
		ks, err := fx.Roots().ParseKeySet(b)
		if err == nil && (ks.Version == 0 || ks.IssuedAt.Unix() <= 0) {
			t.Fatalf("accepted key set without version or time")
		}
	})
}

// FuzzBatch feeds bytes to the batch parser and applies what parses.
func FuzzBatch(f *testing.F) {
	fx := verifiertest.New(f)
	c := fx.Claims(decoder.KindPrinted)
	doc, _ := verifier.SignBatch(fx.Root, verifier.Batch{Version: 2, Base: 1, IssuedAt: verifiertest.Epoch, Entries: []verifier.Entry{
		{Op: verifier.OpRevoke, Key: c.ID, Time: verifiertest.Epoch.Unix(), Expires: c.Expiry},
		{Op: verifier.OpColour, Key: c.Voucher.Subject, Time: verifiertest.Epoch.Unix(), Expires: c.Expiry, Colour: decoder.ColourRed},
	}})
	f.Add(doc)
	f.Add(fx.KeySetDoc)
	f.Fuzz(func(t *testing.T, b []byte) {
		batch, err := fx.Roots().ParseBatch(b)
		if err != nil {
			return
		}
		st := verifier.NewMemStatus()
		st.Apply(batch, verifiertest.Epoch)
	})
}

// FuzzDCCClaims feeds payloads to the EU DCC claims mapping, which runs on
// signed payloads only: it must never panic, and what it accepts must be
// a complete input, without a subject pseudonym (the verifier keys it).
func FuzzDCCClaims(f *testing.F) {
	dcc := verifier.BuiltinProfiles().ByName("dcc")
	iat := verifiertest.Epoch.Unix()
	f.Add(verifiertest.DCCPayload(f, "DE", iat, iat+86400, verifiertest.DCCVaccination(2, 2, "2026-03-01")))
	f.Add(verifiertest.DCCPayload(f, "DE", float64(iat)+0.25, 1e10, verifiertest.DCCTest("LP6464-4", "260415000", verifiertest.Epoch)))
	f.Add(verifiertest.DCCPayload(f, "FR", iat, iat+1, verifiertest.DCCRecovery("2026-05-01", "2026-10-01")))
	f.Fuzz(func(t *testing.T, payload []byte) {
		in, err := dcc.Claims(payload)
		if err != nil {
			return
		}
		if in.DCC == nil || !in.Expiry.After(in.IssuedAt) || len(in.ID) != 16 || in.Subject != nil {
			t.Fatalf("accepted an incomplete certificate: %+v", in)
		}
	})
}

// FuzzDCCRevocationBatch feeds the DCC gateway's revocation batch parser:
// no panic, and what it accepts has a known hash type, a kid and 16-byte
// hashes.
func FuzzDCCRevocationBatch(f *testing.F) {
	f.Add([]byte(`{"country":"AT","expires":"2026-12-31T00:00:00Z","kid":"MTIzNDU2Nzg=","hashType":"SIGNATURE","entries":[{"hash":"AAAAAAAAAAAAAAAAAAAAAA=="}]}`))
	f.Add([]byte(`{"kid":"","hashType":"UCI","entries":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := verifier.ParseDCCRevocationBatch(data)
		if err != nil {
			return
		}
		if len(b.Kid) == 0 || b.HashType.String() == "" || b.Expires.IsZero() {
			t.Fatalf("accepted an incomplete batch: %+v", b)
		}
		for _, h := range b.Hashes {
			if len(h) != verifier.DCCRevocationHashLen {
				t.Fatalf("hash of %d bytes", len(h))
			}
		}
		if len(b.IDs()) != len(b.Hashes) {
			t.Fatal("ids and hashes differ in number")
		}
	})
}
