-- An edge that gets no answer to a message (unknown or disabled edge, a version or
-- envelope this cloud cannot read) sends it again every ack timeout. Such letters carry a
-- key of edge, topic, code and hour; a repeat within the hour counts on the first letter
-- instead of adding a copy (cloud/db/ingest_store.py). Nothing is lost by it: the edge
-- still holds every message it was not answered for.
ALTER TABLE dead_letters
    ADD COLUMN repeat_key text,
    ADD COLUMN repeats integer NOT NULL DEFAULT 0,
    ADD COLUMN last_repeat_at timestamptz;
CREATE UNIQUE INDEX dead_letters_repeat_key ON dead_letters (repeat_key)
    WHERE repeat_key IS NOT NULL;
