-- Ingest upserts a row of readings_daily and of patient_latest for (almost) every reading,
-- as much work as storing the reading itself; make those writes cheaper.
--
-- patient_latest_time served no query: "patients with no reading in N days" groups the
-- whole table by patient anyway, and the other readers go by the primary key. Without it,
-- an update of a patient's latest value touches no index at all.
DROP INDEX IF EXISTS patient_latest_time;

-- Room on each page for the next versions of its rows, so updates of a day's rollup or a
-- latest value stay on the page (heap-only tuples) instead of adding index entries.
ALTER TABLE readings_daily SET (fillfactor = 80);
ALTER TABLE patient_latest SET (fillfactor = 80);
