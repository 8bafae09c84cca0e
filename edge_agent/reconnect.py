"""How long to wait before the next connection attempt. Pure: the random source is passed in.

Exponential backoff with "full jitter" (a uniform draw below the capped exponential), so a
hundred centres that lost the broker together do not come back in lock-step. The cause
decides the scale, as Home Assistant's bleak-retry-connector does for BLE: a refused login
or a banned client id will not fix itself in a second, so those wait the maximum at once;
a busy or quota-limited broker waits longer than a plain network drop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum

from edge_agent.backoff import RetryPolicy


class Failure(StrEnum):
    NETWORK = "network"
    """TCP refused or reset, DNS, timeout: the broker or the link is down."""
    BUSY = "busy"
    """The broker answered but is overloaded (server busy, quota exceeded, rate too high)."""
    REFUSED = "refused"
    """The broker will not let us in (bad credentials, not authorised, banned)."""


# MQTT v5 CONNACK / DISCONNECT reason codes (OASIS MQTT 5.0, 3.2.2.2 and 3.14.2.1).
_REFUSED_CODES = frozenset({0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C, 0x9A, 0x9F})
_BUSY_CODES = frozenset({0x88, 0x89, 0x96, 0x97})


def classify(reason_code: int | None) -> Failure:
    """The failure kind of a CONNACK or DISCONNECT reason code; None means a network error."""
    if reason_code in _REFUSED_CODES:
        return Failure.REFUSED
    if reason_code in _BUSY_CODES:
        return Failure.BUSY
    return Failure.NETWORK


@dataclass
class Backoff:
    min_s: float
    max_s: float
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.min_s <= self.max_s:
            raise ValueError("need 0 < min_s <= max_s")

    def next_delay(self, failure: Failure) -> float:
        """The wait before the next attempt, after one more failure of this kind."""
        self.attempt += 1
        if failure is Failure.REFUSED:
            return self.max_s * self.rng.uniform(0.5, 1.0)
        scale = 4.0 if failure is Failure.BUSY else 1.0
        ceiling = RetryPolicy(self.min_s * scale, 2.0, self.max_s).ceiling(self.attempt)
        return self.min_s + self.rng.uniform(0.0, max(0.0, ceiling - self.min_s))

    def reset(self) -> None:
        """After a successful connection: the next outage starts from the minimum again."""
        self.attempt = 0
