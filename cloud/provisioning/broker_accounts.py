"""Broker accounts for edges, in Mosquitto's password file.

`mosquitto_passwd` writes the salted PBKDF2 hash Mosquitto expects; a SIGHUP (to the pid in
the broker's `pid_file`) makes the broker reload the file and its ACL without dropping
anyone. The ACL (one `pattern` block, see `docs/edge_uplink.md`) lets user `<edge_id>`
publish only under `carebridge/v1/edges/<edge_id>/`, so an edge can only speak as itself.

A file lock keeps two cloud processes from rewriting the file at once. This needs the cloud
on the broker's host with the right to signal it; where that does not hold, the plugin
route in docs/edge_uplink.md replaces this class behind the same `add`/`remove`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
from pathlib import Path
from typing import Protocol

from protocols.errors import CareBridgeError

log = logging.getLogger("carebridge.provisioning")


class BrokerAccountError(CareBridgeError):
    code = "broker_account_failed"


class BrokerAccounts(Protocol):
    def add(self, username: str, password: str) -> None: ...

    def remove(self, username: str) -> None: ...


class NoBrokerAccounts:
    """For a broker that lets anyone in (the local demo): nothing to write."""

    def add(self, username: str, password: str) -> None:
        log.warning(
            "no broker password file configured: the issued credentials are not enforced",
            extra={"username": username},
        )

    def remove(self, username: str) -> None:
        return None


class PasswordFileAccounts:
    def __init__(self, password_file: Path, pid_file: Path | None) -> None:
        self.password_file = password_file
        self.pid_file = pid_file

    def add(self, username: str, password: str) -> None:
        self._edit(["-b", str(self.password_file), username, password])

    def remove(self, username: str) -> None:
        self._edit(["-D", str(self.password_file), username])

    def _edit(self, args: list[str]) -> None:
        lock_path = self.password_file.with_name(self.password_file.name + ".lock")
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self.password_file.exists():
                self.password_file.touch(mode=0o600)
            result = subprocess.run(
                ["mosquitto_passwd", *args], capture_output=True, text=True, check=False
            )
            if result.returncode != 0:
                raise BrokerAccountError(
                    f"mosquitto_passwd failed ({result.returncode}): {result.stderr.strip()}"
                )
        self._reload()

    def _reload(self) -> None:
        if self.pid_file is None:
            log.warning("no broker pid file configured: the broker reloads accounts on restart")
            return
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError) as exc:
            raise BrokerAccountError(
                f"could not make the broker reload its accounts: {exc}"
            ) from exc
