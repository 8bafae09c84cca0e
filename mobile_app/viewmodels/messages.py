"""Messages and tasks: the case manager's messages and approved education, follow-up
questionnaires, and the medication reminders the patient sets (local notifications)."""

from __future__ import annotations

from datetime import datetime

from kivy.event import EventDispatcher
from kivy.properties import ListProperty, StringProperty

from mobile_app import android
from mobile_app.phone import Phone
from mobile_app.reminders import MedicationReminder, due_reminders, parse_time
from mobile_app.viewmodels.display import DISPLAY

QUESTIONNAIRE_PREFIX = "questionnaire"


class MessagesViewModel(EventDispatcher):
    messages = ListProperty()
    """[{"title", "body", "kind", "unread"}], newest first."""
    reminders = ListProperty()
    medicine_name = StringProperty("")
    medicine_time = StringProperty("")
    error = StringProperty("")
    banner = StringProperty("")
    """A reminder that is due now, shown over every screen until dismissed."""

    def __init__(self, phone: Phone, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.phone = phone
        self._checked_at = datetime.now().astimezone()

    def refresh(self) -> None:
        profile = self.phone.profile
        if profile is None:
            return
        self.messages = [
            {
                "title": item.note.title,
                "body": item.note.body,
                "kind": "questionnaire"
                if item.note.template_id.startswith(QUESTIONNAIRE_PREFIX)
                else "message",
                "unread": item.unread,
            }
            for item in self.phone.inbox
        ]
        self.reminders = [
            {"index": i, "text": f"{r.at:%H:%M}  {r.name}"} for i, r in enumerate(profile.reminders)
        ]

    async def opened(self) -> None:
        """The patient looked at the list: show it, then nothing is unread any more."""
        self.refresh()
        await self.phone.mark_all_read()

    def add_reminder(self) -> bool:
        profile = self.phone.profile
        if profile is None:
            return False
        try:
            at = parse_time(self.medicine_time)
        except ValueError:
            self.error = DISPLAY.t("medication_bad_time")
            return False
        name = self.medicine_name.strip()
        if not name:
            self.error = DISPLAY.t("medication_name")
            return False
        profile.reminders.append(MedicationReminder(name, at))
        self.phone.save()
        self.medicine_name = self.medicine_time = self.error = ""
        self.refresh()
        return True

    def remove_reminder(self, index: int) -> None:
        profile = self.phone.profile
        if profile is not None and 0 <= index < len(profile.reminders):
            del profile.reminders[index]
            self.phone.save()
            self.refresh()

    def check_reminders(self, now: datetime | None = None) -> list[MedicationReminder]:
        """Raise reminders due since the last check: a system notification on Android,
        the banner everywhere."""
        profile = self.phone.profile
        now = now or datetime.now().astimezone()
        due = due_reminders(profile.reminders if profile else [], self._checked_at, now)
        self._checked_at = now
        for reminder in due:
            message = DISPLAY.t("medication_due", name=reminder.name)
            android.show_notification(DISPLAY.t("medication_title"), message)
            self.banner = message
        return due

    def dismiss_banner(self) -> None:
        self.banner = ""
