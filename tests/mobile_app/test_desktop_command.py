"""`python -m mobile_app --simulated` (what ./scripts/app.sh runs) starts the app with the
emulated devices, keeps running, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from devstack.ports import free_port

REPO = Path(__file__).resolve().parents[2]


def test_the_desktop_command_runs_the_app_until_interrupted(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIVY", "KCFG"))}
    env.update(SDL_VIDEODRIVER="offscreen", KIVY_CLIPBOARD="dummy", PYTHONPATH=str(REPO))
    env.pop("DISPLAY", None)
    command = [
        sys.executable,
        "-m",
        "mobile_app",
        "--simulated",
        "--cloud-url",
        f"http://127.0.0.1:{free_port()}",  # no cloud: binding waits
        "--data-dir",
        str(tmp_path / "app"),
    ]
    app = subprocess.Popen(command, env=env, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        assert app.stderr is not None
        seen: list[str] = []
        deadline = time.monotonic() + 30
        for line in app.stderr:
            seen.append(line)
            if "Start application main loop" in line:
                break
            assert time.monotonic() < deadline, "".join(seen[-20:])
        else:
            raise AssertionError("the app exited early:\n" + "".join(seen[-20:]))
        logged = [json.loads(line) for line in seen if line.startswith("{")]
        assert any(entry["msg"].startswith("no demo binding code") for entry in logged)
        time.sleep(0.5)
        assert app.poll() is None, "the app stopped on its own"
        app.send_signal(signal.SIGINT)
        rest = app.communicate(timeout=20)[1]
        assert app.returncode == 0, rest[-3000:]
    finally:
        if app.poll() is None:  # a failed check must not leave the app running
            app.kill()
            app.wait()
    assert (tmp_path / "app" / "kivy").is_dir()  # Kivy's files stay in the data folder


def test_the_desktop_command_refuses_a_history_file_from_a_newer_app(tmp_path: Path) -> None:
    data = tmp_path / "app"
    data.mkdir()
    with sqlite3.connect(data / "app.sqlite3") as db:
        db.execute("PRAGMA user_version = 99")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIVY", "KCFG"))}
    env.update(SDL_VIDEODRIVER="offscreen", KIVY_CLIPBOARD="dummy", PYTHONPATH=str(REPO))
    env.pop("DISPLAY", None)
    done = subprocess.run(
        [sys.executable, "-m", "mobile_app", "--data-dir", str(data)],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    assert "local_store: the history file is at schema version 99" in done.stderr
    assert "Traceback" not in done.stderr
    with sqlite3.connect(data / "app.sqlite3") as db:
        assert db.execute("PRAGMA user_version").fetchone() == (99,)
