-- The latest retained `EdgeStatus` of each edge, as the cloud last heard it. `state_since`
-- moves only when the state changes, so "offline for 3 h" survives the broker redelivering
-- the retained message on every cloud restart.
CREATE TABLE edge_status (
    edge_id             text PRIMARY KEY,
    state               text NOT NULL CHECK (state IN ('online', 'offline')),
    state_since         timestamptz NOT NULL,
    status_at           timestamptz,
    received_at         timestamptz NOT NULL,
    agent_version       text,
    outbox_pending      integer,
    outbox_oldest_age_s double precision,
    outbox_capacity     integer,
    outbox_level        text,
    devices             jsonb NOT NULL DEFAULT '[]'
);
