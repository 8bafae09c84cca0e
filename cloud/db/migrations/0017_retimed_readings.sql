-- A reading's id names one device record, but its time is the edge's best estimate: when an
-- edge corrects a skewed device clock (`clock_corrected`) or cannot trust it
-- (`clock_unset`, receive time), another edge downloading the same record arrives at
-- another time. The hypertable's unique index has to include `time`, so it cannot tell
-- those copies apart; this table can. It holds the id of every stored reading whose time
-- came from an edge's estimate, so a later copy with any other time is known by its id
-- alone (docs/storage.md, "Exactly once"). Such readings are few (devices with a wrong
-- clock), so the table stays small beside the hypertable.
CREATE TABLE retimed_readings (
    reading_id uuid        PRIMARY KEY,
    time       timestamptz NOT NULL
);

-- Pruned with the raw readings by the retention job.
CREATE INDEX retimed_readings_time_idx ON retimed_readings (time);

INSERT INTO retimed_readings (reading_id, time)
SELECT DISTINCT ON (reading_id) reading_id, time
FROM readings
WHERE flags && ARRAY['clock_corrected', 'clock_unset']
ORDER BY reading_id, time;
