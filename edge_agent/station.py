"""The station's commands for devices, patient sessions and unassigned readings.

`python -m edge_agent list | pair | unpair | session open|close|list | unassigned | assign
| member add|remove|choose`, each a short transaction on the agent's local state, so they
work while the agent runs (it picks changes up within a second) and while it does not.
Output is JSON on stdout; messages for people are zh-CN first, English after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from device_drivers.catalogue import catalogue_entry
from edge_agent.device_links import scan_once
from edge_agent.local_state import LocalState
from edge_agent.outbox import Outbox
from edge_agent.settings import EdgeSettings

COMMANDS = frozenset(
    {"scan", "list", "pair", "unpair", "session", "unassigned", "assign", "member"}
)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scan = sub.add_parser("scan", help="listen for devices the catalogue knows, to pair them")
    scan.add_argument("--seconds", type=float, default=10.0)
    listing = sub.add_parser("list", help="devices: paired ones, or every one heard (--all)")
    listing.add_argument("--all", action="store_true", help="include unpaired devices heard")
    pair = sub.add_parser("pair", help="accept a device heard advertising (by address)")
    pair.add_argument("address")
    pair.add_argument("--catalogue-id", help="driver entry, when the device was not heard yet")
    pair.add_argument(
        "--bond", action="store_true", help="connect with BLE pairing (devices that ask for it)"
    )
    unpair = sub.add_parser("unpair", help="stop reading a device")
    unpair.add_argument("address")

    session = sub.add_parser("session", help="centre patient sessions on a device")
    actions = session.add_subparsers(dest="action", required=True)
    opening = actions.add_parser("open", help="this patient is measured on this device now")
    opening.add_argument("--device", required=True, help="device address")
    opening.add_argument("--patient", required=True)
    opening.add_argument("--staff")
    closing = actions.add_parser("close", help="end the session on a device")
    closing.add_argument("--device", required=True)
    actions.add_parser("list", help="sessions still open")

    sub.add_parser("unassigned", help="centre readings without a patient, newest first")
    assign = sub.add_parser("assign", help="give an unassigned measurement to a patient")
    assign.add_argument("measurement_id", type=uuid.UUID)
    assign.add_argument("--patient", required=True)
    assign.add_argument("--staff")
    assign.add_argument("--note")

    member = sub.add_parser("member", help="home mode: family members (就诊人)")
    member_actions = member.add_subparsers(dest="action", required=True)
    adding = member_actions.add_parser("add")
    adding.add_argument("patient_id")
    adding.add_argument("name")
    removing = member_actions.add_parser("remove")
    removing.add_argument("patient_id")
    choosing = member_actions.add_parser("choose", help="the next measurement is this member's")
    choosing.add_argument("patient_id")


def run_command(args: argparse.Namespace, settings: EdgeSettings) -> int:
    """Run one station command; prints its result, returns the exit code."""
    try:
        result = asyncio.run(_dispatch(args, settings))
    except (KeyError, ValueError) as exc:
        reason = exc.args[0] if exc.args else str(exc)
        print(json.dumps({"error": str(reason)}, ensure_ascii=False))
        return 1
    print(json.dumps(result, ensure_ascii=False, indent=2, default=str))
    return 0


@contextlib.asynccontextmanager
async def _state(settings: EdgeSettings) -> AsyncIterator[LocalState]:
    async with Outbox.from_settings(settings) as outbox:
        yield await LocalState.attach(outbox.db)


async def _dispatch(args: argparse.Namespace, settings: EdgeSettings) -> Any:
    now = datetime.now(UTC)
    async with _state(settings) as state:
        command = args.command
        if command == "scan":
            heard = await scan_once(state, args.seconds)
            return [d.as_json() for d in heard]
        if command == "list":
            return [d.as_json() for d in await state.devices(paired_only=not args.all)]
        if command == "pair":
            return await _pair(state, args.address, args.catalogue_id, now, bond=args.bond)
        if command == "unpair":
            if not await state.unpair(args.address):
                raise KeyError(f"未配对的设备 / not a paired device: {args.address}")
            return {"unpaired": args.address.upper()}
        if command == "session":
            return await _session(state, args, settings, now)
        if command == "unassigned":
            return [m.as_json() for m in await state.unassigned()]
        if command == "assign":
            assignment_id = await state.request_assignment(
                args.measurement_id, args.patient, staff_id=args.staff, note=args.note, now=now
            )
            return {
                "measurement_id": str(args.measurement_id),
                "patient_id": args.patient,
                "assignment_id": assignment_id,
                "state": "requested",
                "message": "已记录，联网后同步到云端 / recorded; sent to the cloud once online",
            }
        return await _member(state, args, settings, now)


async def _pair(
    state: LocalState, address: str, catalogue_id: str | None, now: datetime, *, bond: bool
) -> dict[str, Any]:
    known = await state.device(address)
    chosen = catalogue_id or (known.catalogue_id if known else None)
    if chosen is None:
        raise KeyError(
            f"未发现该设备，请先打开设备或指定 --catalogue-id / {address} was not heard "
            "advertising; switch it on near the station or give --catalogue-id"
        )
    entry = catalogue_entry(chosen)
    paired = await state.pair(
        address,
        catalogue_id=entry.id,
        kind=entry.kind.value,
        now=now,
        name=known.name if known else None,
        bond=bond,
    )
    return paired.as_json()


async def _session(
    state: LocalState, args: argparse.Namespace, settings: EdgeSettings, now: datetime
) -> Any:
    if args.action == "open":
        known = await state.device(args.device)
        if known is None or not known.paired:
            raise KeyError(f"未配对的设备 / not a paired device: {args.device}")
        session = await state.open_session(
            args.device,
            args.patient,
            staff_id=args.staff,
            now=now,
            lasts=timedelta(seconds=settings.session_timeout_s),
        )
        return _session_json(session)
    if args.action == "close":
        return {"closed": await state.close_session(now=now, device_key=args.device)}
    return [_session_json(s) for s in await state.sessions(since=now) if s.is_open(now)]


def _session_json(session: Any) -> dict[str, Any]:
    return {
        "session_id": session.session_id,
        "device": session.device_key,
        "patient_id": session.patient_id,
        "staff_id": session.staff_id,
        "opened_at": session.opened_at.isoformat(),
        "ends_at": session.ends_at.isoformat(),
    }


async def _member(
    state: LocalState, args: argparse.Namespace, settings: EdgeSettings, now: datetime
) -> Any:
    if args.action == "add":
        await state.add_member(args.patient_id, args.name)
    elif args.action == "remove":
        if not await state.remove_member(args.patient_id):
            raise KeyError(f"没有该家庭成员 / no such member: {args.patient_id}")
    else:
        await state.choose_member(
            args.patient_id, now=now, lasts=timedelta(seconds=settings.member_choice_s)
        )
    return {"members": await state.members(), "chosen": str(await state.member_choice())}


async def status_fields(settings: EdgeSettings) -> dict[str, Any]:
    """What `status` adds about devices, sessions and unassigned readings."""
    now = datetime.now(UTC)
    async with _state(settings) as state:
        devices = [d.as_json() for d in await state.devices(paired_only=True)]
        sessions = [_session_json(s) for s in await state.sessions(since=now) if s.is_open(now)]
        unassigned = await state.counts()
    live = await asyncio.to_thread(_live_health, settings)
    if live is not None:
        connected = {link["address"]: link for link in live.get("devices", [])}
        for device in devices:
            device["link"] = connected.get(device["address"])
    return {
        "agent": "running" if live is not None else "not running",
        "devices": devices,
        "open_sessions": sessions,
        "unassigned": unassigned,
    }


def _live_health(settings: EdgeSettings) -> dict[str, Any] | None:
    if not settings.health_port:
        return None
    url = f"http://{settings.health_host}:{settings.health_port}/health"
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            data: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as exc:  # 503 still carries the document
        data = json.load(exc)
    except (OSError, ValueError):
        return None
    return data
