-- Edge provisioning: staff issue a one-time enrolment code; an edge agent trades it for its
-- own identity and broker account. Only the code's SHA-256 is kept: the code is shown once.
CREATE TABLE enrolment_codes (
    code_hash   bytea PRIMARY KEY,
    mode        text NOT NULL CHECK (mode IN ('centre', 'home')),
    patient_id  text REFERENCES patients,
    label       text,
    issued_by   text NOT NULL REFERENCES users,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    edge_id     text REFERENCES edges,
    CHECK ((mode = 'home') = (patient_id IS NOT NULL)),
    CHECK ((used_at IS NULL) = (edge_id IS NULL))
);

-- What provisioning knows about an edge: whose home it serves, its broker login (the
-- password itself is never stored here) and the agent that enrolled.
ALTER TABLE edges
    ADD COLUMN patient_id     text REFERENCES patients,
    ADD COLUMN mqtt_username  text UNIQUE,
    ADD COLUMN agent_version  text,
    ADD COLUMN provisioned_at timestamptz;
