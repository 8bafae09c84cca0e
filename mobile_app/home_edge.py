"""The edge agent inside the app, in home mode: outbox → MQTT → cloud, on the app's loop.

Readings follow exactly the path of a centre's: `EdgeAgent.submit` makes them durable in
the SQLite outbox before it returns, and the agent's loop sends them whenever the broker
is reachable. The agent's downlink keeps the cloud's configuration (the measurement
plan) and the patient's notifications; the app reads both from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from edge_agent.agent import EdgeAgent
from edge_agent.answer_sync import Answer, AnswerSync, KeptAnswers
from edge_agent.outbox import Outbox
from edge_agent.provisioning import CREDENTIALS_FILE, apply_credentials
from edge_agent.settings import EdgeSettings
from edge_agent.uplink import MqttUplink
from mobile_app.profile import Profile
from protocols.messages import EdgeConfig, PatientNotification
from protocols.questionnaires import Questionnaire
from protocols.reading import Reading

NotificationCallback = Callable[[PatientNotification], None]


def edge_settings(profile: Profile, data_dir: Path, **overrides: object) -> EdgeSettings:
    """The agent's settings for this phone: home mode, its own files, its broker account
    (from the credentials file `enrol` wrote), no local health port."""
    values: dict[str, object] = {
        "edge_id": profile.edge_id,
        "mode": "home",
        "home_patient_id": profile.owner.patient_id,
        "outbox_path": data_dir / "outbox.sqlite3",
        "state_path": data_dir / "edge-state.sqlite3",
        "credentials_path": data_dir / CREDENTIALS_FILE,
        "health_port": 0,
        # A phone sends a handful of readings a day: a short linger keeps the screen
        # snappy; a short ack timeout and reconnect cap recover fast on mobile networks.
        "linger_ms": 20,
        "ack_timeout_s": 10.0,
        "reconnect_max_s": 10.0,
        **overrides,
    }
    settings = EdgeSettings(**values)  # type: ignore[arg-type]
    return apply_credentials(settings)


class HomeEdge:
    def __init__(self, settings: EdgeSettings, on_notification: NotificationCallback) -> None:
        self.settings = settings
        self._on_notification = on_notification
        self._outbox: Outbox | None = None
        self._agent: EdgeAgent | None = None
        self._answers: AnswerSync | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._answers_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._outbox = await Outbox(self.settings.outbox_path).open()
        uplink = MqttUplink(self.settings, loop)
        self._agent = EdgeAgent(self.settings, self._outbox, uplink)
        self._agent.downlink.on_notification.append(self._on_notification)
        self._answers = await AnswerSync(
            self._outbox.db, edge_id=self.settings.edge_id, publish=uplink.publish
        ).open()
        # Before the first connection: the uplink subscribes its extra topics on connect.
        uplink.extra_topics[self._answers.result_topic] = self._answers.on_result_payload
        # run() opens the downlink too (idempotent); opening it here lets the screens read
        # the kept plan and messages before the first broker connection.
        await self._agent.downlink.open(self._outbox.db)
        self._stop.clear()
        self._task = asyncio.create_task(self._agent.run(self._stop), name="home-edge")
        self._answers_task = asyncio.create_task(
            self._answers.run(self._stop), name="home-edge-answers"
        )

    async def stop(self) -> None:
        self._stop.set()
        if self._answers_task is not None:
            await self._answers_task
            self._answers_task = None
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._outbox is not None:
            await self._outbox.close()
            self._outbox = None

    @property
    def agent(self) -> EdgeAgent:
        if self._agent is None:
            raise RuntimeError("the home edge is not running")
        return self._agent

    @property
    def config(self) -> EdgeConfig | None:
        return None if self._agent is None else self._agent.config

    @property
    def online(self) -> bool:
        return self._agent is not None and self._agent.uplink.connected.is_set()

    async def submit(self, readings: Iterable[Reading], *, device_keeps: bool = True) -> int:
        return await self.agent.submit(readings, device_keeps=device_keeps)

    async def states(self, reading_ids: Iterable[str]) -> dict[str, str]:
        """Each reading's upload state: pending | in_flight | acked | rejected | unknown."""
        return await self.agent.outbox.states(reading_ids)

    async def pending_count(self) -> int:
        stats = await self.agent.outbox.stats()
        return stats.pending

    async def notifications(self, patient_ids: Iterable[str]) -> list[PatientNotification]:
        wanted = set(patient_ids)
        found = await self.agent.downlink.notifications()
        return [note for note in found if note.patient_id in wanted]

    async def unread_ids(self) -> set[uuid.UUID]:
        unread = await self.agent.downlink.notifications(unread_only=True)
        return {note.notification_id for note in unread}

    async def mark_read(self, notification_ids: Iterable[uuid.UUID]) -> None:
        for notification_id in notification_ids:
            await self.agent.downlink.mark_read(notification_id)

    @property
    def questionnaires(self) -> dict[str, Questionnaire]:
        """The forms the cloud's configuration carries, by id."""
        config = self.config
        return {} if config is None else {q.questionnaire_id: q for q in config.questionnaires}

    async def submit_answers(
        self, patient_id: str, form: Questionnaire, answers: dict[str, Answer]
    ) -> KeptAnswers:
        """Keep the answers (durable on return); they go to the cloud when it is reachable."""
        if self._answers is None:
            raise RuntimeError("the home edge is not running")
        return await self._answers.submit(patient_id, form, answers)

    async def kept_answers(self, patient_ids: Iterable[str]) -> list[KeptAnswers]:
        if self._answers is None:
            return []
        wanted = set(patient_ids)
        return [a for a in await self._answers.kept() if a.patient_id in wanted]
