"""首页: today's measurement plan and what is done, reminders, unread messages."""

from __future__ import annotations

from datetime import datetime

from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty

from mobile_app.phone import Phone
from mobile_app.plan import SlotState, plan_times, today_slots
from mobile_app.viewmodels.display import DISPLAY
from protocols.metrics import Metric

METRIC_TITLES = {
    Metric.SYSTOLIC: "metric_bp",
    Metric.GLUCOSE: "metric_glucose",
    Metric.SPO2: "metric_spo2",
    Metric.WEIGHT: "metric_weight",
}
_STATE_KEYS = {
    SlotState.DONE: "plan_done",
    SlotState.TODO: "plan_todo",
    SlotState.MISSED: "plan_missed",
}
_REVISIT_TEMPLATES = ("revisit", "followup", "appointment")


class TodayViewModel(EventDispatcher):
    greeting = StringProperty("")
    measuring_for = StringProperty("")
    slots = ListProperty()
    """[{"text", "state", "done"}], in time order."""
    reminders = ListProperty()
    """Texts: revisit notices from the case manager and the patient's medication times."""
    unread = NumericProperty(0)
    unread_text = StringProperty("")
    online = BooleanProperty(False)

    def __init__(self, phone: Phone, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.phone = phone

    def refresh(self, now: datetime | None = None) -> None:
        profile = self.phone.profile
        if profile is None:
            return
        now = now or datetime.now().astimezone()
        member = profile.current_member
        is_owner = member.patient_id == profile.owner.patient_id
        name = DISPLAY.t("member_self") if is_owner else member.name
        self.greeting = DISPLAY.t("hello") if is_owner else DISPLAY.t("greeting", name=name)
        self.measuring_for = DISPLAY.t("measuring_for", name=name)
        config = self.phone.edge.config if self.phone.edge else None
        times = plan_times(config.measurement_plan if config else [], member.patient_id)
        measured = [
            (Metric(metric), stored.measured_at.astimezone(now.tzinfo))
            for stored in self.phone.store.measurements(member.patient_id)
            for metric in stored.values
        ]
        self.slots = [
            {
                "text": f"{slot.at.strftime('%H:%M')}  "
                f"{DISPLAY.t(METRIC_TITLES.get(slot.metric, 'metric_bp'))}  "
                f"{DISPLAY.t(_STATE_KEYS[slot.state])}",
                "state": slot.state.value,
                "done": slot.state is SlotState.DONE,
            }
            for slot in today_slots(times, measured, now)
        ]
        inbox = self.phone.inbox
        # The pathway's next revisit (from the cloud's configuration) comes first; a case
        # manager's revisit notice stands in when the configuration has none.
        scheduled = sorted(
            (r for r in (config.revisits if config else []) if r.patient_id == member.patient_id),
            key=lambda r: r.due_on,
        )
        revisits = [
            DISPLAY.t("revisit_due", month=r.due_on.month, day=r.due_on.day, text=r.title)
            for r in scheduled
        ][:1] or [
            DISPLAY.t("revisit", text=item.note.title)
            for item in inbox
            if item.note.template_id.startswith(_REVISIT_TEMPLATES)
        ][:1]
        medication = [
            DISPLAY.t("medication_at", time=r.at.strftime("%H:%M"), name=r.name)
            for r in sorted(profile.reminders, key=lambda r: r.at)
        ]
        self.reminders = revisits + medication
        self.unread = sum(item.unread for item in inbox)
        self.unread_text = (
            DISPLAY.t("unread", count=self.unread) if self.unread else DISPLAY.t("no_unread")
        )
        self.online = self.phone.edge.online if self.phone.edge else False
