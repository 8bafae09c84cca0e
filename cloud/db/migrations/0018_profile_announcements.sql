-- Ingest workers keep the profiles they judge readings by (cohorts, a doctor's targets,
-- the programme's rule set) between flushes; these triggers tell them when one changes.
-- The payload is the patient's id, or '*' when a rule set changed (any patient may use
-- it). Announcements are delivered at commit, so a worker never hears of a change that
-- was rolled back (cloud/ingest/profile_cache.py).
-- (OLD is NULL in an INSERT trigger and NEW in a DELETE one, so both can be named.)
CREATE FUNCTION announce_patient_profile() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('patient_profiles', coalesce(NEW.patient_id, OLD.patient_id));
    RETURN NULL;
END $$;

-- An insert too: a worker remembers that a patient id it was sent is unknown.
CREATE TRIGGER patients_profile AFTER INSERT OR DELETE OR UPDATE OF cohorts, rule_set
    ON patients FOR EACH ROW EXECUTE FUNCTION announce_patient_profile();
CREATE TRIGGER patient_targets_profile AFTER INSERT OR UPDATE OR DELETE
    ON patient_targets FOR EACH ROW EXECUTE FUNCTION announce_patient_profile();

CREATE FUNCTION announce_every_profile() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('patient_profiles', '*');
    RETURN NULL;
END $$;

CREATE TRIGGER rule_sets_profile AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON rule_sets FOR EACH STATEMENT EXECUTE FUNCTION announce_every_profile();

-- Statement triggers see no rows; an emptied table may have held anyone's profile.
CREATE TRIGGER patients_profile_truncate AFTER TRUNCATE
    ON patients FOR EACH STATEMENT EXECUTE FUNCTION announce_every_profile();
CREATE TRIGGER patient_targets_profile_truncate AFTER TRUNCATE
    ON patient_targets FOR EACH STATEMENT EXECUTE FUNCTION announce_every_profile();
