"""A PostgreSQL 15 cluster with TimescaleDB preloaded, in a folder of ours, on a port of ours.

PostgreSQL refuses to run as root; when we are root, the cluster runs as the `postgres`
user and its folder is handed to that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import psycopg

from devstack.errors import StackError

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DATABASE = "carebridge"


def _timescaledb_installed() -> bool:
    sharedir = subprocess.run(
        [str(PG_BIN / "pg_config"), "--sharedir"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return bool(sharedir) and Path(sharedir, "extension", "timescaledb.control").exists()


class LocalPostgres:
    def __init__(self, data_dir: Path, port: int, *, fsync: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.fsync = fsync
        self.log_path = self.data_dir.parent / "postgres.log"
        self._as_postgres = os.geteuid() == 0

    @classmethod
    def in_tempdir(cls, port: int, *, fsync: bool = False) -> LocalPostgres:
        # Directly under /tmp: pytest's tmp tree is private to root and the server user
        # could not reach it.
        root = Path(tempfile.mkdtemp(prefix="carebridge-pg-"))
        return cls(root / "data", port, fsync=fsync)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def admin_dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [*args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise StackError(
                f"{' '.join(args[:2])} failed ({result.returncode}): "
                f"{(result.stderr or result.stdout).strip()[-2000:]}\n{self._log_tail()}"
            )
        return result

    def _log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "server log:\n" + "\n".join(text)

    def _chown(self, path: Path) -> None:
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(path, user.pw_uid, user.pw_gid)

    def _init(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        self._chown(self.data_dir.parent)
        self._chown(self.data_dir)
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.data_dir}'",
            "shared_preload_libraries": "'timescaledb'",
            "timescaledb.telemetry_level": "off",
            "max_connections": "200",
            # A shared 2-core box: modest memory, but enough for COPY-heavy ingest.
            "shared_buffers": "'512MB'",
            "work_mem": "'16MB'",
            "maintenance_work_mem": "'256MB'",
            "max_wal_size": "'2GB'",
            "timescaledb.max_background_workers": "4",
            "max_worker_processes": "16",
        }
        with (self.data_dir / "postgresql.auto.conf").open("a") as conf:
            for key, value in settings.items():
                conf.write(f"{key} = {value}\n")

    def start(self, timeout: float = 30.0) -> None:
        if not _timescaledb_installed():
            raise StackError(
                "the TimescaleDB extension is not installed for PostgreSQL 15: "
                "run scripts/install_system.sh"
            )
        if not (self.data_dir / "PG_VERSION").exists():
            self._init()
        fsync = "on" if self.fsync else "off"
        options = f"-p {self.port} -c fsync={fsync} -c synchronous_commit={fsync}"
        self.log_path.touch()
        self._chown(self.log_path)
        self._run(
            str(PG_BIN / "pg_ctl"),
            "start",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_path),
            "-o",
            options,
            "-w",
            "-t",
            str(int(timeout)),
        )
        self._wait_ready(timeout)
        with psycopg.connect(self.admin_dsn(), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f"CREATE DATABASE {DATABASE}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.admin_dsn(), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                error = exc
                time.sleep(0.1)
        raise StackError(f"PostgreSQL on port {self.port} not ready: {error}\n{self._log_tail()}")

    def stop(self) -> None:
        if self.is_running():
            self._run(str(PG_BIN / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w")

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        return (
            self._run(
                str(PG_BIN / "pg_ctl"), "status", "-D", str(self.data_dir), check=False
            ).returncode
            == 0
        )

    def remove(self) -> None:
        """Stop and delete the cluster and its folder."""
        self.stop()
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()
