"""Sends staff's assignments of unassigned centre readings to the cloud, and takes the answers.

`python -m edge_agent assign` only writes the decision to the local state (durable at
once, works offline). The running agent sends it as a `MeasurementAssignment` once every
reading of the measurement is acknowledged by the cloud — before that there is nothing
to assign there — and sends it again until an `AssignmentResult` arrives (the assignment
id makes that safe). The cloud applies it with the same store function as the web UI.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

from edge_agent.local_state import LocalState
from edge_agent.request_sync import Publish, RequestSync
from protocols import topics
from protocols.messages import AssignmentResult, MeasurementAssignment, encode

log = logging.getLogger("carebridge.edge.assignments")

ReadingStates = Callable[[Iterable[str]], Awaitable[dict[str, str]]]


class AssignmentSync(RequestSync[AssignmentResult]):
    result_model = AssignmentResult
    log = log

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
        super().__init__(edge_id=edge_id, publish=publish, resend_after=resend_after, now=now)
        self.state = state
        self._reading_states = reading_states

    @property
    def result_topic(self) -> str:
        return topics.assignment_results(self.edge_id)

    async def step(self) -> int:
        """Apply results that came in, send what is ready; returns how many were sent."""
        for result in self._take_results():
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
            topic = topics.assignments(self.edge_id)
            if self._send(item.assignment_id, topic, encode(message), now):
                await self.state.mark_assignment_sent(item.assignment_id, now)
                sent += 1
        return sent
