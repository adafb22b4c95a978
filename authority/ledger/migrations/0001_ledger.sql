-- The issuing authority's ledger, per fleet: every trust document version
-- it signed and every statement (revocation, colour override,
-- void-before) it decided. No column holds personal data: keys are voucher
-- ids and subject pseudonyms.

-- Versions. The primary key is what makes a version impossible to sign
-- twice; published_at stays NULL until the broker acknowledged it.
-- abandoned_in is the later version that made an unpublished one
-- unnecessary (a snapshot carrying its statements, a newer key set).
CREATE TABLE wicket_authority_versions (
	fleet        text        NOT NULL,
	kind         text        NOT NULL CHECK (kind IN ('keyset', 'roster', 'batch')),
	version      bigint      NOT NULL CHECK (version > 0),
	base         bigint      NOT NULL DEFAULT 0 CHECK (base >= 0 AND base < version),
	entries      integer     NOT NULL DEFAULT 0 CHECK (entries >= 0),
	signed_at    timestamptz NOT NULL DEFAULT now(),
	published_at timestamptz,
	abandoned_in bigint,
	PRIMARY KEY (fleet, kind, version)
);

-- The signed documents of each version (one, or the parts of a multi-part
-- snapshot), so an interrupted publish resumes with the very same bytes.
CREATE TABLE wicket_authority_documents (
	fleet   text    NOT NULL,
	kind    text    NOT NULL,
	version bigint  NOT NULL,
	part    integer NOT NULL CHECK (part >= 0),
	doc     bytea   NOT NULL,
	PRIMARY KEY (fleet, kind, version, part),
	FOREIGN KEY (fleet, kind, version) REFERENCES wicket_authority_versions
);

-- Statements, as recorded by wicketctl revoke and override. published_in
-- is the batch that first carried one (NULL: pending); dropped_in the
-- snapshot that left it out because it had expired.
CREATE TABLE wicket_authority_entries (
	id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	fleet        text        NOT NULL,
	op           smallint    NOT NULL CHECK (op IN (1, 2, 3)),
	key          bytea       NOT NULL CHECK (octet_length(key) BETWEEN 8 AND 32),
	at           bigint      NOT NULL,
	expires      bigint      NOT NULL,
	colour       smallint    NOT NULL DEFAULT 0,
	recorded_at  timestamptz NOT NULL DEFAULT now(),
	published_in bigint,
	dropped_in   bigint
);

CREATE INDEX wicket_authority_entries_open ON wicket_authority_entries (fleet, id) WHERE dropped_in IS NULL;
