"""Kivy headless for the app's tests, and the app run on the test's own event loop.

Kivy reads its environment at import, so it is set here, before any test module imports
kivy: no argv parsing, no logs or config in ~/.kivy, SDL offscreen (EGL, no X), a
portrait window. Each UI test runs a fresh app in a fresh Kivy context (clock, factory,
builder), as Kivy's own `kivy_app` fixture does, and screenshots go to
`test-artifacts/mobile_app/screenshots/` (gitignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))
os.environ.setdefault("KIVY_CLIPBOARD", "dummy")
os.environ.setdefault("KCFG_GRAPHICS_WIDTH", "480")
os.environ.setdefault("KCFG_GRAPHICS_HEIGHT", "800")
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "mobile_app" / "screenshots"


async def until(
    predicate: Callable[[], Any],
    within: float = 10.0,
    message: str | Callable[[], str] = "",
) -> Any:
    """Poll on the loop (the app keeps running meanwhile) until `predicate()` is truthy;
    `message` (or what it returns) says what was awaited and what was seen instead."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            said = message() if callable(message) else message
            raise AssertionError(f"timed out after {within}s waiting for {said or predicate}")
        await asyncio.sleep(0.05)


class AppDriver:
    """Drives a running app like a finger would, and photographs it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    @property
    def root(self) -> Any:
        return self.app.root_view

    def screen(self, name: str) -> Any:
        return self.root.ids.screens.get_screen(name)

    async def frames(self, count: int = 3) -> None:
        for _ in range(count):
            await asyncio.sleep(1 / 30)

    async def tap(self, widget: Any) -> None:
        """A real touch (down and up) at the widget's centre, through Kivy's input path."""
        from kivy.tests.common import UnitTestTouch
        from kivy.uix.scrollview import ScrollView

        await self.frames(2)
        assert widget.get_root_window() is not None, f"{widget} is not on screen"
        scroller = widget.parent
        while scroller is not None and not isinstance(scroller, ScrollView):
            # The window is its own parent: stop there.
            scroller = None if scroller.parent is scroller else scroller.parent
        if scroller is not None:  # as a finger would scroll to it first
            scroller.scroll_to(widget, padding=10, animate=False)
            await self.frames(2)
        assert not widget.disabled, f"{widget} is disabled"
        x, y = widget.to_window(*widget.center)
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        touch.touch_up()
        await self.frames(2)

    async def shoot(self, name: str) -> Path:
        from kivy.core.window import Window

        await self.frames(4)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        target = SCREENSHOTS / f"{name}.png"
        written = Window.screenshot(str(SCREENSHOTS / f"{name}_.png"))
        # Kivy numbers its screenshots (name_0001.png); keep one stable name per screen.
        os.replace(written, target)
        return target


@contextlib.asynccontextmanager
async def running_app(phone: Any, **options: Any) -> AsyncIterator[AppDriver]:
    """The app on the offscreen window; on leaving, the app stops and so does `phone`."""
    from kivy.base import stopTouchApp
    from kivy.clock import ClockBase
    from kivy.context import Context
    from kivy.core.window import Window
    from kivy.factory import Factory, FactoryBase
    from kivy.lang.builder import Builder, BuilderBase

    from mobile_app.app import CareBridgeApp
    from mobile_app.viewmodels.display import failures, settle

    context = Context(init=False)
    context["Clock"] = ClockBase(async_lib="asyncio")
    context["Factory"] = FactoryBase.create_from(Factory)
    context["Builder"] = BuilderBase.create_from(Builder)
    context.push()
    Window.create_window()
    Window.register()
    Window.initialized = True
    Window.canvas.clear()
    failures.clear()
    app = CareBridgeApp(phone, **options)
    task = asyncio.get_running_loop().create_task(app.async_run(async_lib="asyncio"))
    try:
        await until(lambda: app.root_view is not None and app.root_view.get_root_window())
        yield AppDriver(app)
    finally:
        try:
            stopTouchApp()
            await asyncio.wait_for(task, 10)
            await settle()
        finally:
            # Always: the agent's SQLite and MQTT threads would keep pytest from exiting.
            await phone.stop()
            phone.close()
            for child in Window.children[:]:
                Window.remove_widget(child)
            context.pop()
    errors, failures[:] = list(failures), []
    assert not errors, f"the app's background work failed: {errors!r}"
