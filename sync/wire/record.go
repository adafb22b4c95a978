package wire

import "time"

// Record types.
const (
	TypeDecision  = "decision"
	TypePassage   = "passage"
	TypeEmergency = "emergency"
	TypeAttendant = "attendant"
	TypeAlert     = "alert"
	TypeSystem    = "system"
)

// Record is one access-log record, as a gate keeps it and a collector
// stores it. Identifiers are keyed hashes made at the gate (store's
// HashID, HashSubject), never raw ids; no field holds personal data.
type Record struct {
	Seq       uint64    `json:"seq"`  // assigned by the gate's store: strictly increasing, never reused
	Type      string    `json:"type"` // TypeDecision, TypePassage, ...
	At        time.Time `json:"at"`
	Gate      string    `json:"gate"`
	Venue     string    `json:"venue"`
	Allow     bool      `json:"allow,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Colour    string    `json:"colour,omitempty"`
	Kind      string    `json:"kind,omitempty"`
	Class     string    `json:"class,omitempty"`
	Issuer    string    `json:"issuer,omitempty"`
	Voucher   string    `json:"voucher,omitempty"` // HashID of the voucher id
	Subject   string    `json:"subject,omitempty"` // HashSubject of the subject pseudonym
	Alert     bool      `json:"alert,omitempty"`
	Attendant bool      `json:"attendant,omitempty"`
	Warnings  []string  `json:"warnings,omitempty"`
	Ref       uint64    `json:"ref,omitempty"`    // seq of the decision a passage or attendant event is about
	Detail    string    `json:"detail,omitempty"` // e.g. "passed", "not_passed", "emergency_on"
	// Temperature is the screening result of a decision: normal, fever,
	// none (no reading in time) or fault; Celsius the reading, only where
	// the policy keeps it.
	Temperature string  `json:"temperature,omitempty"`
	Celsius     float64 `json:"celsius,omitempty"`
}
