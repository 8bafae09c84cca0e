-- Pathway message content (education pushes, revisit reminders, closure summaries), kept
-- like every other template: approved once centrally, then per hospital before it goes out;
-- and the log of discharge-list imports with the rows that were refused.
INSERT INTO notification_templates (template_id, title, body, severity, approved_by, approved_at)
VALUES
    ('edu_htn_home_bp', '如何正确测量家庭血压',
     '测量前静坐5分钟，背靠椅背，袖带与心脏同高；每次连续测2遍，间隔1分钟，取平均值。每天早晨服药前、晚上睡前各测一次。',
     'info', 'default-programme-content', now()),
    ('edu_htn_lifestyle', '高血压的饮食与运动',
     '每天食盐不超过5克，少吃腌制食品；每周至少5天、每次30分钟快走等中等强度运动；戒烟限酒，控制体重。',
     'info', 'default-programme-content', now()),
    ('edu_dm_hypo', '低血糖的识别与处理',
     '心慌、出汗、手抖、饥饿感可能是低血糖。血糖低于3.9时立即吃15克糖（半杯果汁或3-4块方糖），15分钟后复测；仍低请再吃一次并联系我们。',
     'advice', 'default-programme-content', now()),
    ('edu_dm_diet_foot', '糖尿病饮食与足部护理',
     '主食定时定量，少吃甜食和含糖饮料；每天检查双脚有无破溃、红肿，洗脚水温不超过37度，鞋袜宽松。',
     'info', 'default-programme-content', now()),
    ('edu_hf_weight_fluid', '每日称重与限水限盐',
     '每天早晨排尿后、早餐前称体重并记录；3天内增加超过2公斤请立即联系我们。按医嘱控制饮水量，每天食盐不超过5克。',
     'advice', 'default-programme-content', now()),
    ('edu_hf_warning', '心衰加重的信号',
     '出现静息时气短、夜间憋醒、不能平卧、下肢水肿加重或体重快速增加，请立即联系我们；症状严重请拨打120。',
     'advice', 'default-programme-content', now()),
    ('revisit_reminder', '复诊提醒',
     '您的复诊时间快到了，请按医生的安排按时到院复诊，并带上近期的测量记录。',
     'info', 'default-programme-content', now()),
    ('closure_summary', '管理结案小结',
     '您的本期诊后管理服务已结束，个案管理师已为您整理了结案小结，请在“我的服务”中查看。感谢您的配合。',
     'info', 'default-programme-content', now());

CREATE TABLE discharge_imports (
    import_id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    hospital_id text NOT NULL REFERENCES hospitals,
    imported_by text NOT NULL REFERENCES users,
    imported_at timestamptz NOT NULL,
    filename    text NOT NULL DEFAULT '',
    accepted    integer NOT NULL,
    rejected    jsonb NOT NULL,
    raw         text NOT NULL
);

-- A course that ran its length puts a closure (结案) task in the case manager's queue.
ALTER TABLE programme_tasks DROP CONSTRAINT programme_tasks_action_check;
ALTER TABLE programme_tasks ADD CONSTRAINT programme_tasks_action_check
    CHECK (action IN ('follow_up_call', 'questionnaire', 'education', 'measurement_plan',
                      'revisit_reminder', 'lifestyle_check_in', 'no_show_follow_up', 'closure'));
