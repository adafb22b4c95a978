// Package collector stores the access records gates send over MQTT in
// PostgreSQL and acknowledges them. An ack is published only after the
// records are committed, and storing is idempotent by (gate, seq), so a
// gate that resends until acked loses nothing and duplicates nothing.
//
// Migrate creates and upgrades the schema, Writer stores batches, and
// Collector connects the two to the broker.
package collector
