-- Core schema: readings hypertable, dead letters, edges, ingest workers, alerts.
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE edges (
    edge_id     text PRIMARY KEY,
    mode        text NOT NULL CHECK (mode IN ('centre', 'home')),
    label       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);

-- One row per metric value. `time` is measured_at as the edge fixed it when it first took
-- the record from the device; with reading_id it is the idempotency key (a hypertable's
-- unique indexes must contain the partitioning column).
CREATE TABLE readings (
    time           timestamptz      NOT NULL,
    reading_id     uuid             NOT NULL,
    measurement_id uuid             NOT NULL,
    patient_id     text,
    edge_id        text             NOT NULL,
    device_kind    text             NOT NULL,
    device_model   text             NOT NULL,
    device_serial  text             NOT NULL,
    record_key     text             NOT NULL,
    metric         text             NOT NULL,
    value          double precision NOT NULL,
    unit           text             NOT NULL,
    received_at    timestamptz      NOT NULL,
    stored_at      timestamptz      NOT NULL DEFAULT now(),
    device_time    timestamp,
    context        jsonb            NOT NULL DEFAULT '{}',
    flags          text[]           NOT NULL DEFAULT '{}',
    source         text             NOT NULL,
    staff_id       text
);
SELECT create_hypertable('readings', by_range('time', INTERVAL '7 days'));
CREATE UNIQUE INDEX readings_reading_id_time ON readings (reading_id, time);
CREATE INDEX readings_patient_metric_time ON readings (patient_id, metric, time DESC);

-- Anything the ingest could not accept, with the original bytes, never silently dropped.
CREATE TABLE dead_letters (
    dead_letter_id bigserial PRIMARY KEY,
    received_at    timestamptz NOT NULL DEFAULT now(),
    edge_id        text,
    topic          text        NOT NULL,
    code           text        NOT NULL,
    reason         text        NOT NULL,
    reading_id     uuid,
    item_index     integer,
    payload        bytea       NOT NULL
);
CREATE INDEX dead_letters_received ON dead_letters (received_at DESC);

CREATE TABLE ingest_workers (
    worker_id     text PRIMARY KEY,
    started_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    messages      bigint      NOT NULL DEFAULT 0,
    readings      bigint      NOT NULL DEFAULT 0,
    dead_letters  bigint      NOT NULL DEFAULT 0
);

CREATE TABLE alerts (
    alert_id     uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id   text        NOT NULL,
    rule_id      text        NOT NULL,
    tier         text        NOT NULL CHECK (tier IN ('critical', 'high', 'medium', 'low')),
    status       text        NOT NULL DEFAULT 'open',
    title        text        NOT NULL,
    explanation  jsonb       NOT NULL,
    reading_ids  uuid[]      NOT NULL,
    opened_at    timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- One open alert per patient and rule: new matching readings join it instead.
CREATE UNIQUE INDEX alerts_one_open_per_rule ON alerts (patient_id, rule_id)
    WHERE status IN ('open', 'acknowledged', 'in_progress');
CREATE INDEX alerts_status_opened ON alerts (status, opened_at DESC);
