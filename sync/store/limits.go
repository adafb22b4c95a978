package store

import "time"

// Defaults filled in by Open for zero Options fields. They match the
// daemon's configuration defaults.
const (
	// DefaultLockTimeout is how long Open waits for another process that
	// holds the file: long enough for a restarting daemon's predecessor to
	// finish its last commit.
	DefaultLockTimeout = 5 * time.Second
	// DefaultMaxEvents bounds the access log: about 300 MB of records, which
	// still fits the memory map of a 32-bit board comfortably.
	DefaultMaxEvents = 1_000_000
	// DefaultMaxOutbox bounds the records waiting for sync: days of traffic
	// at a busy gate with the uplink down.
	DefaultMaxOutbox = 200_000
)

// Limits.
const (
	// MinRecordKeyLen is the shortest key accepted for hashing identifiers
	// in records: a full-strength HMAC-SHA256 key.
	MinRecordKeyLen = 32
	// MaxPage is the most records Events and Outbox return in one call, so
	// one sync round trip stays small in memory.
	MaxPage = 10_000
	// maxEventBytes bounds one encoded record. A real one is well under
	// 1 KiB; the bound stops a runaway warnings list from bloating the log.
	maxEventBytes = 16 << 10
	// maxPrunePerTx bounds how many old records one Append removes when the
	// log is over MaxEvents (after MaxEvents was lowered), so no single
	// commit at the gate takes long; later Appends remove the rest.
	maxPrunePerTx = 1024
	// recoverySeqShift places sequence numbers after a corruption recovery
	// above unix-seconds<<20 of the recovery time: well above any count a
	// gate reaches, and below 2^53, so the numbers survive JSON consumers
	// that hold them as doubles.
	recoverySeqShift = 20
	// maxSalvagedSeq: a last seq read from a damaged file above this is
	// itself damage (2^53 again, the JSON-safe range), and is ignored.
	maxSalvagedSeq = 1 << 53
	// appendFillPercent is how full bbolt packs the pages of the log and
	// the outbox, whose keys only ever grow: full pages halve the file size
	// of the default split at 50%.
	appendFillPercent = 1.0
)
