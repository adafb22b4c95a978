// Package gate drives a turnstile and its feedback through GPIO: the lock
// relay, an optional passage sensor and emergency (fire) input, and optional
// green and red LEDs and a buzzer. Tamper watches an enclosure switch and
// only reports it.
//
// It always knows the relay's state without reading the pin back, and puts
// the relay in the configured safe state on shutdown and on any GPIO error.
// An active emergency input frees the gate until the input clears and the
// release is acknowledged. NewSim builds the same types on simulated pins
// that print what the hardware would do.
package gate
