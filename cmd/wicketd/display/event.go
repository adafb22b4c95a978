package display

import (
	"time"

	"wicket/decoder"
	"wicket/verifier"
)

// Type says what an Event changes on the page.
type Type string

const (
	// TypeDecision: a scan was decided; the page shows its verdict.
	TypeDecision Type = "decision"
	// TypeIdle: the page returns to its idle screen.
	TypeIdle Type = "idle"
	// TypeState: only the gate state changed; the verdict on screen stays.
	TypeState Type = "state"
)

// Verdict is what the passenger is told to do.
type Verdict string

const (
	VerdictAllow     Verdict = "allow"
	VerdictDeny      Verdict = "deny"
	VerdictAttendant Verdict = "attendant"
	VerdictIdle      Verdict = "idle"
)

// State is the gate-level state shown as banners on the page and served
// by /healthz.
type State struct {
	// Ready: the gate decides scans. When false, Reason says why.
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
	// Offline: the fleet broker is unreachable (the gate keeps deciding).
	Offline bool `json:"offline"`
	// Stale: the key set or revocation data is older than policy allows.
	Stale bool `json:"stale"`
	// Emergency: the gates are held open for evacuation.
	Emergency bool `json:"emergency"`
	// EmergencyLatched: the emergency input has cleared and the gate
	// stays free until someone acknowledges (the admin page's button,
	// wicketd ack-emergency).
	EmergencyLatched bool `json:"emergency_latched,omitempty"`
	// ClockUntrusted: the wall clock is below the trusted floor.
	ClockUntrusted bool `json:"clock_untrusted"`
}

// Event is everything the page may show about one scan or one change of
// the gate's state, and nothing more: no voucher id, subject, issuer, key
// id or technical detail ever reaches it.
type Event struct {
	Type    Type             `json:"type"`
	Verdict Verdict          `json:"verdict"`
	Reason  verifier.Reason  `json:"reason,omitempty"`
	Message verifier.Message `json:"message"`
	// Colour is "green", "yellow" or "red"; "" when the code could not
	// be read or verified (shown grey).
	Colour string `json:"colour"`
	// Name is the masked name the voucher carries.
	Name  string `json:"name,omitempty"`
	Class string `json:"class,omitempty"`
	Kind  string `json:"kind,omitempty"`
	// TestAgeHours and Doses are set only when the policy uses them.
	TestAgeHours *int `json:"test_age_hours,omitempty"`
	Doses        *int `json:"doses,omitempty"`
	// Alert: the checkpoint reports this scan at once (red code).
	Alert bool `json:"alert,omitempty"`
	// Temperature is the screening result: normal, fever, none or fault;
	// never the reading.
	Temperature string `json:"temperature,omitempty"`
	// Attendant: a person must compare the photo (or, for a temperature
	// reason, measure by hand); Seq identifies the scan for POST
	// /attendant.
	Attendant bool      `json:"attendant,omitempty"`
	Seq       uint64    `json:"seq,omitempty"`
	At        time.Time `json:"at"`
	// State is the gate state when the event was sent; the server fills
	// it in, so every event carries the banners.
	State State `json:"state"`
}

// FromDecision keeps of d what the page may show. seq is the access
// event's sequence number. showTest and showDoses say whether the policy
// checks tests and doses: the page shows them only then. temperature is
// the screening state of the scan ("" without screening).
func FromDecision(d verifier.Decision, seq uint64, showTest, showDoses bool, temperature string) Event {
	ev := Event{
		Type:      TypeDecision,
		Verdict:   VerdictDeny,
		Reason:    d.Reason,
		Message:   d.Message,
		Alert:     d.Alert,
		Attendant: d.Attendant,
		Seq:       seq,
		At:        d.At,

		Temperature: temperature,
	}
	switch {
	case d.Attendant:
		ev.Verdict = VerdictAttendant
	case d.Allow:
		ev.Verdict = VerdictAllow
	}
	if d.Colour >= decoder.ColourGreen && d.Colour <= decoder.ColourRed {
		ev.Colour = d.Colour.String()
	}
	v := d.Voucher
	if v == nil {
		return ev
	}
	ev.Name = v.Name
	if v.Class != 0 {
		ev.Class = v.Class.String()
	}
	if v.Kind != 0 {
		ev.Kind = v.Kind.String()
	}
	if showTest && v.Test != nil {
		h := max(0, int(d.At.Sub(time.Unix(v.Test.Sampled, 0)).Hours()))
		ev.TestAgeHours = &h
	}
	if showDoses {
		n := v.Doses
		ev.Doses = &n
	}
	return ev
}
