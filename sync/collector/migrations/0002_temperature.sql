-- Temperature screening: normal, fever, none or fault for decisions at
-- gates with a thermometer, and the reading where the gate's policy keeps
-- it (0 otherwise). Fevers come with alert = true.
ALTER TABLE wicket_records
	ADD COLUMN temperature text NOT NULL DEFAULT '',
	ADD COLUMN celsius double precision NOT NULL DEFAULT 0;
