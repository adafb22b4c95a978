-- Access records partitioned by the UTC day of their time, as a city
-- keeps them: a day's records are one table, so retention drops whole
-- days (wicketctl records purge) instead of deleting row by row, and
-- queries over a few days read only those days.
--
-- The day is taken from at, the time the gate signed into the record,
-- never from received_at: a record the gate resends carries the same at,
-- so it lands in the same partition, where the primary key finds it.
-- The primary key is (gate, seq, at): PostgreSQL needs the partition key
-- in every unique index of a partitioned table.
--
-- Records whose day has no partition go to wicket_records_default, so no
-- record is ever refused for its time. The collector creates the day's
-- partition before it stores the first record of a day within the window
-- wicket_records_partition accepts; that moves the day's rows out of the
-- default partition. Times outside the window (a gate whose clock is
-- wrong by more than a year, or more than a week ahead) stay in the
-- default partition.

ALTER TABLE wicket_records RENAME TO wicket_records_unpartitioned;
ALTER TABLE wicket_records_unpartitioned DROP CONSTRAINT wicket_records_pkey;
DROP INDEX wicket_records_at, wicket_records_venue_at, wicket_records_alerts;

CREATE TABLE wicket_records (
	gate        text             NOT NULL,
	seq         bigint           NOT NULL CHECK (seq > 0),
	type        text             NOT NULL,
	at          timestamptz      NOT NULL,
	venue       text             NOT NULL DEFAULT '',
	allow       boolean          NOT NULL DEFAULT false,
	reason      text             NOT NULL DEFAULT '',
	colour      text             NOT NULL DEFAULT '',
	kind        text             NOT NULL DEFAULT '',
	class       text             NOT NULL DEFAULT '',
	issuer      text             NOT NULL DEFAULT '',
	voucher     text             NOT NULL DEFAULT '',
	subject     text             NOT NULL DEFAULT '',
	alert       boolean          NOT NULL DEFAULT false,
	attendant   boolean          NOT NULL DEFAULT false,
	warnings    text[]           NOT NULL DEFAULT '{}',
	ref         bigint           NOT NULL DEFAULT 0,
	detail      text             NOT NULL DEFAULT '',
	received_at timestamptz      NOT NULL DEFAULT now(),
	temperature text             NOT NULL DEFAULT '',
	celsius     double precision NOT NULL DEFAULT 0,
	-- Per gate: a gate's records in seq order, which is their time order.
	PRIMARY KEY (gate, seq, at)
) PARTITION BY RANGE (at);

CREATE TABLE wicket_records_default PARTITION OF wicket_records DEFAULT;

-- Time ranges within a day: records arrive nearly in time order, so a
-- block range index answers them at a few bytes per thousand rows.
CREATE INDEX wicket_records_at ON wicket_records USING brin (at);
CREATE INDEX wicket_records_venue_at ON wicket_records (venue, at);
-- Per voucher (the keyed hash the gate computed): where and when it was
-- used. Records without a voucher are left out of the index.
CREATE INDEX wicket_records_voucher ON wicket_records (voucher, at) WHERE voucher <> '';
-- Alerts are rare: a partial index keeps them findable without scanning.
CREATE INDEX wicket_records_alerts ON wicket_records (at) WHERE alert;

-- wicket_records_partition makes sure the UTC day has its partition and
-- reports whether it has one: false for a day outside the window of 400
-- days back (over a year, for gates offline long) to 7 days ahead, whose
-- records stay in the default partition. Rows of the day already in the
-- default partition move into the new one in the same transaction. It
-- runs with its owner's rights, so the collector's role, which may not
-- create tables, may call it; the window bounds what it can create.
CREATE FUNCTION wicket_records_partition(day date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
	today date := (now() AT TIME ZONE 'UTC')::date;
	name text := 'wicket_records_' || to_char(day, 'YYYYMMDD');
	lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
	hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
	IF day IS NULL OR day < today - 400 OR day > today + 7 THEN
		RETURN false;
	END IF;
	IF to_regclass(name) IS NOT NULL THEN
		RETURN true;
	END IF;
	-- Serialises the collectors creating the same day ("wicket_p").
	PERFORM pg_advisory_xact_lock(x'7769636b65745f70'::bigint);
	IF to_regclass(name) IS NOT NULL THEN
		RETURN true;
	END IF;
	-- Locks in the order inserts take them, parent first, and the
	-- default partition's strongest at once rather than by upgrading.
	LOCK TABLE wicket_records IN SHARE UPDATE EXCLUSIVE MODE;
	LOCK TABLE wicket_records_default IN ACCESS EXCLUSIVE MODE;
	EXECUTE format('CREATE TABLE %I (LIKE wicket_records INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
	EXECUTE format('WITH moved AS (DELETE FROM wicket_records_default WHERE at >= %L AND at < %L RETURNING *) '
		'INSERT INTO %I SELECT * FROM moved', lo, hi, name);
	EXECUTE format('ALTER TABLE wicket_records ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
	RETURN true;
END
$fn$;
REVOKE EXECUTE ON FUNCTION wicket_records_partition(date) FROM PUBLIC;

-- The days the existing records have, and the days around today.
SELECT wicket_records_partition(day) FROM (
	SELECT DISTINCT (at AT TIME ZONE 'UTC')::date AS day FROM wicket_records_unpartitioned
	UNION
	SELECT (now() AT TIME ZONE 'UTC')::date + d FROM generate_series(-1, 7) AS d
) AS days;

INSERT INTO wicket_records (gate, seq, type, at, venue, allow, reason, colour, kind, class, issuer,
		voucher, subject, alert, attendant, warnings, ref, detail, received_at, temperature, celsius)
	SELECT gate, seq, type, at, venue, allow, reason, colour, kind, class, issuer,
		voucher, subject, alert, attendant, warnings, ref, detail, received_at, temperature, celsius
	FROM wicket_records_unpartitioned;

DROP TABLE wicket_records_unpartitioned;
