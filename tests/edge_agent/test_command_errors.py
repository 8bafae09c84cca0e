"""`python -m edge_agent` told something it cannot use — a wrong setting, an outbox that
cannot be opened — says it in one line and exits 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devstack.cloud import REPO
from edge_agent.__main__ import main as edge_main


def test_the_edge_agent_says_which_variable_is_wrong_and_exits_2(monkeypatch, capsys):
    monkeypatch.setenv("CAREBRIDGE_EDGE_MODE", "ward")

    assert edge_main(["status"]) == 2

    assert capsys.readouterr().err == (
        "CAREBRIDGE_EDGE_MODE='ward': String should match pattern '^(centre|home)$'\n"
    )


def _status_with_outbox_at(path: Path, work: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    env["CAREBRIDGE_EDGE_OUTBOX_PATH"] = str(path)
    env["CAREBRIDGE_EDGE_CREDENTIALS_PATH"] = str(work / "no-credentials.json")
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", "status"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _plain_lines(stderr: str) -> list[str]:
    """What stderr holds besides the JSON log lines (where a traceback may be kept)."""
    return [line for line in stderr.splitlines() if not line.startswith("{")]


def test_an_outbox_that_cannot_be_opened_is_one_line_and_exit_2(tmp_path):
    taken = tmp_path / "outbox.sqlite3"
    taken.mkdir()  # a folder where the file should be

    # aiosqlite's thread, left to itself, reports to the closed event loop in about half of
    # the runs (a traceback after the line); three runs make a miss of that unlikely.
    for _ in range(3):
        done = _status_with_outbox_at(taken, tmp_path)

        assert done.returncode == 2
        assert _plain_lines(done.stderr) == [
            f"edge_agent status: unable to open database file (outbox {taken})"
        ]


def test_an_outbox_folder_that_cannot_be_made_is_one_line_and_exit_2(tmp_path):
    blocker = tmp_path / "edge"
    blocker.write_text("a file, not a folder")
    outbox = blocker / "outbox.sqlite3"

    done = _status_with_outbox_at(outbox, tmp_path)

    assert done.returncode == 2
    [line] = _plain_lines(done.stderr)
    assert line.startswith("edge_agent status: [Errno ")
    assert line.endswith(f"'{blocker}'")  # the file in the way
