-- The voucher and subject hashes as the 16 bytes they are (bytea)
-- instead of their 32 hex digits (text), and gate and venue compared
-- byte by byte (collation "C") instead of by the database's collation.
--
-- Why: every record goes into the primary key (gate, seq, at), the venue
-- index (venue, at) and, with a voucher, the voucher index, whose keys
-- are random, so that each insert lands on a page of its own.
-- Those inserts are most of what storing a record costs PostgreSQL. A
-- 16-byte key makes the voucher index and the row smaller (17 bytes
-- instead of 33 for each hash), and bytes compare with memcmp; so do
-- texts under "C", where other collations call strcoll for every
-- comparison. Equality is the same under every deterministic collation,
-- so a query for one gate or one venue finds the same rows; only ORDER BY
-- gate or venue sorts by bytes (code points) now.
--
-- Records without a voucher or subject have the empty bytea ('' as
-- before). A gate sends the hashes as hex (wire.Record); a value that was
-- stored but is not hex (no Wicket gate sends one) keeps its UTF-8 bytes.
--
-- Queries name a hash as bytes: WHERE voucher = decode('…', 'hex'), and
-- show it as hex with encode(voucher, 'hex').
--
-- This rewrites every partition (room for a second copy of the table
-- while it runs) and rebuilds its indexes, in one transaction: stop the
-- collectors first.

DROP INDEX wicket_records_voucher;

ALTER TABLE wicket_records
	ALTER COLUMN voucher DROP DEFAULT,
	ALTER COLUMN subject DROP DEFAULT;

ALTER TABLE wicket_records
	ALTER COLUMN voucher TYPE bytea USING CASE
		WHEN voucher ~ '^([0-9a-fA-F]{2})*$' THEN decode(voucher, 'hex')
		ELSE convert_to(voucher, 'UTF8') END,
	ALTER COLUMN subject TYPE bytea USING CASE
		WHEN subject ~ '^([0-9a-fA-F]{2})*$' THEN decode(subject, 'hex')
		ELSE convert_to(subject, 'UTF8') END,
	ALTER COLUMN gate TYPE text COLLATE "C",
	ALTER COLUMN venue TYPE text COLLATE "C";

ALTER TABLE wicket_records
	ALTER COLUMN voucher SET DEFAULT '',
	ALTER COLUMN subject SET DEFAULT '';

-- Per voucher: where and when it was used. Records without a voucher are
-- left out of the index. The key is the voucher alone: a voucher has a
-- few records a day, which a query sorts by time at no cost, and a day's
-- partition answers a range of days; at in the key cost 8 bytes of every
-- entry.
CREATE INDEX wicket_records_voucher ON wicket_records (voucher) WHERE voucher <> '';
