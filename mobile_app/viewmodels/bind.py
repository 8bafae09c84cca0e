"""First run: bind the phone with the case manager's code, add family members, pick who
measures."""

from __future__ import annotations

from collections.abc import Awaitable

from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, ListProperty, StringProperty

from mobile_app.binding import BindingError
from mobile_app.phone import Phone
from mobile_app.viewmodels.display import DISPLAY


class BindViewModel(EventDispatcher):
    code = StringProperty("")
    member_code = StringProperty("")
    member_name = StringProperty("")
    busy = BooleanProperty(False)
    error = StringProperty("")
    bound = BooleanProperty(False)
    members = ListProperty()
    """[{"patient_id", "name", "current"}] for the member list."""

    def __init__(self, phone: Phone, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.phone = phone
        self.refresh()

    def refresh(self) -> None:
        profile = self.phone.profile
        self.bound = profile is not None
        if profile is None:
            self.members = []
            return
        self.members = [
            {
                "patient_id": m.patient_id,
                "name": DISPLAY.t("member_self") if index == 0 else m.name,
                "current": m.patient_id == profile.current_patient_id,
            }
            for index, m in enumerate(profile.members)
        ]

    async def submit(self) -> bool:
        """Bind with the entered code; True when bound, else `error` says why."""
        return await self._attempt(self.phone.bind(self.code))

    async def add_member(self) -> bool:
        done = await self._attempt(self.phone.add_member(self.member_code, self.member_name))
        if done:
            self.member_code = self.member_name = ""
        return done

    def choose(self, patient_id: str) -> None:
        self.phone.choose_member(patient_id)
        self.refresh()

    async def _attempt(self, operation: Awaitable[object]) -> bool:
        self.busy, self.error = True, ""
        try:
            await operation
        except BindingError as exc:
            self.error = DISPLAY.t(exc.code)
            return False
        finally:
            self.busy = False
        self.refresh()
        return True
