"""`python -m edge_agent run | status | export-outbox FILE`."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from edge_agent.agent import EdgeAgent
from edge_agent.outbox import Outbox
from edge_agent.settings import EdgeSettings
from edge_agent.uplink import MqttUplink
from protocols.logs import configure_logging


async def _run(settings: EdgeSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Outbox(settings.outbox_path) as outbox:
        agent = EdgeAgent(settings, outbox, MqttUplink(settings, loop))
        await agent.run(stop)


async def _status(settings: EdgeSettings) -> dict[str, object]:
    async with Outbox(settings.outbox_path) as outbox:
        stats = await outbox.stats()
    return {
        "edge_id": settings.edge_id,
        "outbox": str(settings.outbox_path),
        "pending": stats.pending,
        "in_flight": stats.in_flight,
        "rejected": stats.rejected,
        "oldest_pending_age_s": stats.oldest_pending_age_s,
    }


async def _export(settings: EdgeSettings, target: Path) -> int:
    async with Outbox(settings.outbox_path) as outbox:
        cursor = await outbox.db.execute(
            "SELECT reading_id, state, enqueued_at, attempts, reject_code, reject_reason, body "
            "FROM outbox ORDER BY enqueued_at"
        )
        rows = list(await cursor.fetchall())
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
    args = parser.parse_args(argv)
    settings = EdgeSettings()
    configure_logging(settings.log_level, service=f"edge-{settings.edge_id}")
    if args.command == "run":
        asyncio.run(_run(settings))
    elif args.command == "status":
        print(json.dumps(asyncio.run(_status(settings)), indent=2))
    else:
        count = asyncio.run(_export(settings, args.file))
        print(f"exported {count} outbox record(s) to {args.file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
