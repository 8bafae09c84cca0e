-- Indexes behind the web UI's lists and dashboard: a doctor's patients, and alerts by the
-- time they opened (the dashboard's 30-day and 12-week figures), across teams or per team.
-- The included columns let those figures come from the index alone.
CREATE INDEX patients_doctor ON patients (doctor_id);
CREATE INDEX alerts_opened ON alerts (opened_at) INCLUDE (tier, acknowledged_at, team_id);
CREATE INDEX alerts_team_opened ON alerts (team_id, opened_at) INCLUDE (tier, acknowledged_at);
