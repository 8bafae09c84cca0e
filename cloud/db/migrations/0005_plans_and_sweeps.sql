-- Measurement plans (what a patient should measure, how often, from when), the queue of
-- patients whose trends need a fresh look, and the reminder template the plans use.
CREATE TABLE measurement_plans (
    patient_id    text NOT NULL REFERENCES patients,
    metric        text NOT NULL,
    times_per_day integer NOT NULL CHECK (times_per_day BETWEEN 1 AND 8),
    started_at    timestamptz NOT NULL,
    ends_at       timestamptz,
    set_by        text NOT NULL,
    PRIMARY KEY (patient_id, metric)
);

-- Filled by ingest (a patient with new readings), emptied by the trend sweep.
CREATE TABLE trend_queue (
    patient_id text PRIMARY KEY,
    queued_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO notification_templates (template_id, title, body, severity, approved_by, approved_at)
VALUES ('measure_reminder', '测量提醒',
        '您已有两天没有上传测量结果了。请按照管理计划按时测量，测量结果会自动上传。',
        'advice', 'default-clinical-rules', now());

-- The sender of automatic messages and the actor of automatic changes; cannot sign in.
INSERT INTO users (user_id, display_name, role, password_hash, active)
VALUES ('system', '系统', 'admin', '!', false);
