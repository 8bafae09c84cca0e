-- The configuration last published (retained) to each edge, and what makes it stale.
-- `stale` is set by triggers on the tables an edge's configuration is built from, so the
-- periodic sweep reads one small table instead of rebuilding every edge; `refresh_at` is
-- when time alone changes the content (a plan starts or ends, a revisit window closes).
CREATE TABLE edge_configs (
    edge_id      text PRIMARY KEY REFERENCES edges,
    -- NULL until the first publish succeeds (the row exists from the first attempt, so
    -- the triggers below can mark it stale while that attempt is under way).
    issued_at    timestamptz,
    content_hash text,
    published_at timestamptz,
    refresh_at   timestamptz,
    stale        boolean NOT NULL DEFAULT false
);
CREATE INDEX edge_configs_due ON edge_configs (refresh_at) WHERE refresh_at IS NOT NULL;
CREATE INDEX edge_configs_stale ON edge_configs (edge_id) WHERE stale;
CREATE INDEX edges_patient ON edges (patient_id) WHERE patient_id IS NOT NULL;

-- A home edge's configuration follows its patient's plans, enrolments, revisit tasks and
-- revisits, and device bindings.
-- (OLD is NULL in an INSERT trigger and NEW in a DELETE one, so both can be named.)
CREATE FUNCTION edge_configs_patient_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE edge_configs SET stale = true
    WHERE NOT stale AND edge_id IN (
        SELECT edge_id FROM edges WHERE patient_id IN (NEW.patient_id, OLD.patient_id));
    RETURN NULL;
END $$;

CREATE TRIGGER measurement_plans_edge_config AFTER INSERT OR UPDATE OR DELETE
    ON measurement_plans FOR EACH ROW EXECUTE FUNCTION edge_configs_patient_changed();
CREATE TRIGGER enrolments_edge_config AFTER INSERT OR UPDATE OF status, pathway_version
    ON enrolments FOR EACH ROW EXECUTE FUNCTION edge_configs_patient_changed();
CREATE TRIGGER revisits_edge_config AFTER INSERT OR DELETE
    ON revisits FOR EACH ROW EXECUTE FUNCTION edge_configs_patient_changed();
CREATE TRIGGER device_bindings_edge_config AFTER INSERT OR UPDATE OR DELETE
    ON device_bindings FOR EACH ROW EXECUTE FUNCTION edge_configs_patient_changed();
-- Only revisit tasks are in a configuration; the sweep updates other tasks all day.
CREATE TRIGGER programme_tasks_edge_config AFTER INSERT OR UPDATE OF status, due_at
    ON programme_tasks FOR EACH ROW WHEN (NEW.action = 'revisit_reminder')
    EXECUTE FUNCTION edge_configs_patient_changed();

-- A centre edge's configuration: devices registered to it, the patients of its teams.
CREATE FUNCTION edge_configs_centre_devices_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE edge_configs SET stale = true
    WHERE NOT stale AND edge_id IN (NEW.owner_id, OLD.owner_id);
    RETURN NULL;
END $$;
CREATE TRIGGER devices_edge_config AFTER INSERT OR UPDATE OR DELETE ON devices
    FOR EACH ROW EXECUTE FUNCTION edge_configs_centre_devices_changed();

-- The teams of a centre are those of the staff member who issued its enrolment code.
CREATE FUNCTION edge_configs_team_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE edge_configs SET stale = true
    WHERE NOT stale AND edge_id IN (
        SELECT c.edge_id FROM enrolment_codes c
        JOIN team_members m ON m.user_id = c.issued_by
        WHERE c.mode = 'centre' AND c.edge_id IS NOT NULL
          AND m.team_id IN (NEW.team_id, OLD.team_id));
    RETURN NULL;
END $$;
CREATE TRIGGER patients_edge_config AFTER INSERT OR UPDATE OF team_id, name
    ON patients FOR EACH ROW EXECUTE FUNCTION edge_configs_team_changed();
CREATE TRIGGER team_members_edge_config AFTER INSERT OR DELETE
    ON team_members FOR EACH ROW EXECUTE FUNCTION edge_configs_team_changed();
