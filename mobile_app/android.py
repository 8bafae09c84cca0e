"""Android specifics: runtime permissions for Bluetooth and notifications.

bleak's python-for-android backend asks only for location; on Android 12 (API 31) and
later scanning and connecting need BLUETOOTH_SCAN and BLUETOOTH_CONNECT granted at run
time, and Android 13 (API 33) asks separately for POST_NOTIFICATIONS (medication
reminders). The modules `android` and `jnius` exist only inside the APK; tests fake them.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Sequence

log = logging.getLogger("carebridge.app")

_P = "android.permission."
SCAN, CONNECT = _P + "BLUETOOTH_SCAN", _P + "BLUETOOTH_CONNECT"
FINE_LOCATION, COARSE_LOCATION = _P + "ACCESS_FINE_LOCATION", _P + "ACCESS_COARSE_LOCATION"
NOTIFICATIONS = _P + "POST_NOTIFICATIONS"

MANIFEST_PERMISSIONS = (
    "BLUETOOTH",
    "BLUETOOTH_ADMIN",
    "BLUETOOTH_SCAN",
    "BLUETOOTH_CONNECT",
    "ACCESS_FINE_LOCATION",
    "ACCESS_COARSE_LOCATION",
    "POST_NOTIFICATIONS",
    "INTERNET",
    "ACCESS_NETWORK_STATE",
    "WAKE_LOCK",
)
"""What buildozer.spec must declare (a test holds the spec to this list)."""


def runtime_permissions(sdk_int: int) -> list[str]:
    """The dangerous permissions to request at run time before scanning, by API level."""
    if sdk_int >= 31:
        # bleak's scanner still checks fine location on every version, so keep it.
        wanted = [SCAN, CONNECT, FINE_LOCATION]
        if sdk_int >= 33:
            wanted.append(NOTIFICATIONS)
        return wanted
    if sdk_int >= 29:
        return [FINE_LOCATION]
    return [FINE_LOCATION, COARSE_LOCATION]


def is_android() -> bool:
    from kivy.utils import platform

    return bool(platform == "android")


def sdk_level() -> int:
    jnius = importlib.import_module("jnius")
    return int(jnius.autoclass("android.os.Build$VERSION").SDK_INT)


async def ensure_permissions(permissions: Sequence[str] | None = None) -> bool:
    """Ask for what is not yet granted; True when all is. Always True off Android."""
    if not is_android():
        return True
    perms = importlib.import_module("android.permissions")
    wanted = list(permissions) if permissions is not None else runtime_permissions(sdk_level())
    missing = [p for p in wanted if not perms.check_permission(p)]
    if not missing:
        return True
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[bool] = loop.create_future()

    def callback(asked: Sequence[str], grants: Sequence[bool]) -> None:
        # Android answers on its UI thread, not on our loop.
        granted = all(grants) and len(grants) == len(asked)
        loop.call_soon_threadsafe(_settle, answer, granted)

    perms.request_permissions(missing, callback)
    granted = await answer
    if not granted:
        log.warning("permissions refused", extra={"missing": missing})
    return granted


def _settle(answer: asyncio.Future[bool], granted: bool) -> None:
    if not answer.done():
        answer.set_result(granted)


def show_notification(title: str, message: str) -> bool:
    """A system notification on Android (plyer); False elsewhere, where the app shows a
    banner instead."""
    if not is_android():
        return False
    try:
        plyer = importlib.import_module("plyer")
        plyer.notification.notify(title=title, message=message, app_name="康护随行")
    except Exception:  # a missing channel or permission must not break the reminder banner
        log.exception("system notification failed")
        return False
    return True
