"""The Kivy app: screens from `kv/`, view-models from `viewmodels/`, one asyncio loop.

Kivy runs as `App.async_run(async_lib="asyncio")` on the loop that also runs bleak and
the embedded edge agent (`python -m mobile_app`), as bleak's own Kivy example does.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.text import LabelBase
from kivy.lang import Builder
from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.widget import Widget

from mobile_app.phone import Phone
from mobile_app.screens import (
    BindScreen,
    HistoryScreen,
    MeasureScreen,
    MembersScreen,
    MessagesScreen,
    QuestionnaireScreen,
    SettingsScreen,
    TodayScreen,
)
from mobile_app.viewmodels.bind import BindViewModel
from mobile_app.viewmodels.display import spawn
from mobile_app.viewmodels.history import HistoryViewModel
from mobile_app.viewmodels.measure import MeasureViewModel
from mobile_app.viewmodels.messages import MessagesViewModel
from mobile_app.viewmodels.questionnaire import QuestionnaireViewModel
from mobile_app.viewmodels.settings import SettingsViewModel
from mobile_app.viewmodels.today import TodayViewModel
from protocols.messages import PatientNotification

log = logging.getLogger("carebridge.app")

KV_FILES = (
    "common",
    "bind",
    "today",
    "measure",
    "history",
    "messages",
    "questionnaire",
    "settings",
    "root",
)

CJK_FONTS = (
    # Debian/Ubuntu (fonts-noto-cjk), then Android's system font.
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Medium.ttc",
    "/system/fonts/NotoSansCJK-Regular.ttc",
)
CJK_BOLD_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/system/fonts/NotoSansCJK-Regular.ttc",
)
REMINDER_CHECK_EVERY_S = 30


def use_cjk_font() -> str | None:
    """Make a Chinese-capable font Kivy's default (Roboto has no CJK glyphs)."""
    regular = next((p for p in CJK_FONTS if Path(p).exists()), None)
    if regular is None:
        log.warning("no CJK font found; Chinese text will not render")
        return None
    bold = next((p for p in CJK_BOLD_FONTS if Path(p).exists()), regular)
    LabelBase.register("Roboto", fn_regular=regular, fn_bold=bold)
    return regular


class RootView(BoxLayout):
    banner = StringProperty("")
    show_nav = BooleanProperty(True)
    current = StringProperty("bind")

    def on_kv_post(self, _base: object) -> None:
        self._place(self.ids.banner, bool(self.banner), index=len(self.children))
        self._place(self.ids.nav, self.show_nav, index=0)

    def on_banner(self, _view: object, banner: str) -> None:
        self._place(self.ids.banner, bool(banner), index=len(self.children))

    def on_show_nav(self, _view: object, show: bool) -> None:
        self._place(self.ids.nav, show, index=0)

    def _place(self, widget: Widget, shown: bool, *, index: int) -> None:
        """Hidden means out of the layout: a hidden widget left in place eats touches."""
        if shown and widget.parent is None:
            self.add_widget(widget, index=index)
        elif not shown and widget.parent is self:
            self.remove_widget(widget)


class CareBridgeApp(App):
    title = "康护随行 CareBridge"

    def __init__(self, phone: Phone, *, measure_options: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.phone = phone
        self.bind_vm = BindViewModel(phone)
        self.today = TodayViewModel(phone)
        self.measure = MeasureViewModel(phone, **(measure_options or {}))
        self.history = HistoryViewModel(phone)
        self.messages = MessagesViewModel(phone)
        self.questionnaire = QuestionnaireViewModel(phone)
        self.settings_vm = SettingsViewModel(phone)
        self.root_view: RootView | None = None
        self._since_reminder_check = 0.0
        phone.message_listeners.append(self._message_arrived)

    def build(self) -> RootView:
        use_cjk_font()
        kv = resources.files("mobile_app") / "kv"
        for name in KV_FILES:
            Builder.load_file(str(kv / f"{name}.kv"))
        root = RootView()
        screens = root.ids.screens
        for screen in (
            BindScreen(vm=self.bind_vm),
            MembersScreen(vm=self.bind_vm),
            TodayScreen(vm=self.today),
            MeasureScreen(vm=self.measure),
            HistoryScreen(vm=self.history),
            MessagesScreen(vm=self.messages, forms_vm=self.questionnaire),
            QuestionnaireScreen(vm=self.questionnaire),
            SettingsScreen(vm=self.settings_vm),
        ):
            screens.add_widget(screen)
        self.root_view = root
        self.messages.bind(banner=root.setter("banner"))
        self.show("today" if self.phone.bound else "bind")
        return root

    def on_start(self) -> None:
        Clock.schedule_interval(self._tick, 1.0)

    def show(self, name: str) -> None:
        """Switch to a screen with fresh data."""
        root = self.root_view
        if root is None:
            return
        root.ids.screens.current = name
        root.current = name
        root.show_nav = name not in ("bind", "members")
        if name == "today":
            self.today.refresh()
        elif name == "history":
            spawn(self.history.refresh())
        elif name == "messages":
            spawn(self.messages.opened())
            spawn(self.questionnaire.refresh())
        elif name == "questionnaire":
            spawn(self.questionnaire.refresh())
        elif name == "settings":
            self.settings_vm.refresh()
        elif name == "members":
            self.bind_vm.refresh()

    def refresh(self) -> None:
        """After a language or text-size change: recompute what view-models wrote out."""
        if self.root_view is not None:
            self.show(self.root_view.current)

    async def sign_out(self) -> None:
        if await self.settings_vm.sign_out():
            self.bind_vm.refresh()
            self.show("bind")

    def _tick(self, dt: float) -> None:
        if not self.phone.bound:
            return
        self.today.refresh()
        if self.measure.stage == "result" and self.measure.sync != "uploaded":
            spawn(self.measure.refresh_sync())
        # Submitted answers turn from "waiting to upload" to "sent" while one looks.
        on_form = self.root_view is not None and self.root_view.current == "questionnaire"
        if on_form and self.questionnaire.submitted:
            spawn(self.questionnaire.refresh())
        self._since_reminder_check += dt
        if self._since_reminder_check >= REMINDER_CHECK_EVERY_S:
            self._since_reminder_check = 0.0
            self.messages.check_reminders()

    def _message_arrived(self, _note: PatientNotification) -> None:
        self.messages.refresh()
        self.today.refresh()
