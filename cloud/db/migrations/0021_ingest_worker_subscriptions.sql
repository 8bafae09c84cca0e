-- A worker connected to the broker receives nothing if the broker refuses its
-- subscriptions (an ACL that does not let its account read the edges' topics). The
-- heartbeat says whether they were granted, and why not; /health counts a worker up only
-- when they were (cloud/ingest/worker.py).
ALTER TABLE ingest_workers
    ADD COLUMN subscribed boolean NOT NULL DEFAULT false,
    ADD COLUMN broker_problem text;
