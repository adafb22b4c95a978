package mqttsync

import "time"

// Defaults of the Config fields left zero, in one place; wicketd.yaml's
// sync section takes them as its defaults.
const (
	// DefaultBatchSize is the most records in one message: a few hundred
	// bytes each, so a batch stays far below the broker's packet limit and
	// one lost batch costs little to resend.
	DefaultBatchSize = 100
	// DefaultMaxInflight is how many batches may await their ack: enough to
	// keep a slow uplink busy, few enough that a reconnect resends little.
	DefaultMaxInflight = 4
	// DefaultAckTimeout is how long a batch waits for its ack before it is
	// sent again; a collector acks within a database commit.
	DefaultAckTimeout = 10 * time.Second
	// DefaultStatusEvery is how often the retained status is refreshed
	// without a change, so the fleet view sees a live gate.
	DefaultStatusEvery = time.Minute
	// DefaultStatusSpread is the most a status that a change asks for
	// (a trust document applied) waits, at random, before it goes out:
	// an override reaches every gate of a fleet within the same second,
	// and thousands of statuses at once would load the broker while it
	// still delivers the override. Changes within the wait share one
	// status.
	DefaultStatusSpread = 2 * time.Second
	// DefaultReconnectMin and DefaultReconnectMax bound the wait between
	// connection attempts: quick after a blip, and a fleet of gates does
	// not hammer a broker that is down.
	DefaultReconnectMin = time.Second
	DefaultReconnectMax = 2 * time.Minute
)

// Waits of the subscription checks.
const (
	// retainedWait is how long a new trust subscription may bring no
	// message before the gate renews it: the broker sends the retained
	// key set, roster and snapshot right after the SUBACK, in well under
	// a second even to a loaded gate; a NATS consumer without quorum
	// sends nothing. Doubled, up to maxRetainedWait, while renewed
	// subscriptions stay silent (a trust tree with nothing retained).
	retainedWait    = 30 * time.Second
	maxRetainedWait = 30 * time.Minute
	// maxSubscribeWait bounds the backoff between tries of a refused
	// subscription (at least reconnect_max): on a NATS cluster each try
	// asks JetStream for a consumer, and a fleet retrying every 2 s
	// keeps an overloaded cluster overloaded (250 gates did, here).
	maxSubscribeWait = time.Minute
	// renewSilent is how many resends in a row without an ack make the
	// gate renew its ack subscription.
	renewSilent = 3
	// lookWait is how long after subscribing to the trust tree at QoS 0
	// the gate takes its second look at the revocation data
	// (secondLook): a NATS node has the retained copy of a message
	// within well under a second of delivering it, even under load.
	// lookHold is how long that look's subscription stays: the broker
	// sends the retained messages right after the SUBACK.
	lookWait = 10 * time.Second
	lookHold = 5 * time.Second
	// resendDoublings bounds the resend backoff (resendWait): at most
	// 8 x AckTimeout between resends, 80 s by default.
	resendDoublings = 3
)

// ackQoS is the QoS of the gate's ack subscription: 0. An ack is signed,
// names its range and deletes nothing twice, and none is needed while the
// gate is away: a new connection sends the whole outbox again, and a
// batch without an ack goes again after ack_timeout, which the collector
// stores as a duplicate (nothing) and acknowledges again. A lost ack
// costs a resend; queueing acks for an absent gate saves nothing. At
// QoS 1 each gate's ack subscription is a JetStream consumer on a NATS
// cluster (docs/mqtt.md, Brokers); at QoS 0 it is a plain subscription.
const ackQoS = 0

// statusQoS is the QoS of the gate's retained status and of its last
// will: 0. A status is refreshed every status_every and on every change,
// and only the newest retained one is read (wicketctl fleet), so a lost
// one costs nothing that the next does not bring. At QoS 1 a NATS
// cluster stores each status twice (the message stream and the retained
// stream, both replicated) from the gate's read loop and closes the
// connection when a store takes longer than 4 s; a gate fleet connecting
// at once then loses connections to its own statuses (docs/fleet-sim.md).
// At QoS 0 the retained store is the only one, and a slow one does not
// close the connection. The status a gate publishes as it stops is QoS 1
// (goodbye waits for the broker to take it before disconnecting).
const statusQoS = 0
