-- Access records as gates send them (store.Event). voucher and subject
-- are keyed hashes computed at the gate; no column holds personal data.
-- Empty strings, false and 0 stand for fields the gate left out.
CREATE TABLE wicket_records (
	gate        text        NOT NULL,
	seq         bigint      NOT NULL CHECK (seq > 0),
	type        text        NOT NULL,
	at          timestamptz NOT NULL,
	venue       text        NOT NULL DEFAULT '',
	allow       boolean     NOT NULL DEFAULT false,
	reason      text        NOT NULL DEFAULT '',
	colour      text        NOT NULL DEFAULT '',
	kind        text        NOT NULL DEFAULT '',
	class       text        NOT NULL DEFAULT '',
	issuer      text        NOT NULL DEFAULT '',
	voucher     text        NOT NULL DEFAULT '',
	subject     text        NOT NULL DEFAULT '',
	alert       boolean     NOT NULL DEFAULT false,
	attendant   boolean     NOT NULL DEFAULT false,
	warnings    text[]      NOT NULL DEFAULT '{}',
	ref         bigint      NOT NULL DEFAULT 0,
	detail      text        NOT NULL DEFAULT '',
	received_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (gate, seq)
);

CREATE INDEX wicket_records_at ON wicket_records (at);
CREATE INDEX wicket_records_venue_at ON wicket_records (venue, at);
-- Alerts are rare: a partial index keeps them findable without scanning,
-- ordered by time for "latest alerts".
CREATE INDEX wicket_records_alerts ON wicket_records (at) WHERE alert;
