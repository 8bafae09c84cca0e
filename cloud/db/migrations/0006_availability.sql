-- A case manager who is away (leave, off shift): new alerts for their patients go to the
-- team pool (unassigned, visible to the whole team) instead of to them.
ALTER TABLE users ADD COLUMN away boolean NOT NULL DEFAULT false;
