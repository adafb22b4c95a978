-- The read-only reporting role, wicket_reporting: it logs in and reads
-- the access records and the refusal counts, and nothing else (no
-- INSERT, UPDATE, DELETE, TRUNCATE, no CREATE, no temporary tables, no
-- partitions created). For dashboards and the operator's questions.
--
-- Run it as a superuser (or the database's owner) in the collector's
-- database, after the schema exists:
--   sudo -u postgres psql -d wicket -f /usr/share/wicket-authority/reporting-role.sql
-- It is idempotent: run it again after an upgrade that migrates the schema.
-- The role has no password: over the local socket peer authentication logs
-- in the user of the same name. For TCP logins give it one:
--   sudo -u postgres psql -d wicket -c '\password wicket_reporting'
\set ON_ERROR_STOP on

DO $$
BEGIN
	IF to_regclass('wicket_records') IS NULL OR to_regclass('wicket_refusals') IS NULL THEN
		RAISE EXCEPTION 'database % has no Wicket records tables yet', current_database()
			USING HINT = 'migrate it first, as its owner: wicketctl collect -migrate -db URL';
	END IF;
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wicket_reporting') THEN
		CREATE ROLE wicket_reporting LOGIN;
	END IF;
	ALTER ROLE wicket_reporting NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT LOGIN;
	EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
	EXECUTE format('REVOKE ALL ON DATABASE %I FROM wicket_reporting', current_database());
	EXECUTE format('GRANT CONNECT ON DATABASE %I TO wicket_reporting', current_database());
	-- Every transaction of the role is read-only, whatever it asks for.
	ALTER ROLE wicket_reporting SET default_transaction_read_only = on;
END
$$;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM wicket_reporting;
GRANT USAGE ON SCHEMA public TO wicket_reporting;

REVOKE ALL ON wicket_records, wicket_refusals FROM wicket_reporting;
-- Through the partitioned table only (its partitions are not granted).
GRANT SELECT ON wicket_records, wicket_refusals TO wicket_reporting;
