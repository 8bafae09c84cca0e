-- Centre readings that arrived with no patient session (patient_id NULL) wait here for
-- staff; both indexes are partial, so they stay as small as the unassigned backlog and
-- cost ingest nothing for the readings that arrive with their patient.
CREATE INDEX readings_unassigned_received ON readings (received_at DESC)
    WHERE patient_id IS NULL;
CREATE INDEX readings_unassigned_measurement ON readings (measurement_id)
    WHERE patient_id IS NULL;

-- One row per assigned measurement: who it went to, by whom, by which path. A second
-- assignment to another patient is refused (409), the same one again is answered the same.
CREATE TABLE measurement_assignments (
    measurement_id uuid PRIMARY KEY,
    patient_id     text        NOT NULL,
    reading_ids    uuid[]      NOT NULL,
    via            text        NOT NULL CHECK (via IN ('api', 'edge')),
    assigned_by    text,
    staff_id       text,
    edge_id        text,
    assignment_id  uuid,
    note           text,
    assigned_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX measurement_assignments_patient ON measurement_assignments (patient_id);
