"""The drain's pace: a token bucket, so a centre back from a long outage does not flood
the cloud. Pure: time is passed in, so it is tested without sleeping.

In steady operation an edge sends far below the rate and never waits; only a backlog is
paced. The burst lets the first batches after reconnecting go at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    rate_per_s: float
    """Readings per second the edge may send on average."""
    burst: float
    """Readings it may send at once after a quiet spell."""
    _tokens: float = field(init=False)
    _at: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or self.burst <= 0:
            raise ValueError("rate and burst must be positive")
        self._tokens = self.burst

    def _refill(self, now: float) -> None:
        if self._at is not None and now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
        if self._at is None or now > self._at:
            self._at = now

    def wait_s(self, count: int, now: float) -> float:
        """Seconds to wait before `count` readings may go (0 when they may go now).

        A batch larger than the burst goes as soon as the bucket is full, so no batch size
        can block the drain for ever.
        """
        self._refill(now)
        need = min(float(count), self.burst)
        if self._tokens >= need:
            return 0.0
        return (need - self._tokens) / self.rate_per_s

    def take(self, count: int, now: float) -> None:
        """Spend tokens for `count` readings sent now (the balance may go below zero)."""
        self._refill(now)
        self._tokens -= count
