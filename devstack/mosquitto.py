"""A Mosquitto broker in a folder of ours, on a port of ours, with persistence on so that
persistent sessions and their queued messages survive a broker restart.

Anonymous by default (the tests, the demo). `LocalMosquitto.authenticated` makes one that
takes only accounts from a password file, with the edge ACL of production: user
`<edge_id>` may publish only under `carebridge/v1/edges/<edge_id>/`.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from devstack.errors import StackError
from devstack.ports import port_answers, wait_for_port

# Edges log in with their edge id as user name; `%u` ties each to its own topic branch
# (the whole branch, so a new edge topic needs no ACL change; what an edge could write there
# concerns only itself). Services (ingest, notifications) get the whole tree by name.
EDGE_ACL_PATTERNS = ("pattern readwrite carebridge/v1/edges/%u/#",)


def edge_acl(service_users: list[str]) -> str:
    lines = ["# carebridge: services see everything, an edge only its own branch."]
    for user in service_users:
        lines += [f"user {user}", "topic readwrite carebridge/v1/#", ""]
    return "\n".join([*lines, *EDGE_ACL_PATTERNS]) + "\n"


class LocalMosquitto:
    def __init__(
        self,
        workdir: Path,
        port: int,
        *,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        allow_anonymous: bool = True,
    ) -> None:
        self.workdir = workdir.resolve()
        self.port = port
        self.host = "127.0.0.1"
        self.password_file = password_file
        self.acl_file = acl_file
        self.allow_anonymous = allow_anonymous
        self.config_path = self.workdir / "mosquitto.conf"
        self.pid_file = self.workdir / "mosquitto.pid"
        self.log_path = self.workdir / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    def _write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            "persistence true",
            f"persistence_location {self.workdir}/",
            # Keep every message queued for an offline persistent session: losing readings
            # because an ingest worker was down is not acceptable.
            "max_queued_messages 0",
            "max_inflight_messages 0",
            "autosave_interval 5",
            # MQTT packets are small; with Nagle's algorithm on, one written while an
            # earlier one awaits a delayed TCP ACK waits up to 40 ms.
            "set_tcp_nodelay true",
            # Read by provisioning, which sends SIGHUP to reload accounts and ACL.
            f"pid_file {self.pid_file}",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        if os.geteuid() == 0:
            # Otherwise mosquitto drops to user `mosquitto`, which cannot write here.
            lines.append("user root")
        if self.password_file is not None:
            lines.append(f"password_file {self.password_file}")
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        self.config_path.write_text("\n".join(lines) + "\n")

    @classmethod
    def authenticated(
        cls, workdir: Path, port: int, service_users: Mapping[str, str]
    ) -> LocalMosquitto:
        """A broker with no anonymous access; `service_users` (name → password) may use the
        whole tree, edges added later to `password_file` only their own branch."""
        workdir = workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        password_file = workdir / "passwd"
        password_file.touch(mode=0o600)
        for user, password in service_users.items():
            add_account(password_file, user, password)
        acl_file = workdir / "acl"
        acl_file.write_text(edge_acl(list(service_users)))
        return cls(
            workdir, port, password_file=password_file, acl_file=acl_file, allow_anonymous=False
        )

    def reload(self) -> None:
        """Re-read the password file and ACL (what provisioning does after adding an edge)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGHUP)

    def start(self, timeout: float = 10.0) -> None:
        if port_answers(self.port, self.host):
            raise StackError(
                f"mosquitto did not start: something already listens on {self.host}:{self.port}"
            )
        self._write_config()
        self._process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if not wait_for_port(self.port, timeout, self.host) or self._process.poll() is not None:
            stderr = b""
            if self._process.poll() is not None and self._process.stderr is not None:
                stderr = self._process.stderr.read()
            self.kill()
            raise StackError(
                f"mosquitto did not start on port {self.port}: {stderr.decode(errors='replace')}"
                f"\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly: mosquitto writes its persistence file on SIGTERM."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()


def add_account(password_file: Path, user: str, password: str) -> None:
    result = subprocess.run(
        ["mosquitto_passwd", "-b", str(password_file), user, password],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(f"mosquitto_passwd failed: {result.stderr.strip()}")
