"""What every benchmark shares: machine facts, percentiles, writing results."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devstack.mosquitto import LocalMosquitto
from devstack.ports import free_port
from devstack.postgres import LocalPostgres

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
PERFORMANCE_DOC = REPO / "docs" / "performance.md"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as info:
        kb = int(info.readline().split()[1])
    return {
        "host": socket.gethostname(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (no interpolation: every reported value was observed)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, round(p / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def write_results(name: str, results: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = {
        "benchmark": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **results,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return path


def update_performance_doc(name: str, section: str) -> None:
    """Replace this benchmark's section of docs/performance.md (between its markers)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{section.strip()}\n{end}"
    text = (
        PERFORMANCE_DOC.read_text()
        if PERFORMANCE_DOC.exists()
        else (
            "# Performance\n\nEach section is rewritten by its benchmark; numbers are measured, "
            "on the machine named in the section.\n"
        )
    )
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else f"{text}\n{block}\n"
    PERFORMANCE_DOC.write_text(text)


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


class ThrowawayServices:
    """A benchmark's own PostgreSQL (fsync on, as in production) and Mosquitto in a temp
    folder; `close()` stops them and deletes the folder, also when the run is terminated."""

    def __init__(self, name: str) -> None:
        # Stopped from outside, still run the caller's `finally` and clean up.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        self.work = Path(os.environ.get("TMPDIR", "/tmp")) / f"carebridge-{name}-{os.getpid()}"
        self.work.mkdir(parents=True)
        self.server = LocalPostgres(self.work / "pg" / "data", free_port(), fsync=True)
        self.broker = LocalMosquitto(self.work / "mosquitto", free_port())

    def start(self) -> None:
        self.server.start()
        self.broker.start()

    def close(self) -> None:
        self.broker.stop()
        self.server.remove()
        shutil.rmtree(self.work, ignore_errors=True)
