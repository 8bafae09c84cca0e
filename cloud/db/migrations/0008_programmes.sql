-- Programmes (service packages) per hospital, enrolments with consent, pathway templates
-- and the dated tasks they become, questionnaires, revisits, per-hospital template
-- approval, and the records the monthly quality score is computed and audited from.

CREATE TABLE hospitals (
    hospital_id text PRIMARY KEY,
    name        text NOT NULL
);

-- Every approved version of a pathway is kept: a running enrolment points at its version.
CREATE TABLE pathway_templates (
    pathway_id  text    NOT NULL,
    version     integer NOT NULL CHECK (version >= 1),
    disease     text    NOT NULL,
    definition  jsonb   NOT NULL,
    approved_by text    NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pathway_id, version)
);

-- A service package (服务套餐) as one hospital sells it.
CREATE TABLE programmes (
    programme_id     text PRIMARY KEY,
    hospital_id      text    NOT NULL REFERENCES hospitals,
    name             text    NOT NULL,
    name_en          text    NOT NULL DEFAULT '',
    disease          text    NOT NULL,
    duration_days    integer NOT NULL CHECK (duration_days > 0),
    price_cents      integer NOT NULL CHECK (price_cents >= 0),
    pathway_id       text    NOT NULL,
    measurement_plan jsonb   NOT NULL DEFAULT '[]',
    care_team_roles  text[]  NOT NULL DEFAULT '{}',
    description      text    NOT NULL DEFAULT '',
    active           boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX programmes_hospital ON programmes (hospital_id);

CREATE TABLE enrolments (
    enrolment_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id        text NOT NULL REFERENCES patients,
    programme_id      text NOT NULL REFERENCES programmes,
    hospital_id       text NOT NULL REFERENCES hospitals,
    department        text NOT NULL DEFAULT '',
    status            text NOT NULL CHECK (status IN ('active', 'withdrawn', 'closed')),
    enrolled_at       timestamptz NOT NULL,
    ends_at           timestamptz NOT NULL,
    pathway_id        text NOT NULL,
    pathway_version   integer NOT NULL,
    source            text NOT NULL CHECK (source IN ('staff', 'discharge_list')),
    enrolled_by       text NOT NULL REFERENCES users,
    discharged_on     date,
    paid_cents        integer NOT NULL DEFAULT 0,
    withdrawn_at      timestamptz,
    withdrawal_reason text,
    refunded          boolean NOT NULL DEFAULT false,
    refund_cents      integer,
    closed_at         timestamptz,
    closure_summary   jsonb,
    summary_reviewed_by text REFERENCES users,
    summary_sent_at   timestamptz,
    FOREIGN KEY (pathway_id, pathway_version) REFERENCES pathway_templates
);
CREATE UNIQUE INDEX enrolments_one_active ON enrolments (patient_id, programme_id)
    WHERE status = 'active';
CREATE INDEX enrolments_hospital_period ON enrolments (hospital_id, enrolled_at, ends_at);
CREATE INDEX enrolments_patient ON enrolments (patient_id);

-- PIPL art. 29-30: separate consent, the exact notice version, scope, who and when.
CREATE TABLE consents (
    consent_id     bigserial PRIMARY KEY,
    enrolment_id   uuid NOT NULL REFERENCES enrolments,
    patient_id     text NOT NULL REFERENCES patients,
    notice_version text NOT NULL,
    scope          text[] NOT NULL,
    channel        text NOT NULL CHECK (channel IN ('paper', 'app', 'verbal_recorded')),
    collected_by   text NOT NULL REFERENCES users,
    collected_at   timestamptz NOT NULL,
    evidence_sha256 text
);
CREATE INDEX consents_patient ON consents (patient_id, collected_at DESC);
CREATE TRIGGER consents_append_only BEFORE UPDATE OR DELETE ON consents
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- The schedule a pathway became for one enrolment. When a task falls due it opens an
-- alert of kind 'pathway' (alert_id) so it is worked in the same queue as clinical alerts.
CREATE TABLE programme_tasks (
    task_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    enrolment_id uuid NOT NULL REFERENCES enrolments,
    patient_id   text NOT NULL REFERENCES patients,
    phase        text NOT NULL,
    action_key   text NOT NULL,
    action       text NOT NULL CHECK (action IN ('follow_up_call', 'questionnaire', 'education',
                     'measurement_plan', 'revisit_reminder', 'lifestyle_check_in',
                     'no_show_follow_up')),
    title        text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}',
    due_at       timestamptz NOT NULL,
    grace_days   integer NOT NULL DEFAULT 0,
    status       text NOT NULL DEFAULT 'scheduled'
                     CHECK (status IN ('scheduled', 'open', 'done', 'missed', 'cancelled')),
    alert_id     uuid REFERENCES alerts,
    completed_at timestamptz,
    completed_by text,
    outcome      text,
    UNIQUE (enrolment_id, action_key)
);
CREATE INDEX programme_tasks_due ON programme_tasks (status, due_at);
CREATE INDEX programme_tasks_patient ON programme_tasks (patient_id, due_at);

CREATE TABLE questionnaire_responses (
    response_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id       text NOT NULL REFERENCES patients,
    enrolment_id     uuid REFERENCES enrolments,
    task_id          uuid REFERENCES programme_tasks,
    questionnaire_id text NOT NULL,
    version          integer NOT NULL,
    answers          jsonb NOT NULL,
    score            double precision NOT NULL,
    risk_level       text NOT NULL,
    channel          text NOT NULL CHECK (channel IN ('app', 'call')),
    entered_by       text NOT NULL,
    answered_at      timestamptz NOT NULL
);
CREATE INDEX questionnaire_responses_patient ON questionnaire_responses (patient_id, answered_at);

-- A revisit (复诊) as recorded by staff now, by a HIS feed later.
CREATE TABLE revisits (
    revisit_id   bigserial PRIMARY KEY,
    enrolment_id uuid NOT NULL REFERENCES enrolments,
    patient_id   text NOT NULL REFERENCES patients,
    task_id      uuid REFERENCES programme_tasks,
    visited_on   date NOT NULL,
    source       text NOT NULL CHECK (source IN ('manual', 'his')),
    recorded_by  text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    note         text NOT NULL DEFAULT ''
);
CREATE INDEX revisits_enrolment ON revisits (enrolment_id, visited_on);

-- A template goes out to a hospital's patients only once that hospital approved it.
CREATE TABLE hospital_template_approvals (
    hospital_id text NOT NULL REFERENCES hospitals,
    template_id text NOT NULL REFERENCES notification_templates,
    approved_by text NOT NULL REFERENCES users,
    approved_at timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    PRIMARY KEY (hospital_id, template_id)
);

-- Bonus points of the monthly score: praise letters and major abnormalities handled in time.
CREATE TABLE qc_recognitions (
    recognition_id bigserial PRIMARY KEY,
    hospital_id    text NOT NULL REFERENCES hospitals,
    department     text NOT NULL DEFAULT '',
    patient_id     text NOT NULL REFERENCES patients,
    kind           text NOT NULL CHECK (kind IN ('praise', 'major_abnormality')),
    occurred_on    date NOT NULL,
    note           text NOT NULL DEFAULT '',
    recorded_by    text NOT NULL REFERENCES users,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX qc_recognitions_month ON qc_recognitions (hospital_id, occurred_on);

-- The pathway-compliance sample: population and seed kept so an auditor can redraw it.
CREATE TABLE qc_samples (
    sample_id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    hospital_id text NOT NULL REFERENCES hospitals,
    month       date NOT NULL CHECK (extract(day FROM month) = 1),
    seed        bigint NOT NULL,
    fraction    double precision NOT NULL,
    population  uuid[] NOT NULL,
    sampled     uuid[] NOT NULL,
    drawn_by    text NOT NULL,
    drawn_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (hospital_id, month)
);

-- A supervisor's verdict on one sampled case.
CREATE TABLE qc_reviews (
    sample_id    uuid NOT NULL REFERENCES qc_samples,
    enrolment_id uuid NOT NULL REFERENCES enrolments,
    compliant    boolean NOT NULL,
    points       double precision,
    note         text NOT NULL DEFAULT '',
    reviewed_by  text NOT NULL REFERENCES users,
    reviewed_at  timestamptz NOT NULL,
    PRIMARY KEY (sample_id, enrolment_id)
);

-- Rectification (整改) opened from a review; worked in the queue as an alert of kind
-- 'rectification'.
CREATE TABLE qc_rectifications (
    rectification_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    sample_id        uuid NOT NULL REFERENCES qc_samples,
    enrolment_id     uuid NOT NULL REFERENCES enrolments,
    alert_id         uuid NOT NULL REFERENCES alerts,
    issue            text NOT NULL,
    opened_by        text NOT NULL REFERENCES users,
    opened_at        timestamptz NOT NULL
);
