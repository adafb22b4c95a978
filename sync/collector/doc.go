// Package collector stores the access records gates send over MQTT in
// PostgreSQL and acknowledges them. An ack is published only after the
// records are committed, and storing is idempotent by (gate, seq, at), so
// a gate that resends until acked loses nothing and duplicates nothing.
// The records table is partitioned by the UTC day of at, the record's
// signed time; a day's partition is created on demand, and a default
// partition takes the records of any other time, so none is refused.
//
// Only records signed by the gate of their topic, with the key the
// fleet's roster holds for that gate, are stored; anything else is
// refused, counted (Stats.Refused, table wicket_refusals) and never
// acknowledged to a gate. Acks are signed with the collector's own
// enrolled key.
//
// Several collectors split the records with a shared subscription
// (Config.Group), or, on a broker without one (NATS), by shard
// (Config.Slice): each takes the records of the gates whose shard
// (wire.Shard) falls in its slice, and refuses a batch published on a
// shard that is not its gate's.
//
// Migrate creates and upgrades the schema, Writer stores batches,
// Collector connects the two to the broker, and PlanPurge and
// PurgePlan.Apply remove the records of days past an age.
package collector
