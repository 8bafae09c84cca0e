"""Settings: text size, language, paired devices, signing out."""

from __future__ import annotations

from kivy.event import EventDispatcher
from kivy.properties import ListProperty, StringProperty

from mobile_app.phone import Phone
from mobile_app.strings import LANGUAGES
from mobile_app.viewmodels.display import DISPLAY, FONT_SCALES


class SettingsViewModel(EventDispatcher):
    devices = ListProperty()
    message = StringProperty("")

    def __init__(self, phone: Phone, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.phone = phone
        self.apply()

    def apply(self) -> None:
        """Make the saved choices current for every screen."""
        profile = self.phone.profile
        if profile is not None:
            DISPLAY.lang = profile.language
            DISPLAY.scale = profile.font_scale
        self.refresh()

    def refresh(self) -> None:
        profile = self.phone.profile
        self.devices = [f"{d.title}  {d.address}" for d in profile.devices] if profile else []

    def set_font_scale(self, scale: float) -> None:
        if scale not in FONT_SCALES:
            raise ValueError(f"font scale {scale} not offered")
        DISPLAY.scale = scale
        self._save(font_scale=scale)

    def set_language(self, language: str) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"language {language!r} not offered")
        DISPLAY.lang = language
        self._save(language=language)

    def _save(self, **changes: object) -> None:
        profile = self.phone.profile
        if profile is None:
            return
        for name, value in changes.items():
            setattr(profile, name, value)
        self.phone.save()

    async def sign_out(self, *, force: bool = False) -> bool:
        waiting = await self.phone.sign_out(force=force)
        if waiting:
            self.message = DISPLAY.t("sign_out_waiting", count=waiting)
            return False
        self.message = ""
        return True
