-- Rule sets a hospital signs off (the built-in default applies where none is chosen), and
-- which one a patient's programme or cohort uses.
CREATE TABLE rule_sets (
    name        text PRIMARY KEY,
    version     text NOT NULL,
    definition  jsonb NOT NULL,
    approved_by text NOT NULL REFERENCES users,
    approved_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rule_set_history (
    name        text NOT NULL,
    version     text NOT NULL,
    definition  jsonb NOT NULL,
    approved_by text NOT NULL,
    approved_at timestamptz NOT NULL,
    PRIMARY KEY (name, version)
);

ALTER TABLE patients ADD COLUMN rule_set text REFERENCES rule_sets;
