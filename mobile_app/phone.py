"""`Phone`: everything the app does that is not drawing — binding, the embedded home edge,
measuring, the local history and messages. View-models call it; it knows nothing of Kivy.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from edge_agent.provisioning import CREDENTIALS_FILE
from mobile_app import binding
from mobile_app.home_edge import HomeEdge, edge_settings
from mobile_app.local_store import LocalStore, StoredMeasurement
from mobile_app.measuring import Backends, TakenMeasurement, readings_of
from mobile_app.profile import Member, Profile, delete_profile, load_profile, save_profile
from mobile_app.tiers import Verdict, judge_readings
from protocols.messages import PatientNotification
from protocols.reading import MealContext, Reading

log = logging.getLogger("carebridge.app")

Provisioner = Callable[[str, str, Path, str], Awaitable[binding.Binding]]
"""(cloud_url, code, data_dir, credentials file name) → `Binding`; a fake in unit tests."""
MEMBER_CREDENTIALS = "member-credentials.json"


@dataclass(frozen=True)
class InboxItem:
    note: PatientNotification
    unread: bool


@dataclass(frozen=True)
class Recorded:
    measurement: StoredMeasurement
    readings: list[Reading]
    verdict: Verdict | None


class Phone:
    def __init__(
        self,
        data_dir: Path,
        *,
        cloud_url: str,
        backends: Backends | None = None,
        provisioner: Provisioner = binding.provision,
        agent_overrides: dict[str, object] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.default_cloud_url = cloud_url
        self.backends = backends or Backends()
        self._provisioner = provisioner
        self._agent_overrides = agent_overrides or {}
        self.profile: Profile | None = load_profile(data_dir)
        self.store = LocalStore(data_dir / "app.sqlite3")
        self.edge: HomeEdge | None = None
        self.inbox: list[InboxItem] = []
        """Messages for the phone's members, newest first (cached for the screens)."""
        self.message_listeners: list[Callable[[PatientNotification], None]] = []

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def bound(self) -> bool:
        return self.profile is not None

    async def start(self) -> None:
        """Start the embedded agent (if bound): readings waiting from last time go out."""
        if self.profile is None or self.edge is not None:
            return
        settings = edge_settings(self.profile, self.data_dir, **self._agent_overrides)
        self.edge = HomeEdge(settings, self._message_arrived)
        await self.edge.start()
        await self.load_inbox()
        log.info("home edge started", extra={"edge_id": self.profile.edge_id})

    async def stop(self) -> None:
        if self.edge is not None:
            await self.edge.stop()
            self.edge = None

    def close(self) -> None:
        self.store.close()

    # -- binding -----------------------------------------------------------------------

    async def bind(self, entered: str) -> Profile:
        """First run: the owner's code binds the phone and starts the agent."""
        code, cloud_url = binding.parse_code(entered)
        cloud_url = cloud_url or self.default_cloud_url
        bound = await self._provisioner(cloud_url, code, self.data_dir, CREDENTIALS_FILE)
        self.profile = Profile(
            cloud_url=cloud_url,
            edge_id=bound.edge_id,
            members=[Member(patient_id=bound.patient_id, name="本人")],
            current_patient_id=bound.patient_id,
        )
        self.save()
        await self.start()
        return self.profile

    async def add_member(self, entered: str, name: str) -> Member:
        """A family member (就诊人) with their own code; this phone's edge measures for
        them too, attributing readings to their patient id. Spending the code gives the
        member an edge of their own in the cloud, which this phone does not use: its
        broker account is deleted at once."""
        profile = self._profile()
        code, cloud_url = binding.parse_code(entered)
        bound = await self._provisioner(
            cloud_url or profile.cloud_url, code, self.data_dir, MEMBER_CREDENTIALS
        )
        (self.data_dir / MEMBER_CREDENTIALS).unlink(missing_ok=True)
        member = Member(patient_id=bound.patient_id, name=name.strip() or bound.patient_id)
        profile.members = [m for m in profile.members if m.patient_id != member.patient_id]
        profile.members.append(member)
        self.save()
        return member

    def choose_member(self, patient_id: str) -> None:
        profile = self._profile()
        if patient_id not in {m.patient_id for m in profile.members}:
            raise KeyError(patient_id)
        profile.current_patient_id = patient_id
        self.save()

    async def sign_out(self, *, force: bool = False) -> int:
        """Forget the binding. Refused (returns the count) while readings wait to upload,
        unless forced: signing out must never silently lose a reading."""
        waiting = await self.edge.pending_count() if self.edge is not None else 0
        if waiting and not force:
            return waiting
        await self.stop()
        delete_profile(self.data_dir)
        (self.data_dir / CREDENTIALS_FILE).unlink(missing_ok=True)
        self.inbox = []
        self.store.forget_everything()
        self.profile = None
        return 0

    def save(self) -> None:
        save_profile(self.data_dir, self._profile())

    def _profile(self) -> Profile:
        if self.profile is None:
            raise RuntimeError("the phone is not bound")
        return self.profile

    # -- measurements ------------------------------------------------------------------

    async def record(
        self, taken: TakenMeasurement, *, meal: MealContext | None = None
    ) -> Recorded | None:
        """Hand every record of a session to the agent (durable on return), keep them in
        the history, and judge the newest; `meal` fills in what the meter did not send."""
        profile = self._profile()
        patient_id = profile.current_patient_id
        result: Recorded | None = None
        for record in taken.records:
            is_result = record is taken.result
            if is_result and meal is not None and record.context.meal is None:
                record = dataclasses.replace(
                    record, context=record.context.model_copy(update={"meal": meal})
                )
            readings = readings_of(taken, record, patient_id)
            if not readings:
                continue
            if self.edge is not None:
                await self.edge.submit(readings)
            verdict = judge_readings(readings)
            stored = self.store.add_measurement(readings, verdict.tier if verdict else None)
            if is_result:
                result = Recorded(stored, readings, verdict)
        return result

    async def states(self, reading_ids: list[str]) -> dict[str, str]:
        if self.edge is None:
            return dict.fromkeys(reading_ids, "pending")
        return await self.edge.states(reading_ids)

    # -- messages ----------------------------------------------------------------------

    async def load_inbox(self) -> list[InboxItem]:
        if self.edge is None or self.profile is None:
            self.inbox = []
            return self.inbox
        members = [m.patient_id for m in self.profile.members]
        notes = await self.edge.notifications(members)
        unread = await self.edge.unread_ids()
        self.inbox = [InboxItem(note, note.notification_id in unread) for note in notes]
        return self.inbox

    async def mark_all_read(self) -> None:
        if self.edge is not None:
            await self.edge.mark_read(i.note.notification_id for i in self.inbox if i.unread)
        await self.load_inbox()

    def _message_arrived(self, note: PatientNotification) -> None:
        self.inbox.insert(0, InboxItem(note, True))
        for listener in list(self.message_listeners):
            listener(note)
