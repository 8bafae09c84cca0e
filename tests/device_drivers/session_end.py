"""Making a device indicate at the moment a driver hangs up, for the tests of how a
driver ends a quiet session (decision 29 in docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from device_drivers.session import DeviceSession


def indicate_as_the_driver_hangs_up(
    monkeypatch: pytest.MonkeyPatch,
    session: DeviceSession,
    indicate: Callable[[], Awaitable[object]],
) -> None:
    """Run `indicate` (the device sending a record) when the driver next closes `session`,
    before the link goes down. Once: the test's closing `async with` hangs up again."""
    hang_up = session.close

    async def indicated_as_we_hang_up() -> None:
        monkeypatch.undo()
        await indicate()
        await hang_up()

    monkeypatch.setattr(session, "close", indicated_as_we_hang_up)
