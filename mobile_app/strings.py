"""Every text the patient sees, zh-CN first with the English fallback beside it.

Plain words for older readers: short sentences, no abbreviations, no clinical jargon.
Placeholders use `str.format` names.
"""

from __future__ import annotations

from typing import Final

LANGUAGES: Final = ("zh_CN", "en")

STRINGS: Final[dict[str, tuple[str, str]]] = {
    # navigation
    "app_title": ("康护随行", "CareBridge"),
    "nav_today": ("首页", "Today"),
    "nav_measure": ("测量", "Measure"),
    "nav_history": ("记录", "History"),
    "nav_messages": ("消息", "Messages"),
    "nav_settings": ("设置", "Settings"),
    "back": ("返回", "Back"),
    # first run
    "bind_title": ("绑定您的个案管理师", "Connect to your case manager"),
    "bind_hint": (
        "请输入个案管理师给您的绑定码（例如 ABCD-2345），或扫描二维码。",
        "Enter the code your case manager gave you (e.g. ABCD-2345), or scan the QR code.",
    ),
    "bind_code": ("绑定码", "Code"),
    "bind_submit": ("绑定", "Connect"),
    "bind_busy": ("正在绑定，请稍候……", "Connecting, please wait…"),
    "bind_done": ("绑定成功", "Connected"),
    "bind_error_format": (
        "绑定码应为 8 位字母或数字，例如 ABCD-2345。",
        "The code has 8 letters or digits, e.g. ABCD-2345.",
    ),
    "bind_error_used": (
        "这个绑定码已用过或已过期，请向个案管理师要一个新的。",
        "This code was used or has expired. Ask your case manager for a new one.",
    ),
    "bind_error_unknown": (
        "没有找到这个绑定码，请检查后再试。",
        "This code was not found. Please check it and try again.",
    ),
    "bind_error_network": (
        "现在连不上网络，请稍后再试。",
        "No network right now. Please try again later.",
    ),
    "members_title": ("就诊人", "Family members"),
    "members_hint": (
        "家人也用这台手机测量时，请用他们的绑定码添加。",
        "If family members measure with this phone, add them with their own code.",
    ),
    "member_self": ("本人", "Me"),
    "member_add": ("添加就诊人", "Add a family member"),
    "member_name": ("称呼（如：老伴）", "Name (e.g. my wife)"),
    "who_measures": ("现在谁测量？", "Who is measuring now?"),
    "measuring_for": ("当前就诊人：{name}", "Measuring for: {name}"),
    "start_using": ("开始使用", "Start"),
    # today
    "today_title": ("今天", "Today"),
    "hello": ("您好！", "Hello!"),
    "greeting": ("{name}，您好", "Hello, {name}"),
    "plan_title": ("今日测量", "Today's measurements"),
    "plan_done": ("已完成", "Done"),
    "plan_todo": ("待测量", "To do"),
    "plan_missed": ("未测量", "Missed"),
    "plan_none": ("个案管理师还没有安排测量计划。", "Your case manager has not set a plan yet."),
    "reminders_title": ("提醒", "Reminders"),
    "revisit": ("复诊：{text}", "Revisit: {text}"),
    "revisit_due": ("复诊：{month}月{day}日 {text}", "Revisit: {day}/{month} {text}"),
    "medication_at": ("{time} 服药：{name}", "{time} medicine: {name}"),
    "unread": ("{count} 条未读消息", "{count} unread messages"),
    "no_unread": ("没有未读消息", "No unread messages"),
    "morning": ("早上", "Morning"),
    "evening": ("晚上", "Evening"),
    # metrics
    "metric_bp": ("血压", "Blood pressure"),
    "metric_glucose": ("血糖", "Blood glucose"),
    "metric_fasting_glucose": ("空腹血糖", "Fasting glucose"),
    "metric_spo2": ("血氧", "Blood oxygen"),
    "metric_weight": ("体重", "Weight"),
    "metric_pulse": ("脉搏", "Pulse"),
    "unit_mmhg": ("毫米汞柱", "mmHg"),
    "unit_mmol": ("毫摩尔/升", "mmol/L"),
    "pulse_value": ("脉搏 {value} 次/分", "Pulse {value} /min"),
    # measure
    "measure_title": ("测量", "Measure"),
    "scan": ("查找身边的设备", "Find nearby devices"),
    "scanning": ("正在查找设备，请打开血压计或血糖仪……", "Looking for devices, switch yours on…"),
    "no_devices": (
        "没有找到设备。请打开设备，靠近手机，再点“查找”。",
        "No device found. Switch it on, hold it near the phone and tap Find again.",
    ),
    "choose_device": ("请选择要使用的设备：", "Choose your device:"),
    "connecting": ("正在连接设备……", "Connecting to the device…"),
    "press_start": (
        "请坐好，放松，按下血压计上的开始键。",
        "Sit down, relax, and press Start on the cuff.",
    ),
    "reading_meter": ("正在读取血糖仪的结果……", "Reading the meter's results…"),
    "keep_still": ("正在测量，请不要说话，保持不动。", "Measuring. Please keep still and quiet."),
    "cuff_pressure": ("袖带压力 {value} 毫米汞柱", "Cuff pressure {value} mmHg"),
    "meal_question": ("这次血糖是什么时候测的？", "When did you take this glucose reading?"),
    "meal_fasting": ("空腹（早饭前）", "Fasting (before breakfast)"),
    "meal_before": ("饭前", "Before a meal"),
    "meal_after": ("饭后 2 小时", "2 hours after a meal"),
    "meal_bedtime": ("睡前", "At bedtime"),
    "meal_random": ("其他时间", "Other time"),
    "measure_again": ("再测一次", "Measure again"),
    "done": ("完成", "Done"),
    "measure_failed": (
        "这次没有测好，请重新测量。（{reason}）",
        "That did not work, please try again. ({reason})",
    ),
    "no_result": (
        "设备没有发来新的结果，请重新测量。",
        "The device sent no new result. Please measure again.",
    ),
    "storage_full": (
        "手机存储已满，结果还保存在设备里。请联网上传后再测。",
        "The phone's storage is full; the result stays on the device. Go online, then retry.",
    ),
    "bluetooth_needed": (
        "需要允许“附近的设备”权限才能连接血压计。",
        "Allow 'Nearby devices' so the app can reach your cuff.",
    ),
    # result tiers (words and symbols always go with the colour)
    "tier_in_target": ("✓ 正常，在目标范围内", "✓ Within your target"),
    "tier_high": ("! 偏高", "! High"),
    "tier_low": ("! 偏低", "! Low"),
    "tier_see_doctor": ("!! 需要尽快就医", "!! See a doctor soon"),
    "advice_keep_going": ("请继续按计划测量。", "Keep measuring as planned."),
    "advice_rest_remeasure": (
        "请坐下休息 5 分钟，然后再测一次。",
        "Sit and rest for 5 minutes, then measure again.",
    ),
    "advice_sugar": (
        "请马上吃 15 克糖（如半杯果汁），15 分钟后再测。",
        "Eat 15 g of sugar now (e.g. half a glass of juice) and measure again in 15 minutes.",
    ),
    "advice_ketones": (
        "请多喝水；如果恶心、呕吐或很困，请马上就医。",
        "Drink water; if you feel sick, vomit or are very drowsy, see a doctor now.",
    ),
    "advice_talk_at_revisit": (
        "复诊时请告诉医生。",
        "Mention it at your next visit.",
    ),
    "advice_emergency": (
        "如果胸痛、头痛厉害、看不清或手脚无力，请立即拨打 120。",
        "If you have chest pain, a bad headache, blurred vision or weakness, call 120 now.",
    ),
    "advice_cm_told": ("您的个案管理师已收到通知，会联系您。", "Your case manager has been told."),
    "advice_cm_will_be_told": (
        "联网后会自动通知您的个案管理师。",
        "Your case manager will be told as soon as the phone is online.",
    ),
    # sync
    "sync_waiting": ("○ 等待上传", "○ Waiting to upload"),
    "sync_uploaded": ("✓ 已上传", "✓ Uploaded"),
    "sync_rejected": ("⚠ 未被接收，请联系个案管理师", "⚠ Not accepted, contact your case manager"),
    # history
    "history_title": ("测量记录", "History"),
    "days": ("{days} 天", "{days} days"),
    "target_band": ("浅绿色区域是您的目标范围", "The light green band is your target"),
    "history_empty": ("还没有记录。", "Nothing recorded yet."),
    "all_saved": (
        "所有记录都保存在手机上，联网后会自动上传。",
        "Every reading is kept on the phone and uploads when online.",
    ),
    # messages
    "messages_title": ("消息和任务", "Messages and tasks"),
    "messages_empty": ("暂时没有消息。", "No messages yet."),
    "questionnaire": ("随访问卷", "Follow-up questionnaire"),
    "answers_to_do": ("待填写", "To answer"),
    "answers_submit": ("提交", "Submit"),
    "answers_pending": ("○ 已保存，等待上传", "○ Saved, waiting to upload"),
    "answers_stored": ("✓ 已提交给个案管理师", "✓ Sent to your case manager"),
    "answers_missing": ("还有问题没有回答。", "Some questions still need an answer."),
    "answers_number": ("请填写一个数字。", "Please enter a number."),
    "medication_title": ("服药提醒", "Medication reminders"),
    "medication_name": ("药名", "Medicine"),
    "medication_time": ("时间（如 08:00）", "Time (e.g. 08:00)"),
    "medication_add": ("添加提醒", "Add reminder"),
    "remove": ("删除", "Remove"),
    "medication_bad_time": ("时间请写成 08:00 这样。", "Write the time like 08:00."),
    "medication_due": ("该吃药了：{name}", "Time for your medicine: {name}"),
    # settings
    "settings_title": ("设置", "Settings"),
    "font_size": ("字体大小", "Text size"),
    "font_normal": ("标准", "Normal"),
    "font_large": ("大", "Large"),
    "font_huge": ("特大", "Extra large"),
    "language": ("语言", "Language"),
    "language_zh": ("中文", "中文"),
    "language_en": ("English", "English"),
    "devices": ("我的设备", "My devices"),
    "devices_none": ("还没有配对的设备。", "No paired devices yet."),
    "sign_out": ("退出登录", "Sign out"),
    "sign_out_waiting": (
        "还有 {count} 条记录没有上传，请联网后再退出。",
        "{count} readings have not uploaded yet; go online before signing out.",
    ),
}


def text(key: str, language: str = "zh_CN", **values: object) -> str:
    """The text for `key` in `language` (zh-CN when unknown), placeholders filled."""
    zh, en = STRINGS[key]
    chosen = en if language == "en" else zh
    return chosen.format(**values) if values else chosen
