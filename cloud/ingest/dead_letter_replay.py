"""`python -m cloud replay-dead-letters`: publish chosen dead letters to ingest again.

The letters are read from the database a page at a time (a bug can leave a great many),
planned by `replay_plan`, published on their edges' readings topics (QoS 1, each
confirmed by the broker before its letters are marked replayed), and the workers' acks
are awaited and reported. Letters are never deleted: a replayed one keeps `replayed_at`
and its count of `replays`, and what ingest refuses again is a dead letter again (a new
one, or a repeat on this one if it was refused unread within the hour).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType

import paho.mqtt.client as mqtt
import psycopg

from cloud.ingest.replay_plan import KeptLetter, Replay, plan_replays
from cloud.mqtt_client import cloud_client
from cloud.settings import CloudSettings
from protocols import topics
from protocols.errors import CareBridgeError
from protocols.messages import Ack, decode

Say = Callable[[str], None]

PAGE_LETTERS = 500
"""Dead letters read, planned and published at a time: what the command holds in memory."""


class ReplayError(CareBridgeError):
    code = "replay_failed"


@dataclass(frozen=True)
class Selection:
    ids: Sequence[int] = ()
    """Letters chosen by id are replayed even if they were before."""
    codes: Sequence[str] = ()
    again: bool = False
    """Also letters of these codes that were replayed before (by default left alone)."""

    def __post_init__(self) -> None:
        if not self.ids and not self.codes:
            raise ReplayError(
                "choose dead letters by id or by code; nothing is replayed by default"
            )

    @property
    def params(self) -> dict[str, object]:
        return {"ids": list(self.ids), "codes": list(self.codes), "again": self.again}


_CHOSEN = """(dead_letter_id = ANY(%(ids)s)
              OR (code = ANY(%(codes)s) AND (%(again)s OR replays = 0)))"""


@dataclass(frozen=True)
class Sent:
    """A published replay, without its payload."""

    topic: str
    dead_letter_ids: tuple[int, ...]
    batch_id: uuid.UUID | None


@dataclass(frozen=True)
class Heard:
    """What an ack said of a replay: counts only, so a long replay's memory stays small."""

    stored: int
    refused_codes: tuple[str, ...]
    """One code per refused reading."""


@dataclass
class Outcome:
    sent: list[Sent] = field(default_factory=list)
    acked: dict[uuid.UUID, Heard] = field(default_factory=dict)

    @property
    def published(self) -> int:
        return len(self.sent)

    @property
    def unanswered(self) -> list[Sent]:
        return [s for s in self.sent if s.batch_id is None or s.batch_id not in self.acked]

    @property
    def refused_again(self) -> int:
        """Readings the replays' acks refused."""
        return sum(len(heard.refused_codes) for heard in self.acked.values())

    @property
    def all_stored(self) -> bool:
        return not self.unanswered and not self.refused_again


def letter_pages(
    conn: psycopg.Connection, selection: Selection, page: int = PAGE_LETTERS
) -> Iterator[list[KeptLetter]]:
    """The chosen letters in id order, `page` at a time (keyset: marking a page replayed
    does not move the next one)."""
    after = 0
    while True:
        rows = conn.execute(
            f"""SELECT dead_letter_id, topic, code, item_index, payload FROM dead_letters
                WHERE dead_letter_id > %(after)s AND {_CHOSEN}
                ORDER BY dead_letter_id LIMIT %(page)s""",
            {**selection.params, "after": after, "page": page},
        ).fetchall()
        if not rows:
            return
        yield [KeptLetter(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]
        after = rows[-1][0]


def counts(conn: psycopg.Connection, selection: Selection) -> tuple[int, int]:
    """(letters chosen, letters of the chosen codes left alone as replayed before)."""
    row = conn.execute(
        f"""SELECT count(*) FILTER (WHERE {_CHOSEN}),
                   count(*) FILTER (WHERE NOT {_CHOSEN} AND code = ANY(%(codes)s))
            FROM dead_letters
            WHERE dead_letter_id = ANY(%(ids)s) OR code = ANY(%(codes)s)""",
        selection.params,
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


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
    outcome = Outcome()
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        chosen, passed_over = counts(conn, selection)
        if passed_over:
            say(
                f"{passed_over} dead letter(s) of these codes were replayed before and are "
                "left alone (--again includes them)"
            )
        say(f"{chosen} dead letter(s) chosen")
        if not chosen:
            say("nothing to replay")
            return outcome
        if dry_run:
            for page in letter_pages(conn, selection):
                replays = _planned(page, say)
                for r in replays:
                    say(f"  would publish {len(r.payload):,} bytes to {r.topic} ({_letters(r)})")
            return outcome
        with _AckListener(settings) as link:
            for page in letter_pages(conn, selection):
                for replay in _planned(page, say):
                    link.listen(replay.edge_id)
                    link.publish(replay, done=outcome.published)
                    mark_replayed(conn, replay.dead_letter_ids)
                    outcome.sent.append(Sent(replay.topic, replay.dead_letter_ids, replay.batch_id))
                    say(f"  published message {outcome.published} ({_letters(replay)})")
            if not outcome.sent:
                say("nothing to replay")
                return outcome
            expected = {s.batch_id for s in outcome.sent if s.batch_id is not None}
            outcome.acked = link.wait_for(expected, wait_s)
    _report(outcome, wait_s, say)
    return outcome


def _planned(page: list[KeptLetter], say: Say) -> list[Replay]:
    replays, refused = plan_replays(page, datetime.now(UTC))
    for item in refused:
        say(f"dead letter {item.dead_letter_id} cannot be replayed: {item.reason}")
    return replays


def _report(outcome: Outcome, wait_s: float, say: Say) -> None:
    for sent in outcome.sent:
        heard = outcome.acked.get(sent.batch_id) if sent.batch_id else None
        if heard is None:
            say(
                f"  {_letters(sent)}: no ack within {wait_s:g} s — is an ingest worker "
                "running? If so it was refused again, unread: see the dead letters (within "
                "the hour, as a repeat on this one)"
            )
        else:
            refused = len(heard.refused_codes)
            codes = sorted(set(heard.refused_codes))
            say(
                f"  {_letters(sent)}: {heard.stored} reading(s) stored, "
                f"{refused} refused{' (' + ', '.join(codes) + ')' if codes else ''}"
            )


class _AckListener:
    """One broker connection that publishes the replays and hears their edges' acks."""

    def __init__(self, settings: CloudSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._awaited: set[uuid.UUID] = set()
        self._acked: dict[uuid.UUID, Heard] = {}
        self._listening: set[str] = set()
        self._client = cloud_client(settings, f"replay-{uuid.uuid4().hex[:8]}")
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._subscribed: set[int] = set()
        self._client.on_message = self._on_message

    def __enter__(self) -> _AckListener:
        self._client.connect_async(self._settings.mqtt_host, self._settings.mqtt_port, 30)
        self._client.loop_start()
        if not self._connected.wait(10):
            self.__exit__(None, None, None)
            raise ReplayError(
                f"no broker at {self._settings.mqtt_host}:{self._settings.mqtt_port}; "
                "nothing was replayed"
            )
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self, _client: mqtt.Client, _u: object, _f: object, rc: object, _p: object
    ) -> None:
        if not getattr(rc, "is_failure", False):
            self._connected.set()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            ack = decode(bytes(msg.payload), Ack)
        except CareBridgeError:
            return  # not an ack this command can read: nothing to report
        with self._lock:
            # The edge's own traffic shares the topic: only the replays' acks are kept.
            if ack.batch_id in self._awaited:
                self._acked[ack.batch_id] = Heard(
                    len(ack.stored), tuple(r.code for r in ack.rejected)
                )

    def _on_subscribe(self, _c: mqtt.Client, _u: object, mid: int, _rc: object, _p: object) -> None:
        with self._lock:
            self._subscribed.add(mid)

    def listen(self, edge_id: str) -> None:
        """Hear `edge_id`'s acks from now on: called before its first replay is published,
        and returns once the broker confirms, so no ack can come before it is listened for."""
        if edge_id in self._listening:
            return
        rc, mid = self._client.subscribe(topics.acks(edge_id), qos=1)
        deadline = time.monotonic() + 10
        while rc == mqtt.MQTT_ERR_SUCCESS and time.monotonic() < deadline:
            with self._lock:
                if mid in self._subscribed:
                    self._listening.add(edge_id)
                    return
            time.sleep(0.005)
        raise ReplayError(f"could not listen for {edge_id}'s acks ({rc})")

    def publish(self, replay: Replay, *, done: int) -> None:
        if replay.batch_id is not None:
            with self._lock:
                self._awaited.add(replay.batch_id)  # before its ack can come
        sent = self._client.publish(replay.topic, replay.payload, qos=1)
        sent.wait_for_publish(10)
        if not sent.is_published():
            raise ReplayError(
                f"the broker did not take a message; {done} were replayed before it, "
                "the rest are untouched"
            )

    def wait_for(self, batch_ids: set[uuid.UUID], wait_s: float) -> dict[uuid.UUID, Heard]:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            with self._lock:
                if batch_ids <= self._acked.keys():
                    break
            time.sleep(0.05)
        with self._lock:
            return dict(self._acked)


def _letters(replay: Replay | Sent) -> str:
    ids = [str(i) for i in replay.dead_letter_ids]
    if len(ids) == 1:
        return f"dead letter {ids[0]}"
    shown = ", ".join(ids) if len(ids) <= 5 else f"{', '.join(ids[:3])}, … ({len(ids)} in all)"
    return f"dead letters {shown}"
