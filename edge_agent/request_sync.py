"""What every edge → cloud request needs: send until the cloud's result arrives.

An edge's requests (a centre's assignments, a patient's questionnaire answers) are kept
on disk by their owners; the subclass's `step` sends what is due and applies results.
Results come in on the uplink's thread-free callback (`on_result_payload`, registered in
`MqttUplink.extra_topics` under `result_topic`) and wake the loop at once. Each request
carries its own id, which makes resending it safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from protocols.errors import CareBridgeError
from protocols.messages import _Message, decode

R = TypeVar("R", bound=_Message)

Publish = Callable[[str, bytes], bool]


class RequestSync(ABC, Generic[R]):
    """Subclasses name their result topic and say what one round of sending does."""

    result_model: type[R]
    log: logging.Logger

    def __init__(
        self,
        *,
        edge_id: str,
        publish: Publish,
        resend_after: timedelta = timedelta(seconds=30),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.edge_id = edge_id
        self._publish = publish
        self._resend_after = resend_after
        self._now = now
        self._wake = asyncio.Event()
        self._results: asyncio.Queue[R] = asyncio.Queue()
        self._sent_at: dict[str, datetime] = {}
        """When this process last sent each request; after a restart all are due."""

    @property
    @abstractmethod
    def result_topic(self) -> str: ...

    @abstractmethod
    async def step(self) -> int:
        """Apply results that came in, send what is due; returns how many were sent."""

    def on_result_payload(self, payload: bytes) -> None:
        """The uplink's handler for the results topic (runs on the event loop)."""
        try:
            self._results.put_nowait(decode(payload, self.result_model))
        except CareBridgeError as exc:
            self.log.error("unreadable result", extra={"code": exc.code, "reason": exc.reason})
            return
        self._wake.set()

    def wake(self) -> None:
        """Something new to send: do not wait for the next tick."""
        self._wake.set()

    def _take_results(self) -> list[R]:
        taken: list[R] = []
        while not self._results.empty():
            taken.append(self._results.get_nowait())
        return taken

    def _due(self, request_id: str, now: datetime) -> bool:
        last = self._sent_at.get(request_id)
        return last is None or now - last >= self._resend_after

    def _send(self, request_id: str, topic: str, payload: bytes, now: datetime) -> bool:
        if not self._publish(topic, payload):
            return False
        self._sent_at[request_id] = now
        return True

    async def run(self, stop: asyncio.Event, every: float = 1.0) -> None:
        while not stop.is_set():
            # Cleared before the step, so a result arriving during it is not slept through.
            self._wake.clear()
            try:
                await self.step()
            except Exception:  # the agent keeps running; the next step tries again
                self.log.exception("request sync step failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every):
                    await self._wake.wait()
