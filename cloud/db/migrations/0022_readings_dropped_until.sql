-- How far retention has taken raw readings (the end of the newest chunk it dropped), so
-- `python -m cloud rollups` checks and rebuilds only days whose readings are all still
-- stored: a rollup is the only record left of a day whose chunk was dropped.
CREATE TABLE readings_dropped_until (
    only_row  boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    until     timestamptz NOT NULL
);
-- A database that stored readings before this record was kept may have had chunks dropped
-- already: vouch for nothing older than its oldest chunk.
INSERT INTO readings_dropped_until (until)
SELECT min(range_start) FROM timescaledb_information.chunks
WHERE hypertable_schema = current_schema() AND hypertable_name = 'readings'
HAVING min(range_start) IS NOT NULL;
