-- "Latest reading per metric for a panel of 10,000 patients" spent most of its time in the
-- server turning 20,000 rows into JSON (text escaping, timestamp and uuid output), once
-- per request. Each latest value now keeps its JSON object, written when the value
-- changes, so a panel only concatenates (measured: docs/architecture.md, decision 30).
--
-- One definition of that object, used by ingest, by assignment and by this backfill.
-- `measured_at` is written in UTC whatever the session's TimeZone, in the ISO 8601 form
-- PostgreSQL's own JSON output gives (microseconds only when there are any). SQL and
-- STABLE, so the planner inlines it: called as a function per row it cost twice as much.
CREATE FUNCTION patient_latest_item(
    patient_id text, metric text, measured_at timestamptz, value double precision,
    reading_id uuid, source text
) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT '{"patient_id":' || to_json(patient_id)::text
        || ',"metric":' || to_json(metric)::text
        || ',"measured_at":' || left(to_json(measured_at AT TIME ZONE 'UTC')::text, -1)
        || '+00:00","value":' || to_json(value)::text
        || ',"reading_id":"' || reading_id::text
        || '","source":' || to_json(source)::text || '}'
$$;

ALTER TABLE patient_latest ADD COLUMN item_json text;
UPDATE patient_latest
    SET item_json = patient_latest_item(patient_id, metric, time, value, reading_id, source);
ALTER TABLE patient_latest ALTER COLUMN item_json SET NOT NULL;
