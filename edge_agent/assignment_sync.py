"""Sends staff's assignments of unassigned centre readings to the cloud, and takes the answers.

`python -m edge_agent assign` only writes the decision to the local state (durable at
once, works offline). The running agent sends it as a `MeasurementAssignment` once every
reading of the measurement is acknowledged by the cloud — before that there is nothing
to assign there — and sends it again until an `AssignmentResult` arrives (the assignment
id makes that safe). The cloud applies it with the same store function as the web UI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

from edge_agent.local_state import LocalState
from protocols import topics
from protocols.errors import CareBridgeError
from protocols.messages import AssignmentResult, MeasurementAssignment, decode, encode

log = logging.getLogger("carebridge.edge.assignments")

ReadingStates = Callable[[Iterable[str]], Awaitable[dict[str, str]]]
Publish = Callable[[str, bytes], bool]


class AssignmentSync:
    def __init__(
        self,
        *,
        edge_id: str,
        state: LocalState,
        reading_states: ReadingStates,
        publish: Publish,
        resend_after: timedelta = timedelta(seconds=30),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.edge_id = edge_id
        self.state = state
        self._reading_states = reading_states
        self._publish = publish
        self._resend_after = resend_after
        self._now = now
        self._wake = asyncio.Event()
        self._results: asyncio.Queue[AssignmentResult] = asyncio.Queue()
        self._sent_at: dict[str, datetime] = {}
        """When this process last sent each assignment; after a restart all are due."""

    @property
    def result_topic(self) -> str:
        return topics.assignment_results(self.edge_id)

    def on_result_payload(self, payload: bytes) -> None:
        """The uplink's handler for the results topic (runs on the event loop)."""
        try:
            self._results.put_nowait(decode(payload, AssignmentResult))
        except CareBridgeError as exc:
            log.error(
                "unreadable assignment result", extra={"code": exc.code, "reason": exc.reason}
            )
            return
        self._wake.set()

    async def step(self) -> int:
        """Apply results that came in, send what is ready; returns how many were sent."""
        while not self._results.empty():
            result = self._results.get_nowait()
            applied = await self.state.apply_assignment_result(
                result.assignment_id.hex, result.status.value, result.reason
            )
            log.info(
                "assignment answered",
                extra={
                    "measurement_id": str(result.measurement_id),
                    "status": result.status.value,
                    "known": applied,
                },
            )
        now = self._now()
        sent = 0
        for item in await self.state.unassigned(states=("requested", "sent")):
            if item.assignment_id is None or item.patient_id is None:
                continue
            if item.state == "sent" and not self._due(item.assignment_id, now):
                continue
            states = await self._reading_states(item.reading_ids)
            if any(value == "rejected" for value in states.values()):
                await self.state.apply_assignment_result(
                    item.assignment_id,
                    "not_found",
                    "the cloud refused these readings; there is nothing to assign",
                )
                continue
            if not all(value == "acked" for value in states.values()):
                continue
            message = MeasurementAssignment(
                edge_id=self.edge_id,
                assignment_id=uuid.UUID(item.assignment_id),
                measurement_id=item.measurement_id,
                patient_id=item.patient_id,
                staff_id=item.staff_id,
                note=item.note,
                requested_at=now,
            )
            if self._publish(topics.assignments(self.edge_id), encode(message)):
                await self.state.mark_assignment_sent(item.assignment_id, now)
                self._sent_at[item.assignment_id] = now
                sent += 1
        return sent

    def _due(self, assignment_id: str, now: datetime) -> bool:
        last = self._sent_at.get(assignment_id)
        return last is None or now - last >= self._resend_after

    async def run(self, stop: asyncio.Event, every: float = 1.0) -> None:
        while not stop.is_set():
            try:
                await self.step()
            except Exception:  # the agent keeps running; the next step tries again
                log.exception("assignment sync step failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every):
                    await self._wake.wait()
