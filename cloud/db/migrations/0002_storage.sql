-- Storage for reading back: 1-day chunks, daily rollups, latest value per patient and
-- metric, and the device registry with who a home device belongs to over time.
-- See docs/storage.md for the arithmetic behind the chunk interval.

SELECT set_chunk_time_interval('readings', INTERVAL '1 day');

-- Kept current by ingest in the same transaction as the readings (only readings new to the
-- database count, so a resend never counts twice). `day` is the hospital's calendar day.
CREATE TABLE readings_daily (
    patient_id  text             NOT NULL,
    metric      text             NOT NULL,
    day         date             NOT NULL,
    n           integer          NOT NULL,
    min_value   double precision NOT NULL,
    max_value   double precision NOT NULL,
    sum_value   double precision NOT NULL,
    PRIMARY KEY (patient_id, metric, day)
);

CREATE TABLE patient_latest (
    patient_id  text             NOT NULL,
    metric      text             NOT NULL,
    time        timestamptz      NOT NULL,
    value       double precision NOT NULL,
    reading_id  uuid             NOT NULL,
    source      text             NOT NULL,
    PRIMARY KEY (patient_id, metric)
);
CREATE INDEX patient_latest_time ON patient_latest (time);

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE devices (
    serial        text        NOT NULL,
    kind          text        NOT NULL,
    model         text        NOT NULL,
    manufacturer  text,
    owner_type    text        NOT NULL CHECK (owner_type IN ('centre', 'patient')),
    owner_id      text        NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    retired_at    timestamptz,
    PRIMARY KEY (kind, serial)
);

-- Which patient a home device belonged to, and when; never two patients at once.
CREATE TABLE device_bindings (
    binding_id  bigserial   PRIMARY KEY,
    kind        text        NOT NULL,
    serial      text        NOT NULL,
    patient_id  text        NOT NULL,
    during      tstzrange   NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (kind, serial) REFERENCES devices (kind, serial),
    EXCLUDE USING gist (kind WITH =, serial WITH =, during WITH &&)
);
CREATE INDEX device_bindings_patient ON device_bindings (patient_id);
