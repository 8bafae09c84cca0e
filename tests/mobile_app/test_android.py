"""The Android build and permission logic, with python-for-android's modules faked:
APKs cannot be built here (no SDK/NDK), so the spec and the runtime requests are held to
what bleak on Android 12+ needs."""

from __future__ import annotations

import configparser
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from mobile_app import android

SPEC = Path(__file__).parents[2] / "mobile_app" / "android" / "buildozer.spec"


def _spec() -> configparser.SectionProxy:
    parser = configparser.ConfigParser()
    assert parser.read(SPEC, encoding="utf-8")
    return parser["app"]


def test_buildozer_spec_declares_what_bleak_needs() -> None:
    app = _spec()
    requirements = [r.split("==")[0] for r in app["requirements"].split(",")]
    for needed in ("python3", "kivy", "bleak", "pyjnius", "paho-mqtt", "aiosqlite", "pydantic"):
        assert needed in requirements
    permissions = [p.strip() for p in app["android.permissions"].split(",")]
    assert permissions == list(android.MANIFEST_PERMISSIONS)
    assert {"BLUETOOTH_SCAN", "BLUETOOTH_CONNECT"} <= set(permissions)
    assert int(app["android.api"]) >= 31  # Android 12's runtime Bluetooth permissions
    assert app["p4a.local_recipes"] == "recipes"
    assert app["android.archs"] == "arm64-v8a"


def test_the_build_script_copies_bleaks_own_recipe() -> None:
    import bleak

    recipe = Path(bleak.__file__).parent / "backends" / "p4android" / "recipes" / "bleak"
    assert (recipe / "__init__.py").is_file()
    script = (Path(__file__).parents[2] / "scripts" / "build_apk.sh").read_text()
    assert "backends/p4android/recipes" in script and "buildozer android debug" in script


@pytest.mark.parametrize(
    ("sdk", "wanted"),
    [
        (26, [android.FINE_LOCATION, android.COARSE_LOCATION]),
        (30, [android.FINE_LOCATION]),
        (31, [android.SCAN, android.CONNECT, android.FINE_LOCATION]),
        (34, [android.SCAN, android.CONNECT, android.FINE_LOCATION, android.NOTIFICATIONS]),
    ],
)
def test_runtime_permissions_by_android_version(sdk: int, wanted: list[str]) -> None:
    assert android.runtime_permissions(sdk) == wanted


class FakeAndroid:
    """`android.permissions` and `jnius` as python-for-android provides them."""

    def __init__(self, sdk: int, granted: set[str], grant_on_request: bool) -> None:
        self.sdk = sdk
        self.granted = granted
        self.grant_on_request = grant_on_request
        self.requested: list[list[str]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        permissions = types.ModuleType("android.permissions")
        permissions.check_permission = lambda p: p in self.granted  # type: ignore[attr-defined]
        permissions.request_permissions = self._request  # type: ignore[attr-defined]
        package = types.ModuleType("android")
        package.permissions = permissions  # type: ignore[attr-defined]
        jnius = types.ModuleType("jnius")
        version = types.SimpleNamespace(SDK_INT=self.sdk)
        jnius.autoclass = lambda name: version  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "android", package)
        monkeypatch.setitem(sys.modules, "android.permissions", permissions)
        monkeypatch.setitem(sys.modules, "jnius", jnius)
        monkeypatch.setattr(android, "is_android", lambda: True)

    def _request(self, wanted: Sequence[str], callback: object) -> None:
        self.requested.append(list(wanted))
        if self.grant_on_request:
            self.granted |= set(wanted)
        # Android answers later, on its own UI thread.
        import threading

        grants = [self.grant_on_request] * len(wanted)
        threading.Timer(0.01, callback, (list(wanted), grants)).start()  # type: ignore[arg-type]


@pytest.fixture
def fake_android(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAndroid]:
    fake = FakeAndroid(33, {android.FINE_LOCATION}, grant_on_request=True)
    fake.install(monkeypatch)
    yield fake


async def test_android_12_asks_for_scan_and_connect_before_scanning(
    fake_android: FakeAndroid,
) -> None:
    assert await android.ensure_permissions()
    assert fake_android.requested == [[android.SCAN, android.CONNECT, android.NOTIFICATIONS]]
    assert await android.ensure_permissions()  # all granted now: nothing asked again
    assert len(fake_android.requested) == 1


async def test_a_refusal_is_reported(fake_android: FakeAndroid) -> None:
    fake_android.grant_on_request = False
    assert not await android.ensure_permissions()


async def test_off_android_nothing_is_asked() -> None:
    assert not android.is_android()
    assert await android.ensure_permissions()
