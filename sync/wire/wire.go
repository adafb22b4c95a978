// Package wire is the contract between gates, collectors and operators on
// the MQTT broker: topic names and message bodies. docs/mqtt.md explains
// it; everything that publishes or subscribes builds topics here.
//
// Records, acks and status are JSON, signed by their sender (sign.go);
// trust documents (key sets, batches, rosters) travel as their raw signed
// COSE bytes, exactly as in files.
package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Root is the first topic level of everything Wicket publishes.
const Root = "wicket"

// Topics of one fleet.
type Topics struct{ Fleet string }

// ValidName reports whether s can be a fleet or gate id inside a topic:
// 1-64 bytes, no MQTT wildcards, no separators, no spaces or NUL.
func ValidName(s string) error {
	if s == "" || len(s) > 64 || strings.ContainsAny(s, "/+#$ \x00") {
		return fmt.Errorf("%q: use 1-64 characters without / + # $ or spaces", s)
	}
	return nil
}

// Gate topics. Gates publish records (on their shard, see shard.go),
// alerts and status; collectors publish acks.
func (t Topics) Records(gate string) string { return t.ShardTopic(gate, Shard(gate)) }
func (t Topics) Ack(gate string) string     { return t.gate(gate, "ack") }
func (t Topics) Alerts(gate string) string  { return t.gate(gate, "alerts") }
func (t Topics) Status(gate string) string  { return t.gate(gate, "status") }

func (t Topics) gate(gate, leaf string) string {
	return Root + "/" + t.Fleet + "/gate/" + gate + "/" + leaf
}

// AllRecords, AllAlerts and AllStatus are the filters a collector or an
// operator subscribes to. AllRecords takes every shard and the
// unsharded topic of gates before sharding (records/# matches records).
func (t Topics) AllRecords() string { return t.gate("+", "records/#") }
func (t Topics) AllAlerts() string  { return t.gate("+", "alerts") }
func (t Topics) AllStatus() string  { return t.gate("+", "status") }

// SharedRecords is AllRecords behind a shared subscription, so several
// collectors of one group split the load.
func (t Topics) SharedRecords(group string) string { return t.Filters(Slice{}, group)[0] }

// GateOf returns the gate id of a gate topic.
func (t Topics) GateOf(topic string) (string, error) {
	prefix := Root + "/" + t.Fleet + "/gate/"
	rest, ok := strings.CutPrefix(topic, prefix)
	if !ok {
		return "", fmt.Errorf("topic %q is not under %s", topic, prefix)
	}
	gate, _, ok := strings.Cut(rest, "/")
	if !ok || ValidName(gate) != nil {
		return "", fmt.Errorf("topic %q has no valid gate id", topic)
	}
	return gate, nil
}

// Trust topics, published by the authority, retained.
func (t Topics) KeySet() string   { return Root + "/" + t.Fleet + "/trust/keyset" }
func (t Topics) Roster() string   { return Root + "/" + t.Fleet + "/trust/roster" }
func (t Topics) Snapshot() string { return Root + "/" + t.Fleet + "/trust/status/snapshot" }
func (t Topics) Delta(version uint64) string {
	return Root + "/" + t.Fleet + "/trust/status/delta/" + strconv.FormatUint(version, 10)
}
func (t Topics) AllDeltas() string { return Root + "/" + t.Fleet + "/trust/status/delta/+" }

// SnapshotPart is the topic of part n of a multi-part snapshot (retained,
// one topic per part number: a newer snapshot's parts replace an older
// one's).
func (t Topics) SnapshotPart(n uint32) string {
	return Root + "/" + t.Fleet + "/trust/status/part/" + strconv.FormatUint(uint64(n), 10)
}
func (t Topics) AllSnapshotParts() string { return Root + "/" + t.Fleet + "/trust/status/part/+" }

// SnapshotIndex is where a publisher keeps, retained, the version and part
// count of the multi-part snapshot it last published in full (JSON
// SnapshotIndex), so the next one knows which part topics to clear. Gates
// ignore it; it is not signed.
func (t Topics) SnapshotIndex() string { return Root + "/" + t.Fleet + "/trust/status/parts" }

// SnapshotIndex is the payload of Topics.SnapshotIndex.
type SnapshotIndex struct {
	Version uint64 `json:"version"`
	Parts   uint32 `json:"parts"`
}

// PartNumber reads the part number from a snapshot part topic.
func (t Topics) PartNumber(topic string) (uint32, error) {
	v, ok := strings.CutPrefix(topic, Root+"/"+t.Fleet+"/trust/status/part/")
	if !ok {
		return 0, fmt.Errorf("topic %q is not a snapshot part topic", topic)
	}
	n, err := strconv.ParseUint(v, 10, 32)
	return uint32(n), err
}
func (t Topics) AllTrust() string { return Root + "/" + t.Fleet + "/trust/#" }

// AllTrustStatus is the filter of the revocation data alone: the
// snapshot, its parts or manifest, and the deltas.
func (t Topics) AllTrustStatus() string { return Root + "/" + t.Fleet + "/trust/status/#" }

// DeltaVersion reads the version from a delta topic.
func (t Topics) DeltaVersion(topic string) (uint64, error) {
	v, ok := strings.CutPrefix(topic, Root+"/"+t.Fleet+"/trust/status/delta/")
	if !ok {
		return 0, fmt.Errorf("topic %q is not a delta topic", topic)
	}
	return strconv.ParseUint(v, 10, 64)
}

// Records is one batch of access records from one gate, in seq order. It
// travels signed by the gate (Sign, KindRecords).
type Records struct {
	Gate    string   `json:"gate"`
	Records []Record `json:"records"`
}

// Ack acknowledges that a collector durably stored the records of Gate
// with From <= seq <= Through. It travels signed by the collector (Sign,
// KindAck); the gate deletes exactly those records from its outbox if it
// sent them and has not had them acknowledged yet. Acks are idempotent
// and may arrive in any order.
type Ack struct {
	Gate    string `json:"gate"`
	From    uint64 `json:"from"`
	Through uint64 `json:"through"`
}

// Status is a gate's retained status, signed by the gate (Sign,
// KindStatus); the broker publishes the last-will form (Online false,
// signed when the gate connected) when the gate drops off.
type Status struct {
	Gate          string    `json:"gate"`
	Venue         string    `json:"venue,omitempty"`
	Online        bool      `json:"online"`
	Version       string    `json:"version,omitempty"`
	ConfigHash    string    `json:"config_hash,omitempty"`
	KeySetVersion uint64    `json:"key_set_version"`
	RosterVersion uint64    `json:"roster_version,omitempty"`
	KeySetIssued  time.Time `json:"key_set_issued,omitzero"`
	StatusVersion uint64    `json:"status_version"`
	StatusIssued  time.Time `json:"status_issued,omitzero"`
	TrustGap      bool      `json:"trust_gap,omitempty"`
	// SnapshotParts is "version: have/of" while a multi-part snapshot is
	// being collected.
	SnapshotParts string `json:"snapshot_parts,omitempty"`
	// SnapshotFetch says where the snapshot of the last manifest is
	// (snapfile.State): downloading, from the broker and why, failed
	// and why; and refused manifests.
	SnapshotFetch string `json:"snapshot_fetch,omitempty"`
	// StatusRecords is the number of revocation/override statements held
	// (snapshot file plus deltas since).
	StatusRecords uint64 `json:"status_records"`
	// TrustRefused counts trust documents refused (bad signature, wrong
	// type, malformed) since start; LastRefusal says why the last was.
	TrustRefused uint64    `json:"trust_refused"`
	LastRefusal  string    `json:"last_refusal,omitempty"`
	ClockFloor   time.Time `json:"clock_floor,omitzero"`
	ClockTrusted bool      `json:"clock_trusted"`
	Outbox       int       `json:"outbox"`
	Dropped      uint64    `json:"dropped"`
	LastSeq      uint64    `json:"last_seq"`
	LastRecord   time.Time `json:"last_record,omitzero"`
	Decisions    uint64    `json:"decisions"`
	Allowed      uint64    `json:"allowed"`
	Emergency    string    `json:"emergency,omitempty"`
	// Sync state: when a collector last acknowledged records, how many
	// were sent and acknowledged since start, how often unacknowledged
	// ones were sent again.
	LastAck time.Time `json:"last_ack,omitzero"`
	Sent    uint64    `json:"sent"`
	Acked   uint64    `json:"acked"`
	Resends uint64    `json:"resends"`
	// AcksRefused counts acks the gate refused (unsigned, not from an
	// enrolled collector, for records it did not send or had acked);
	// Ignored counts messages on topics it has no use for. Either
	// growing means someone is publishing what they should not.
	AcksRefused uint64 `json:"acks_refused,omitempty"`
	Ignored     uint64 `json:"ignored,omitempty"`
	// Oversized counts messages over the gate's read limit, dropped
	// unread: someone published what no gate can take.
	Oversized uint64 `json:"oversized,omitempty"`
	// Unsubscribed names the topic filters the gate has no confirmed
	// subscription to and why (the broker refused them or did not
	// answer; the gate subscribes again with backoff); "" when it has
	// them all. SubscribeRefused counts such refusals since start.
	Unsubscribed     string    `json:"unsubscribed,omitempty"`
	SubscribeRefused uint64    `json:"subscribe_refused,omitempty"`
	At               time.Time `json:"at"`
}

// Limits of what a gate or collector accepts from the broker.
const (
	// MaxRecordsPerBatch bounds one records message; gates send at most
	// this many, collectors refuse more.
	MaxRecordsPerBatch = 500
	// MaxMessage bounds any JSON message (a batch of 500 records is about
	// 200 KiB).
	MaxMessage = 1 << 20
	// MaxAckMessage bounds a signed ack: its body is under 200 bytes,
	// the envelope and signature add about 150. Anything longer is
	// refused before it is parsed.
	MaxAckMessage = 1024
)

// DecodeRecords parses and checks a records message: at most
// MaxRecordsPerBatch records, all of the named gate, seqs strictly
// increasing. A body in the form gates write is read by scanRecords,
// any other by encoding/json: the result, or the refusal, is what
// encoding/json alone gives.
func DecodeRecords(payload []byte) (*Records, error) {
	return decodeRecords(payload, scanRecords)
}

// decodeRecords is DecodeRecords reading with scan first, encoding/json
// where scan does not take the body.
func decodeRecords(payload []byte, scan func([]byte) (Records, bool)) (*Records, error) {
	if len(payload) > MaxMessage {
		return nil, fmt.Errorf("records message of %d bytes, over %d", len(payload), MaxMessage)
	}
	r, ok := scan(payload)
	if !ok {
		r = Records{}
		if err := json.Unmarshal(payload, &r); err != nil {
			return nil, fmt.Errorf("records message: %w", err)
		}
	}
	if err := ValidName(r.Gate); err != nil {
		return nil, fmt.Errorf("records message: gate %w", err)
	}
	if len(r.Records) == 0 || len(r.Records) > MaxRecordsPerBatch {
		return nil, fmt.Errorf("records message with %d records; want 1 to %d", len(r.Records), MaxRecordsPerBatch)
	}
	var last uint64
	for _, e := range r.Records {
		if e.Seq <= last {
			return nil, errors.New("records message: seqs not strictly increasing")
		}
		if e.Gate != r.Gate {
			return nil, fmt.Errorf("records message from %q holds a record of gate %q", r.Gate, e.Gate)
		}
		last = e.Seq
	}
	return &r, nil
}

// DecodeAck parses and checks an ack.
func DecodeAck(payload []byte) (Ack, error) {
	var a Ack
	if len(payload) > MaxAckMessage {
		return a, errors.New("ack message too long")
	}
	if err := json.Unmarshal(payload, &a); err != nil {
		return a, fmt.Errorf("ack message: %w", err)
	}
	if a.From == 0 || a.Through < a.From {
		return a, fmt.Errorf("ack message: range %d..%d", a.From, a.Through)
	}
	return a, nil
}
