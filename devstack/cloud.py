"""The cloud (`python -m cloud serve`) as a child process: for tests, the demo, benchmarks."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from devstack.errors import StackError
from devstack.ports import port_answers

REPO = Path(__file__).resolve().parents[1]


class CloudProcess:
    def __init__(self, env: dict[str, str], http_port: int, log_path: Path) -> None:
        self.env = env
        self.http_port = http_port
        self.base_url = f"http://127.0.0.1:{http_port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 60, wait_for: str = "/health") -> None:
        """Start and wait until `wait_for` answers 200 (`/health` also needs the database,
        broker and ingest worker; `/openapi.json` only the HTTP server)."""
        if port_answers(self.http_port):
            raise StackError(
                f"the cloud did not start: something already listens on 127.0.0.1:"
                f"{self.http_port} (stop it, or set CAREBRIDGE_HTTP_PORT to another port)"
            )
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cloud", "serve"],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StackError(
                    f"the cloud exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                response = httpx.get(f"{self.base_url}{wait_for}", timeout=2)
                if response.status_code == 200:
                    return
                last = response.text[:500]
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
        self.stop()
        raise StackError(
            f"the cloud did not answer {wait_for} within {timeout:.0f}s: {last}\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 15) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
