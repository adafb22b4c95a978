package gate

import "errors"

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrGPIO: writing or configuring a pin failed. The relay was put in
	// its safe state as far as the hardware allowed.
	ErrGPIO = errors.New("gpio failure")
	// ErrEmergency: Open was refused because the emergency release is on;
	// the gate is already free.
	ErrEmergency = errors.New("emergency release active")
	// ErrEmergencyActive: Acknowledge was refused because the emergency
	// input is still active.
	ErrEmergencyActive = errors.New("emergency input still active")
	// ErrClosed: the Turnstile was closed.
	ErrClosed = errors.New("turnstile closed")
	// ErrConfig: a config field is invalid; the message names it.
	ErrConfig = errors.New("invalid config")
)
