package display

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"wicket/decoder"
	"wicket/verifier"
)

func fullDecision() verifier.Decision {
	at := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	return verifier.Decision{
		Allow:      true,
		Reason:     verifier.ReasonOK,
		Colour:     decoder.ColourGreen,
		Overridden: true,
		Warnings:   []verifier.Reason{verifier.ReasonTrustDataStale},
		Message:    verifier.ReasonOK.Message(),
		Detail:     "SECRET-DETAIL key 0badc0de",
		At:         at,
		Voucher: &verifier.VoucherInfo{
			Issuer:   "SECRET-ISSUER",
			Kid:      verifier.HexBytes{0xde, 0xad, 0xbe, 0xef},
			ID:       verifier.HexBytes{0xca, 0xfe, 0xf0, 0x0d},
			Subject:  []byte("SECRET-SUBJECT"),
			Kind:     decoder.KindPrinted,
			Class:    decoder.ClassElderly,
			Colour:   decoder.ColourGreen,
			Name:     "张*",
			IssuedAt: at.Add(-48 * time.Hour),
			Expires:  at.Add(48 * time.Hour),
			Test:     &decoder.Test{Kind: decoder.TestNAAT, Sampled: at.Add(-30*time.Hour - 20*time.Minute).Unix()},
			Doses:    3,
		},
	}
}

func TestFromDecisionKeepsOnlyThePage(t *testing.T) {
	ev := FromDecision(fullDecision(), 77, true, true, "")
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	js := string(b)
	for _, secret := range []string{"SECRET", "deadbeef", "cafef00d", "3q2+7w", "yv7wDQ", "issuer", "kid", "voucher_id", "subject", "detail", "warnings", "overridden", "expires", "issued"} {
		if strings.Contains(strings.ToLower(js), strings.ToLower(secret)) {
			t.Errorf("event JSON contains %q: %s", secret, js)
		}
	}
	// Every field of Event is one the page may show; a new field must be
	// added here on purpose.
	var fields []string
	for f := range reflect.TypeFor[Event]().Fields() {
		fields = append(fields, f.Name)
	}
	want := []string{"Type", "Verdict", "Reason", "Message", "Colour", "Name", "Class", "Kind", "TestAgeHours", "Doses", "Alert", "Temperature", "Attendant", "Seq", "At", "State"}
	if !slices.Equal(fields, want) {
		t.Errorf("Event fields = %v; want %v", fields, want)
	}

	if ev.Verdict != VerdictAllow || ev.Type != TypeDecision || ev.Colour != "green" || ev.Seq != 77 ||
		ev.Name != "张*" || ev.Class != "elderly" || ev.Kind != "printed" || ev.Message.Zh != "请通行" {
		t.Errorf("FromDecision = %+v", ev)
	}
	if ev.TestAgeHours == nil || *ev.TestAgeHours != 30 {
		t.Errorf("TestAgeHours = %v; want 30", ev.TestAgeHours)
	}
	if ev.Doses == nil || *ev.Doses != 3 {
		t.Errorf("Doses = %v; want 3", ev.Doses)
	}
}

func TestFromDecisionPolicyGates(t *testing.T) {
	ev := FromDecision(fullDecision(), 1, false, false, "")
	if ev.TestAgeHours != nil || ev.Doses != nil {
		t.Errorf("FromDecision(showTest=false, showDoses=false) test=%v doses=%v; want both nil", ev.TestAgeHours, ev.Doses)
	}
	b, _ := json.Marshal(ev)
	if strings.Contains(string(b), "test_age") || strings.Contains(string(b), "doses") {
		t.Errorf("JSON mentions test or doses: %s", b)
	}
}

func TestFromDecisionVerdicts(t *testing.T) {
	att := fullDecision()
	att.Allow, att.Attendant, att.Reason = false, true, verifier.ReasonAttendantRequired
	red := fullDecision()
	red.Allow, red.Colour, red.Alert, red.Reason = false, decoder.ColourRed, true, verifier.ReasonColourRed
	invalid := verifier.Decision{Reason: verifier.ReasonBadBase45, Message: verifier.ReasonBadBase45.Message(), Detail: "base45: bad"}
	future := fullDecision()
	future.Voucher.Test.Sampled = future.At.Add(time.Hour).Unix()

	tests := []struct {
		name    string
		d       verifier.Decision
		verdict Verdict
		colour  string
		alert   bool
	}{
		{"allow", fullDecision(), VerdictAllow, "green", false},
		{"attendant", att, VerdictAttendant, "green", false},
		{"red", red, VerdictDeny, "red", true},
		{"invalid", invalid, VerdictDeny, "", false},
		{"test in the future", future, VerdictAllow, "green", false},
	}
	for _, tt := range tests {
		ev := FromDecision(tt.d, 5, true, true, "")
		if ev.Verdict != tt.verdict || ev.Colour != tt.colour || ev.Alert != tt.alert || ev.Attendant != (tt.verdict == VerdictAttendant) {
			t.Errorf("FromDecision(%s) = verdict %q colour %q alert %v; want %q %q %v", tt.name, ev.Verdict, ev.Colour, ev.Alert, tt.verdict, tt.colour, tt.alert)
		}
		if tt.d.Voucher == nil && (ev.Name != "" || ev.Class != "" || ev.Doses != nil || ev.TestAgeHours != nil) {
			t.Errorf("FromDecision(%s) shows holder facts without a voucher: %+v", tt.name, ev)
		}
		if ev.TestAgeHours != nil && *ev.TestAgeHours < 0 {
			t.Errorf("FromDecision(%s) test age %d; want >= 0", tt.name, *ev.TestAgeHours)
		}
	}
}
