-- Dead letters can be published to ingest again once the cause of their refusal is fixed
-- (`python -m cloud replay-dead-letters`). A letter is never deleted: it records when it
-- was last replayed and how often. Replays choose letters by code, hence its index.
ALTER TABLE dead_letters
    ADD COLUMN replayed_at timestamptz,
    ADD COLUMN replays integer NOT NULL DEFAULT 0;
CREATE INDEX dead_letters_code ON dead_letters (code, dead_letter_id);
