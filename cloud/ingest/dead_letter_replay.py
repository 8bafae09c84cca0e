"""`python -m cloud replay-dead-letters`: publish chosen dead letters to ingest again.

The letters are read from the database, planned by `replay_plan`, published on their
edges' readings topics (QoS 1, each confirmed by the broker before its letters are marked
replayed), and the workers' acks are awaited and reported. Letters are never deleted: a
replayed one keeps `replayed_at` and its count of `replays`, and whatever ingest refuses
again becomes a new dead letter with its new reason.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import psycopg

from cloud.ingest.replay_plan import KeptLetter, Replay, plan_replays
from cloud.mqtt_client import cloud_client
from cloud.settings import CloudSettings
from protocols import topics
from protocols.errors import CareBridgeError
from protocols.messages import Ack, decode

Say = Callable[[str], None]


class ReplayError(CareBridgeError):
    code = "replay_failed"


@dataclass(frozen=True)
class Selection:
    ids: Sequence[int] = ()
    codes: Sequence[str] = ()
    again: bool = False
    """Also letters replayed before (by default they are left alone)."""

    def __post_init__(self) -> None:
        if not self.ids and not self.codes:
            raise ReplayError(
                "choose dead letters by id or by code; nothing is replayed by default"
            )


@dataclass
class Outcome:
    published: int = 0
    acked: dict[uuid.UUID, Ack] = field(default_factory=dict)
    unanswered: list[Replay] = field(default_factory=list)
    refused_again: int = 0
    """Readings the replays' acks refused."""

    @property
    def all_stored(self) -> bool:
        return not self.unanswered and not self.refused_again


def kept_letters(conn: psycopg.Connection, selection: Selection) -> list[KeptLetter]:
    rows = conn.execute(
        """SELECT dead_letter_id, topic, code, item_index, payload FROM dead_letters
           WHERE (dead_letter_id = ANY(%(ids)s) OR code = ANY(%(codes)s))
             AND (%(again)s OR replays = 0)
           ORDER BY dead_letter_id""",
        {"ids": list(selection.ids), "codes": list(selection.codes), "again": selection.again},
    ).fetchall()
    return [KeptLetter(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]


def mark_replayed(conn: psycopg.Connection, dead_letter_ids: Sequence[int]) -> None:
    conn.execute(
        "UPDATE dead_letters SET replayed_at = now(), replays = replays + 1 "
        "WHERE dead_letter_id = ANY(%s)",
        (list(dead_letter_ids),),
    )


def replay_dead_letters(
    settings: CloudSettings,
    selection: Selection,
    *,
    dry_run: bool = False,
    wait_s: float = 30.0,
    say: Say = print,
) -> Outcome:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        letters = kept_letters(conn, selection)
        replays, refused = plan_replays(letters, datetime.now(UTC))
        for item in refused:
            say(f"dead letter {item.dead_letter_id} cannot be replayed: {item.reason}")
        if not replays:
            say(f"nothing to replay ({len(letters)} dead letter(s) chosen)")
            return Outcome()
        carried = sum(len(r.dead_letter_ids) for r in replays)
        say(f"{carried} dead letter(s) in {len(replays)} message(s)")
        if dry_run:
            for r in replays:
                say(f"  would publish {len(r.payload):,} bytes to {r.topic} ({_letters(r)})")
            return Outcome()
        return _publish(settings, conn, replays, wait_s, say)


def _publish(
    settings: CloudSettings,
    conn: psycopg.Connection,
    replays: list[Replay],
    wait_s: float,
    say: Say,
) -> Outcome:
    outcome = Outcome()
    lock = threading.Lock()
    connected = threading.Event()

    def on_connect(client: mqtt.Client, _u: object, _f: object, rc: object, _p: object) -> None:
        if not getattr(rc, "is_failure", False):
            connected.set()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            ack = decode(bytes(msg.payload), Ack)
        except CareBridgeError:
            return  # not ours to judge: the edge's own traffic on its acks topic
        with lock:
            outcome.acked[ack.batch_id] = ack

    client = cloud_client(settings, f"replay-{uuid.uuid4().hex[:8]}")
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect_async(settings.mqtt_host, settings.mqtt_port, keepalive=30)
    client.loop_start()
    try:
        if not connected.wait(10):
            raise ReplayError(
                f"no broker at {settings.mqtt_host}:{settings.mqtt_port}; nothing was replayed"
            )
        # Listening before publishing, so no ack can come before we hear it.
        for edge_id in sorted({r.edge_id for r in replays}):
            info = client.subscribe(topics.acks(edge_id), qos=1)
            if info[0] != mqtt.MQTT_ERR_SUCCESS:
                raise ReplayError(f"could not listen for {edge_id}'s acks ({info[0]})")
        time.sleep(0.3)  # let the subscriptions settle
        for number, replay in enumerate(replays, 1):
            sent = client.publish(replay.topic, replay.payload, qos=1)
            sent.wait_for_publish(10)
            if not sent.is_published():
                raise ReplayError(
                    f"the broker did not take message {number} of {len(replays)}; "
                    f"{outcome.published} were replayed, the rest are untouched"
                )
            mark_replayed(conn, replay.dead_letter_ids)
            outcome.published += 1
            say(f"  published {number}/{len(replays)} to {replay.topic} ({_letters(replay)})")
        expected = {r.batch_id for r in replays if r.batch_id is not None}
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            with lock:
                if expected <= outcome.acked.keys():
                    break
            time.sleep(0.05)
    finally:
        client.disconnect()
        client.loop_stop()
    for replay in replays:
        ack = outcome.acked.get(replay.batch_id) if replay.batch_id else None
        if ack is None:
            outcome.unanswered.append(replay)
            say(
                f"  {_letters(replay)}: no ack within {wait_s:g} s — is an ingest worker "
                "running? If so it was refused again, unread: see the dead letters (within "
                "the hour, as a repeat on this one)"
            )
        else:
            outcome.refused_again += len(ack.rejected)
            codes = sorted({r.code for r in ack.rejected})
            say(
                f"  {_letters(replay)}: {len(ack.stored)} reading(s) stored, "
                f"{len(ack.rejected)} refused{' (' + ', '.join(codes) + ')' if codes else ''}"
            )
    return outcome


def _letters(replay: Replay) -> str:
    ids = [str(i) for i in replay.dead_letter_ids]
    if len(ids) == 1:
        return f"dead letter {ids[0]}"
    shown = ", ".join(ids) if len(ids) <= 5 else f"{', '.join(ids[:3])}, … ({len(ids)} in all)"
    return f"dead letters {shown}"
