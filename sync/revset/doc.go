// Package revset holds a gate's revocation and override statements at
// fleet scale (tens of millions of entries) in a compact, immutable sorted
// file plus a small persisted overlay of recent deltas.
//
// Layout in one directory:
//
//	revset.dat   the snapshot: a header and fixed-size records sorted by
//	             (key, kind); written once, never modified (see File).
//	revset.flt   a binary fuse filter of the snapshot's keys (about 2.26
//	             bytes a key), bound to the snapshot's header: derived
//	             data, rebuilt from the snapshot when missing or damaged.
//	deltas.log   every delta applied since the snapshot was written, as
//	             checksummed frames appended and fsynced one per batch.
//
// Keys are the first 8 bytes of HMAC-SHA-256(gate key, domain || 0x00 ||
// verifier.EntryKey(op, id)), so a record is 18 bytes and the identifiers
// never reach the disk (see Hasher). The gate key is the directory's "key"
// file unless Options.Key gives one.
//
// Lookups (Set.Standing) read an immutable view through an atomic pointer:
// the snapshot file plus two sorted in-memory overlays. They never take a
// lock and never wait for a writer. A key the filter rules out is not
// looked for in the snapshot (about 0.0015 % of unknown keys get through),
// so on a board whose memory can't cache the snapshot file a lookup of
// an unknown voucher almost never waits for the disk; a key the filter
// lets through is looked up in the file, so answers are exact. A delta
// (Set.ApplyBatch) is hashed, sorted, appended to the log and fsynced,
// then published as a new view.
// When the overlay grows past Options.MergeRecords a background merge
// streams the snapshot and the overlay into a new file (dropping expired
// statements), fsyncs it, renames it over revset.dat and rewrites the log;
// deltas keep arriving meanwhile and readers switch to the new file with
// one pointer swap. A snapshot batch is built with an external sort, so
// memory stays bounded whatever the number of entries.
//
// Crash safety: files only change by rename of a fully written and fsynced
// temporary file, followed by an fsync of the directory; the log is only
// appended to. After a power cut Open finds the old or the new snapshot,
// replays the log frames that follow its version, and cuts a torn last
// frame: the result is always a published version, never a mix. Open
// checks the snapshot's header and size and maps it; its records are
// checked, and the index built, by a background read (see Open).
//
// Semantics follow verifier.MemStatus: a revocation keeps its latest
// expiry; among statements of one kind about a subject the newest wins and
// a tie keeps the earlier one; entries already expired when applied are
// skipped. Lookups do not look at expiry; merges drop statements that
// expired. "Expired" is always measured against a time the caller knows
// has passed (the trusted clock's floor), never a wall clock that may be
// set ahead: a statement dropped early would not come back until the next
// snapshot.
package revset
