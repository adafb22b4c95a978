package collector

import (
	"time"

	"wicket/sync/wire"
)

// Limits and timings of the collector, with the reason for each number.
const (
	// DefaultWorkers is how many batches are written at once. Each commit
	// waits for one WAL flush; a few concurrent transactions share flushes
	// (group commit), more only contend for the pool and the index pages.
	DefaultWorkers = 4
	// MaxWorkers bounds Config.Workers: every worker holds a database
	// connection while it writes.
	MaxWorkers = 64
	// QueueSize bounds the messages received but not yet written. The
	// collector sends the broker its PUBACK only once a message is stored,
	// so the broker's in-flight window throttles it; but brokers let more
	// than that arrive (in the 500-gate simulation on Mosquitto 2.0 a
	// 256-message queue overflowed, a 1024-message one did not). A message
	// that finds the queue full is acknowledged and dropped, and the gate
	// resends it after its ack timeout: a delay, never a loss. Gates send
	// batches of about 40 KiB (100 records), so a full queue holds about
	// 40 MiB; the worst case is QueueSize × wire.MaxMessage.
	QueueSize = 1024
	// MaxBatch is the most records Write accepts in one call, the wire
	// limit. It keeps one INSERT at 500 × 18 = 9000 parameters, far below
	// PostgreSQL's 65535.
	MaxBatch = wire.MaxRecordsPerBatch
	// MaxMessagesPerWrite is the most records messages a worker stores in
	// one transaction when more than one is queued: a backlog then costs
	// fewer commits and statements. A message that finds no write under
	// way waits for no other; one that finds a write under way waits for
	// others at most until a write ends (Collector.work). At 100 records a
	// message (what gates send) that is 1,600 rows a COPY, at most 16 ×
	// MaxBatch.
	MaxMessagesPerWrite = 16
)

const (
	// writeRetryMin and writeRetryMax bound the backoff while PostgreSQL
	// is unreachable: quick enough to notice a restart, slow enough not to
	// flood its log during a long outage.
	writeRetryMin = 100 * time.Millisecond
	writeRetryMax = 30 * time.Second
	// writeDrain bounds the write under way when the collector stops: a
	// commit takes milliseconds, a PostgreSQL that does not answer within
	// this is given up on.
	writeDrain = 5 * time.Second
	// reconnectMin is the first wait before connecting again, after a
	// failed connect or a lost connection.
	reconnectMin = 250 * time.Millisecond
	// reconnectFirstMax caps the waits after the first reconnectFastTries
	// failed connects in a row: a broker restarting is back within
	// seconds, and records wait for the collector no longer than that.
	reconnectFirstMax  = 4 * time.Second
	reconnectFastTries = 6
	// reconnectMax caps the waits of a longer outage, so a broker that
	// stays down is not hammered by every collector.
	reconnectMax = 30 * time.Second
	// shortConnectionMax caps the wait after a connection that lasted
	// less than stableConnection. Short connections in a row (a broker
	// restarted again and again, or another client with this client id
	// taking the session over each time) make the wait grow to this and
	// no further: the collector neither hammers the broker nor lets
	// records wait long after the last restart.
	shortConnectionMax = 5 * time.Second
	// stableConnection is how long a connection must last for its loss
	// to start the waits over from reconnectMin.
	stableConnection = 30 * time.Second
	// connectTimeout bounds one CONNECT and one SUBSCRIBE round trip.
	connectTimeout = 10 * time.Second
	// keepAlive is the MQTT keep-alive: a dead link is noticed within
	// about 1.5 times this.
	keepAlive = 30 * time.Second
	// silenceWait is how long the records subscription may bring no
	// message before the collector renews it (UNSUBSCRIBE, SUBSCRIBE): a
	// broker may grant a subscription and deliver nothing on it (NATS
	// 2.9.10 after a restart storm: ten minutes, every gate resending).
	// While any gate waits for an ack it sends at least every 80 s (its
	// ack_timeout, 10 s, doubled up to three times), and a fleet of
	// hundreds sends every few seconds in service hours, so a minute
	// without a message is rare on a working subscription, and a renewal
	// costs only one consumer on NATS. The wait is drawn from its upper
	// half, as clock.Backoff does, so collectors do not renew in step.
	// Doubled with each renewal that finds the subscription silent again,
	// up to maxSilenceWait: a fleet idle at night costs one SUBSCRIBE
	// every 8 to 16 minutes, and a record that finds the subscription
	// dead waits at most that, plus its gate's next resend. Any message
	// starts the waits over.
	silenceWait    = time.Minute
	maxSilenceWait = 16 * time.Minute
	// ackTimeout bounds the wait for one ack to be written to the
	// broker. A lost ack costs only a resend by the gate.
	ackTimeout = 10 * time.Second
	// disconnectQuiesce is how long Disconnect lets in-flight work finish
	// (milliseconds, as paho takes it).
	disconnectQuiesce = 250
	// progressEvery is the period of the progress log line.
	progressEvery = 10 * time.Second
	// complainEvery rate-limits the log lines of repeating problems (bad
	// messages, a full queue, failing writes): one line per period per
	// kind, with the count of those left out.
	complainEvery = 10 * time.Second
)

// ackQoS is the QoS of the acks the collector publishes: 0. Gates
// subscribe to their acks at QoS 0 (mqttsync's ackQoS), so a broker
// delivers an ack at QoS 0 whatever it was published at, and queues
// none for a gate that is away. At QoS 1 the broker's PUBACK would only
// say that it took the ack, not that the gate got it; on a NATS cluster
// it would also cost a replicated JetStream store per ack, made from the
// collector's read loop, and nats-server 2.9 closes the collector's
// connection when such a store takes over 4 s. A lost ack costs one
// resend by its gate, which the collector stores as nothing and
// acknowledges again.
const ackQoS = 0
