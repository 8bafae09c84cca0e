"""Language and text size, shared by every screen: KV rules bind to `lang` and `scale`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from kivy.event import EventDispatcher
from kivy.properties import NumericProperty, StringProperty

from mobile_app.strings import text

log = logging.getLogger("carebridge.app")

FONT_SCALES = (1.0, 1.25, 1.5)
MIN_TOUCH_DP = 48
"""Android's and WCAG's minimum touch target; every button is at least this tall."""


class Display(EventDispatcher):
    lang = StringProperty("zh_CN")
    scale = NumericProperty(1.25)

    def t(self, key: str, _lang: str | None = None, **values: object) -> str:
        """Text for `key`; KV passes `D.lang` as `_lang` so the rule re-evaluates on change."""
        return text(key, self.lang, **values)

    def fs(self, base_sp: float, _scale: float | None = None) -> float:
        """A font size in sp for `base_sp`, grown by the patient's chosen scale."""
        return base_sp * float(self.scale)


DISPLAY = Display()

_tasks: set[asyncio.Task[Any]] = set()
failures: list[BaseException] = []
"""Errors of spawned view-model work, logged and kept (tests assert there are none)."""


def spawn(coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """Run a view-model coroutine on the app's loop, keeping it alive and its errors logged."""
    task = asyncio.get_running_loop().create_task(coroutine)
    _tasks.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task[Any]) -> None:
    _tasks.discard(task)
    error = None if task.cancelled() else task.exception()
    if error is not None:
        failures.append(error)
        log.error("view-model task failed", exc_info=error)


async def settle() -> None:
    """Wait for every spawned view-model task (tests and shutdown)."""
    while _tasks:
        await asyncio.gather(*list(_tasks), return_exceptions=True)
