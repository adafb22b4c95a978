package station

import "time"

// Limits with their reasons.
const (
	// MaxMessage bounds a grant message: the envelope, a 64-byte gate id
	// and station, a 32-hex hash and two numbers fit in under 400 bytes.
	MaxMessage = 1024
	// DefaultMaxEntries bounds the station memory: a station of 40 gates
	// admitting one person a second each, over a one-hour window, is
	// 144,000 grants; 200,000 entries take about 20 MB. When full, the
	// oldest entry is forgotten first (and counted).
	DefaultMaxEntries = 200_000
	// grantQueue bounds the grants waiting to be published: the loop
	// never waits on the network, so a grant that finds it full is
	// dropped and counted (the gate's own memory still holds it).
	grantQueue = 256
	// DefaultMaxSkew is how far a grant may be dated ahead of the
	// receiver's clock: gates of one station keep NTP time, well within
	// a few seconds; beyond this the sender's clock is wrong and its
	// grant refused (reason future).
	DefaultMaxSkew = 30 * time.Second
	// grantQoS is the MQTT QoS of grants, published and subscribed. On a
	// clean session QoS 1 adds nothing TCP does not already give (a grant
	// in flight when the connection drops is lost either way) but a
	// PUBACK round trip, and on NATS a trip through JetStream: there its
	// p99 was up to 106 ms against 3 to 5 ms at QoS 0, and it lost about
	// one grant in a thousand, QoS 0 none (docs/BENCHMARKS.md,
	// "Station-wide anti-passback").
	grantQoS = 0
	// publishWait bounds one wait for the broker to take a grant.
	publishWait = 5 * time.Second
	// DefaultRetry is how often a gate that found no roster, or no
	// station for itself in it, looks again.
	DefaultRetry = 30 * time.Second
)
