-- Messages to patients: only hospital-approved templates, each send kept as a record.
CREATE TABLE notification_templates (
    template_id  text PRIMARY KEY,
    title        text NOT NULL,
    body         text NOT NULL,
    severity     text NOT NULL CHECK (severity IN ('info', 'advice', 'urgent')),
    approved_by  text,
    approved_at  timestamptz,
    active       boolean NOT NULL DEFAULT true
);

-- Defaults for the demo and first install; a hospital reviews and re-approves them.
INSERT INTO notification_templates (template_id, title, body, severity, approved_by, approved_at)
VALUES
    ('bp_remeasure', '请复测血压',
     '您刚才的血压偏高。请坐下安静休息5分钟，再测量一次。如有胸痛、气短、剧烈头痛或视物模糊，请立即拨打120。',
     'urgent', 'default-clinical-rules', now()),
    ('hypo_treat', '低血糖处理',
     '您的血糖偏低。请立即吃15克糖（如半杯果汁或3-4块方糖），15分钟后再测一次血糖。',
     'urgent', 'default-clinical-rules', now()),
    ('case_manager_informed', '个案管理师已知悉',
     '您的个案管理师已收到这次测量结果，会尽快与您联系。',
     'info', 'default-clinical-rules', now());

ALTER TABLE contact_records ADD COLUMN notification_id uuid;
ALTER TABLE contact_records ADD COLUMN template_id text REFERENCES notification_templates;
