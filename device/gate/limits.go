package gate

import "time"

// Defaults and bounds, in one place.
const (
	// DefaultPulseWidth is how long the relay is energised in pulse mode:
	// long enough for a turnstile controller to register the input.
	DefaultPulseWidth = 500 * time.Millisecond

	// DefaultPassageTimeout is how long a granted passage waits for the
	// person to walk through before the gate locks again: long enough for
	// a wheelchair or a pushchair through a wide gate (docs/install.md).
	DefaultPassageTimeout = 8 * time.Second

	// MaxPassageTimeout bounds PassageTimeout: a gate held open for longer
	// is not controlled any more.
	MaxPassageTimeout = time.Minute

	// MaxPatternSteps and MaxPatternLength bound one feedback pattern per
	// output, so a config cannot keep a buzzer going.
	MaxPatternSteps  = 16
	MaxPatternLength = 10 * time.Second

	// maxEdgeWait caps one WaitForEdge call. Halting the pin wakes it on
	// most drivers; the cap bounds the wait on the others.
	maxEdgeWait = 250 * time.Millisecond

	// emergencyPoll is how often the emergency input's level is read even
	// without an edge, since an edge can be missed and the level is what
	// counts.
	emergencyPoll = 250 * time.Millisecond

	// relayRetry is how often a relay stuck after a GPIO error is driven
	// to the safe state again.
	relayRetry = time.Second

	// passageWatch is how often the passage sensor's level is read while
	// the gate is locked, to see forced passages: a turnstile arm or a
	// door leaf keeps the sensor active for far longer than this.
	passageWatch = 20 * time.Millisecond

	// tamperPoll is how often the tamper switch's level is read. A change
	// counts once two reads in a row agree, so a switch that bounces for
	// less than this is one change, and an opened door is reported within
	// two polls.
	tamperPoll = 100 * time.Millisecond
)
