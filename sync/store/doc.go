// Package store is the gate's local state on disk: signed trust documents,
// the access log with its outbox for sync, the anti-passback memory and
// the clock floor in one bbolt file, and beside it the installed
// revocation/override statements in a revset.Set ("<path>.revset"; the
// store implements verifier.Status through it).
//
// Atomicity and durability: every mutating method runs exactly one bbolt
// read-write transaction, and a method that returns without error has
// written and fsynced it, so a power cut loses nothing reported committed.
// In particular Append writes the access record, its outbox copy, the
// anti-passback memory and the sequence counter together or not at all, and
// ApplyBatch installs a whole batch together with its version or nothing.
// Sequence numbers are never reused, across pruning and restarts.
//
// The store records; it does not decide. A record is kept as the caller
// gave it: anti-passback is decided by the gate's loop from LastAllowed,
// and the store only keeps that memory with each allowed record. It owns
// the file's contents and their atomicity; it may not apply policy, nor
// talk to devices or the network.
//
// Blocking: Open waits up to Options.LockTimeout for another process that
// holds the file, then fails with ErrLocked; OpenReadOnly likewise waits
// while the daemon holds it. Writers are serialised, and each waits for its
// own commit to reach the disk. Lookups (Revoked, Subject, Events, ...) run
// concurrently with each other and with a writer, and wait only while a
// writer grows the memory map. Info and Floor never touch the disk.
//
// Corruption: Open reads the whole file and runs bbolt's consistency check
// (with Options.BackgroundCheck it checks the meta pages and the size, and
// reads the rest after returning; see there).
// A file that is not a sound store is moved aside to
// "<path>.corrupt-<unixtime>" (never deleted), the store starts empty, and
// Recovered names the moved file so the daemon can raise an alert. The new
// file keeps the old record key when it can be read, and numbers events
// from above both the old last sequence number (when readable) and the
// recovery time in seconds shifted left by 20, so a sync server that
// deduplicates by (gate, seq) does not discard new events.
package store
