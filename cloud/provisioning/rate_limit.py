"""Failed enrolment attempts per client address, in a sliding window (pure: time is passed in).

A code is one of 6.6 × 10¹¹ and lives minutes, so guessing is already hopeless; the limit
makes it visibly so and keeps a misbehaving script from hammering the database.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta


class FailureLimiter:
    def __init__(self, limit: int, window: timedelta, *, max_keys: int = 10_000) -> None:
        if limit < 1 or window <= timedelta(0):
            raise ValueError("limit must be ≥ 1 and window positive")
        self.limit = limit
        self.window = window
        self._max_keys = max_keys
        self._failures: dict[str, deque[datetime]] = {}

    def retry_after(self, key: str, now: datetime) -> float | None:
        """Seconds until `key` may try again, or None when it may try now."""
        times = self._recent(key, now)
        if len(times) < self.limit:
            return None
        return max((times[0] + self.window - now).total_seconds(), 0.0)

    def failed(self, key: str, now: datetime) -> None:
        if key not in self._failures and len(self._failures) >= self._max_keys:
            self._forget_stale(now)
        self._failures.setdefault(key, deque()).append(now)

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
        return times

    def _forget_stale(self, now: datetime) -> None:
        # Bounded memory whatever the number of addresses: drop those with nothing recent,
        # and if all are recent, the one whose last failure is oldest.
        for key in list(self._failures):
            self._recent(key, now)
        if len(self._failures) >= self._max_keys:
            oldest = min(self._failures, key=lambda k: self._failures[k][-1])
            del self._failures[oldest]
