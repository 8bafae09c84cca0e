-- People, care teams, the alert lifecycle with its immutable history, contact records,
-- per-patient targets and the audit log.

CREATE TABLE care_teams (
    team_id      text PRIMARY KEY,
    name         text NOT NULL,
    lead_user_id text
);

CREATE TABLE users (
    user_id       text PRIMARY KEY,
    display_name  text NOT NULL,
    role          text NOT NULL CHECK (role IN ('case_manager', 'doctor', 'nurse',
                      'health_manager', 'qc_supervisor', 'admin', 'patient')),
    password_hash text NOT NULL,
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE team_members (
    team_id text NOT NULL REFERENCES care_teams,
    user_id text NOT NULL REFERENCES users,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members (user_id);

CREATE TABLE api_tokens (
    token_hash  bytea PRIMARY KEY,
    user_id     text NOT NULL REFERENCES users,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

CREATE TABLE patients (
    patient_id        text PRIMARY KEY,
    name              text NOT NULL,
    id_number         text,
    phone             text,
    team_id           text REFERENCES care_teams,
    case_manager_id   text REFERENCES users,
    doctor_id         text REFERENCES users,
    cohorts           text[] NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patients_team ON patients (team_id);

-- Append-only: the current target is the newest row per patient and metric.
CREATE TABLE patient_targets (
    target_id  bigserial PRIMARY KEY,
    patient_id text NOT NULL REFERENCES patients,
    metric     text NOT NULL,
    low        double precision,
    high       double precision,
    set_by     text NOT NULL REFERENCES users,
    reason     text NOT NULL,
    set_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patient_targets_current ON patient_targets (patient_id, metric, set_at DESC);

ALTER TABLE alerts
    ADD COLUMN kind            text NOT NULL DEFAULT 'clinical',
    ADD COLUMN team_id         text,
    ADD COLUMN assignee_id     text,
    ADD COLUMN ack_due_at      timestamptz,
    ADD COLUMN acknowledged_at timestamptz,
    ADD COLUMN closed_at       timestamptz,
    ADD COLUMN outcome_code    text,
    ADD COLUMN escalation_level integer NOT NULL DEFAULT 0;
CREATE INDEX alerts_queue ON alerts (team_id, status, ack_due_at);
CREATE INDEX alerts_patient ON alerts (patient_id, opened_at DESC);

-- Every change of an alert, never updated or deleted.
CREATE TABLE alert_events (
    event_id     bigserial PRIMARY KEY,
    alert_id     uuid NOT NULL REFERENCES alerts,
    at           timestamptz NOT NULL,
    actor_id     text,
    action       text NOT NULL,
    from_status  text,
    to_status    text NOT NULL,
    outcome_code text,
    note         text,
    detail       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, event_id);

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER alert_events_append_only BEFORE UPDATE OR DELETE ON alert_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TABLE contact_records (
    contact_id  bigserial PRIMARY KEY,
    patient_id  text NOT NULL REFERENCES patients,
    alert_id    uuid REFERENCES alerts,
    user_id     text NOT NULL REFERENCES users,
    channel     text NOT NULL CHECK (channel IN ('call', 'sms', 'app', 'wechat')),
    direction   text NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    outcome     text NOT NULL,
    note        text NOT NULL DEFAULT '',
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contact_records_patient ON contact_records (patient_id, at DESC);
CREATE TRIGGER contact_records_append_only BEFORE UPDATE OR DELETE ON contact_records
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TABLE audit_log (
    audit_id   bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    user_id    text,
    action     text NOT NULL,
    patient_id text,
    detail     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_patient ON audit_log (patient_id, at DESC);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- An escalated alert is still open: new readings join it rather than opening another.
DROP INDEX alerts_one_open_per_rule;
CREATE UNIQUE INDEX alerts_one_open_per_rule ON alerts (patient_id, rule_id)
    WHERE status IN ('open', 'acknowledged', 'in_progress', 'escalated');
