-- The collector's least-privilege PostgreSQL role, wicket_collector: it
-- logs in, reads the records tables and adds rows to them, and may have a
-- day's partition created (wicket_records_partition, which creates only
-- daily partitions of wicket_records near today), and nothing else (no
-- UPDATE, DELETE, TRUNCATE, no CREATE, no temporary tables).
--
-- Run it as a superuser (or the database's owner) in the collector's own
-- database, after the schema exists:
--   sudo -u postgres createdb wicket
--   sudo -u postgres wicketctl collect -migrate -db 'postgres:///wicket?host=/run/postgresql'
--   sudo -u postgres psql -d wicket -f /usr/share/wicket-authority/collector-role.sql
-- It is idempotent: run it again after an upgrade that migrates the schema.
-- The role has no password: over the local socket peer authentication logs
-- in the service's user of the same name. For TCP logins give it one:
--   sudo -u postgres psql -d wicket -c '\password wicket_collector'
\set ON_ERROR_STOP on

DO $$
BEGIN
	IF to_regclass('wicket_records') IS NULL OR to_regclass('wicket_schema_migrations') IS NULL THEN
		RAISE EXCEPTION 'database % has no Wicket records tables yet', current_database()
			USING HINT = 'migrate it first, as its owner: wicketctl collect -migrate -db URL';
	END IF;
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wicket_collector') THEN
		CREATE ROLE wicket_collector LOGIN;
	END IF;
	-- Only what the role is granted here: nothing inherited, nothing to
	-- hand on, and in this database no CREATE or TEMPORARY through PUBLIC.
	ALTER ROLE wicket_collector NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT LOGIN;
	EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
	EXECUTE format('REVOKE ALL ON DATABASE %I FROM wicket_collector', current_database());
	EXECUTE format('GRANT CONNECT ON DATABASE %I TO wicket_collector', current_database());
END
$$;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM wicket_collector;
GRANT USAGE ON SCHEMA public TO wicket_collector;

REVOKE ALL ON wicket_records, wicket_refusals, wicket_schema_migrations FROM wicket_collector;
-- Records: stored with COPY, and with INSERT ... ON CONFLICT DO NOTHING
-- after a record turned out stored already (both need only INSERT).
GRANT SELECT, INSERT ON wicket_records TO wicket_collector;
-- The partition of each day, created before its first record is stored
-- (until then the day's records wait in the default partition).
GRANT EXECUTE ON FUNCTION wicket_records_partition(date) TO wicket_collector;
-- Refused messages: counted per gate and reason, adding to the row
-- (INSERT ... ON CONFLICT DO UPDATE of the counts).
GRANT SELECT, INSERT, UPDATE ON wicket_refusals TO wicket_collector;
-- The schema version: the collector checks it is up to date at start.
GRANT SELECT ON wicket_schema_migrations TO wicket_collector;
