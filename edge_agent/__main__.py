"""`python -m edge_agent run | status | export-outbox FILE | enrol --cloud-url URL --code CODE`,
and the station's `list | pair | unpair | session | unassigned | assign | member`
(`edge_agent.station`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sqlite3
import sys
from pathlib import Path

from pydantic import ValidationError

from edge_agent import station
from edge_agent.agent import read_link_state
from edge_agent.local_schema import LocalSchemaError
from edge_agent.outbox import Outbox
from edge_agent.provisioning import apply_credentials, enrol
from edge_agent.runtime import run_agent
from edge_agent.settings import EdgeSettings
from edge_agent.sqlite_calls import fetch_all
from protocols.errors import CareBridgeError
from protocols.logs import configure_logging
from protocols.settings_errors import settings_error

log = logging.getLogger("carebridge.edge")


async def _run(settings: EdgeSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C still raises
            loop.add_signal_handler(sig, stop.set)
    await run_agent(settings, stop)


async def _status(settings: EdgeSettings) -> dict[str, object]:
    async with Outbox.from_settings(settings) as outbox:
        stats = await outbox.stats()
    link = read_link_state(settings) or {}
    return {
        "edge_id": settings.edge_id,
        "outbox": str(settings.outbox_path),
        "pending": stats.pending,
        "in_flight": stats.in_flight,
        "rejected": stats.rejected,
        "oldest_pending_age_s": stats.oldest_pending_age_s,
        "outbox_capacity": stats.capacity,
        "outbox_level": stats.level.value,
        "outbox_alarm": stats.alarm,
        "broker": link.get("broker"),
        "last_ack_at": link.get("last_ack_at"),
        "link_state_written_at": link.get("written_at"),
        **await station.status_fields(settings),
    }


async def _export(settings: EdgeSettings, target: Path) -> int:
    async with Outbox(settings.outbox_path) as outbox:
        rows = await fetch_all(
            outbox.db,
            "SELECT reading_id, state, enqueued_at, attempts, reject_code, reject_reason, body "
            "FROM outbox ORDER BY enqueued_at",
        )
    with target.open("w", encoding="utf-8") as out:
        for rid, state, enq, attempts, code, reason, body in rows:
            record = {
                "reading_id": rid,
                "state": state,
                "enqueued_at": enq,
                "attempts": attempts,
                "reject_code": code,
                "reject_reason": reason,
                "reading": json.loads(body),
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_agent", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the agent until SIGINT/SIGTERM")
    sub.add_parser("status", help="outbox depth and age, as JSON")
    export = sub.add_parser("export-outbox", help="write the outbox as JSON lines for support")
    export.add_argument("file", type=Path)
    station.add_commands(sub)
    enrol_cmd = sub.add_parser("enrol", help="register with a one-time code from the cloud")
    enrol_cmd.add_argument("--cloud-url", required=True)
    enrol_cmd.add_argument("--code", required=True)
    args = parser.parse_args(argv)
    try:
        settings = apply_credentials(EdgeSettings())
    except ValidationError as exc:
        print(settings_error(exc, EdgeSettings).reason, file=sys.stderr)
        return 2
    except CareBridgeError as exc:
        print(exc.reason, file=sys.stderr)
        return 2
    configure_logging(settings.log_level, service=f"edge-{settings.edge_id}")
    if args.command == "enrol":
        try:
            creds = enrol(
                args.cloud_url,
                args.code,
                settings.credentials_path.parent,
                file_name=settings.credentials_path.name,
            )
        except CareBridgeError as exc:
            print(exc.reason, file=sys.stderr)
            return 2
        print(f"已注册 / enrolled as {creds.edge_id} ({creds.mode}); {settings.credentials_path}")
    else:
        try:
            if args.command in station.COMMANDS:
                return station.run_command(args, settings)
            _local_command(args, settings)
        except LocalSchemaError as exc:
            # The file is kept as it is; saying why beats a traceback on a centre's PC.
            print(f"{exc.code}: {exc.reason} ({settings.outbox_path})", file=sys.stderr)
            return 2
        except (OSError, sqlite3.OperationalError) as exc:
            # An outbox folder that cannot be made, a disk that is full: the operator's line
            # first; the traceback stays in the log for whoever debugs it. An OSError names
            # its own file; SQLite's errors name none, and the outbox is its only file.
            log.error("edge agent stopped", exc_info=True)
            where = "" if isinstance(exc, OSError) else f" (outbox {settings.outbox_path})"
            print(f"edge_agent {args.command}: {exc}{where}", file=sys.stderr)
            return 2
    return 0


def _local_command(args: argparse.Namespace, settings: EdgeSettings) -> None:
    if args.command == "run":
        asyncio.run(_run(settings))
    elif args.command == "status":
        print(json.dumps(asyncio.run(_status(settings)), indent=2))
    else:
        count = asyncio.run(_export(settings, args.file))
        print(f"exported {count} outbox record(s) to {args.file}")


if __name__ == "__main__":
    sys.exit(main())
