"""`python -m mobile_app [--simulated] [--cloud-url URL] [--data-dir DIR] [--code CODE]`.

`--simulated` runs an emulated cuff and glucose meter in the app's own process (bumble,
real GATT) instead of the phone's Bluetooth, and, when the phone is not bound yet, asks
the local demo cloud (`./scripts/run.sh`) for a binding code as its demo case manager
and fills it in, so a tester only taps 绑定.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import urllib.request
from pathlib import Path

DEFAULT_CLOUD_URL = "http://127.0.0.1:8080"
DEMO_CASE_MANAGER = ("cm01", "carebridge-demo")
DEMO_PATIENT = "P-0001"

log = logging.getLogger("carebridge.app")


def _prepare_kivy(data_dir: Path) -> None:
    # Kivy reads these at import: keep its argv parsing off (ours is argparse) and its
    # config and logs inside the app's data folder.
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")  # our JSON log setup, not Kivy's
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    (data_dir / "kivy").mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("KIVY_HOME", str(data_dir / "kivy"))
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")


def demo_code(
    cloud_url: str,
    patient_id: str = DEMO_PATIENT,
    staff: tuple[str, str] = DEMO_CASE_MANAGER,
) -> str | None:
    """A fresh enrolment code from the demo cloud, or None when it is not running."""

    def post(path: str, body: dict[str, object], token: str | None = None) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            cloud_url.rstrip("/") + path, json.dumps(body).encode(), headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            answer: dict[str, str] = json.loads(response.read())
            return answer

    user, password = staff
    try:
        token = post("/api/v1/auth/token", {"username": user, "password": password})
        made = post(
            "/api/v1/enrolment-codes",
            {"mode": "home", "patient_id": patient_id, "label": "desktop app demo"},
            token["access_token"],
        )
    except (OSError, ValueError, KeyError) as exc:
        log.warning("no demo binding code from %s: %s", cloud_url, exc)
        return None
    return made.get("code")


async def _main(args: argparse.Namespace) -> None:
    from mobile_app.app import CareBridgeApp
    from mobile_app.phone import Phone

    if args.simulated:
        from mobile_app.simulated import SimulatedHome

        home_context: contextlib.AbstractAsyncContextManager[object] = SimulatedHome()
    else:
        home_context = contextlib.nullcontext()
    async with home_context as home:
        backends = getattr(home, "backends", None)
        phone = Phone(args.data_dir, cloud_url=args.cloud_url, backends=backends)
        await phone.start()
        app = CareBridgeApp(phone)
        code = args.code or (
            demo_code(args.cloud_url) if args.simulated and not phone.bound else None
        )
        if code:
            app.bind_vm.code = code
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, app.stop)
        try:
            await app.async_run(async_lib="asyncio")
        finally:
            await phone.stop()
            phone.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mobile_app", description=__doc__)
    parser.add_argument("--simulated", action="store_true", help="emulated devices, no Bluetooth")
    parser.add_argument(
        "--cloud-url", default=os.environ.get("CAREBRIDGE_APP_CLOUD_URL", DEFAULT_CLOUD_URL)
    )
    parser.add_argument("--data-dir", type=Path, default=Path(".local/app"))
    parser.add_argument("--code", help="binding code to fill in")
    args = parser.parse_args(argv)
    _prepare_kivy(args.data_dir)
    from protocols.logs import configure_logging

    configure_logging("info", service="mobile-app")
    logging.getLogger("bumble").setLevel(logging.WARNING)  # its HCI traces drown the rest
    from edge_agent.local_schema import LocalSchemaError
    from mobile_app.local_store import LocalStoreError

    try:
        asyncio.run(_main(args))
    except (LocalStoreError, LocalSchemaError) as exc:
        # The phone's files are kept as they are; saying why beats a traceback.
        print(f"{exc.code}: {exc.reason} ({args.data_dir})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
