-- Records messages the collector refused: unsigned, signed by a key the
-- roster does not hold for the gate of the topic, from a gate not
-- enrolled, or naming another gate. Counted per claimed gate and reason
-- (the collector adds its counts every 10 s); no refused record is
-- stored anywhere. This is where the operator sees forgeries and gates
-- that still need enrolment.
CREATE TABLE wicket_refusals (
	gate     text        NOT NULL,
	reason   text        NOT NULL,
	messages bigint      NOT NULL DEFAULT 0,
	records  bigint      NOT NULL DEFAULT 0,
	first_at timestamptz NOT NULL DEFAULT now(),
	last_at  timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (gate, reason)
);
