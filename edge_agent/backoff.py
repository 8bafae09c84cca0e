"""How long to wait before trying a BLE device again, chosen by what went wrong.

Home Assistant's bleak-retry-connector taught that one backoff for every failure is wrong:
a dropped link is worth retrying at once, a device that wants pairing is not worth
hammering at all, and a meter still busy with a record procedure needs a few seconds.
Pure: the random source is a parameter, so the table is tested exactly. (The broker link
has its own policy, `edge_agent.reconnect`.)
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from device_drivers.errors import (
    ConnectionFailedError,
    DeviceNotFoundError,
    DeviceRejectedError,
    PayloadError,
    ProcedureTimeoutError,
    ProfileMismatchError,
    RecordAccessError,
)


class FailureKind(StrEnum):
    NOT_FOUND = "not_found"
    """Not advertising any more: asleep, switched off, out of range."""
    LINK = "link"
    """Could not connect, or the link dropped mid-procedure (radio noise, the user walked off)."""
    TIMEOUT = "timeout"
    """The device stopped answering, or the link was up but silent (watchdog)."""
    BUSY = "busy"
    """ATT 0x80: a record-access procedure is still running on the device."""
    NEEDS_PAIRING = "needs_pairing"
    """Insufficient authentication / encryption: staff must pair the device again."""
    PROFILE_MISMATCH = "profile_mismatch"
    """The device lacks what its profile requires: the catalogue or the device is wrong."""
    RECORD_ACCESS = "record_access"
    """The meter refused a record request."""
    OTHER = "other"


# ATT errors that only pairing (bonding, encryption) cures.
_PAIRING_ATT_ERRORS: Final = frozenset({0x05, 0x08, 0x0C, 0x0F})
_ATT_PROCEDURE_IN_PROGRESS: Final = 0x80


def classify(error: BaseException) -> FailureKind:
    """The failure kind of an exception raised by a device session."""
    if isinstance(error, DeviceNotFoundError):
        return FailureKind.NOT_FOUND
    if isinstance(error, ProcedureTimeoutError | TimeoutError):
        return FailureKind.TIMEOUT
    if isinstance(error, ConnectionFailedError):
        return FailureKind.LINK
    if isinstance(error, DeviceRejectedError):
        if error.att_error in _PAIRING_ATT_ERRORS:
            return FailureKind.NEEDS_PAIRING
        if error.att_error == _ATT_PROCEDURE_IN_PROGRESS:
            return FailureKind.BUSY
        return FailureKind.OTHER
    if isinstance(error, ProfileMismatchError):
        return FailureKind.PROFILE_MISMATCH
    if isinstance(error, RecordAccessError):
        return FailureKind.RECORD_ACCESS
    if isinstance(error, PayloadError):
        return FailureKind.OTHER
    return FailureKind.OTHER


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    first_s: float
    factor: float
    max_s: float
    jitter: float = 0.2
    """± this fraction of the delay, so several links never retry in lockstep."""

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before attempt `attempt + 1` (`attempt` ≥ 1 failures so far)."""
        return self.ceiling(attempt) * (1 + self.jitter * (2 * rand() - 1))

    def ceiling(self, attempt: int) -> float:
        """The capped exponential before jitter, after `attempt` ≥ 1 failures."""
        if attempt < 1:
            raise ValueError("attempt counts failures so far and starts at 1")
        return min(self.first_s * self.factor ** (attempt - 1), self.max_s)


DEVICE_RETRY: Final[dict[FailureKind, RetryPolicy]] = {
    FailureKind.LINK: RetryPolicy(0.5, 2.0, 30.0),
    FailureKind.TIMEOUT: RetryPolicy(2.0, 2.0, 60.0),
    FailureKind.NOT_FOUND: RetryPolicy(5.0, 2.0, 120.0),
    FailureKind.BUSY: RetryPolicy(3.0, 1.5, 15.0),
    FailureKind.RECORD_ACCESS: RetryPolicy(5.0, 2.0, 120.0),
    FailureKind.NEEDS_PAIRING: RetryPolicy(300.0, 2.0, 3600.0),
    FailureKind.PROFILE_MISMATCH: RetryPolicy(3600.0, 1.0, 3600.0),
    FailureKind.OTHER: RetryPolicy(5.0, 2.0, 300.0),
}
"""The table in docs/edge_agent.md. Kinds a person must fix wait long, and the device's
status says why, instead of a retry storm that drains its battery."""


def retry_delay(
    kind: FailureKind,
    attempt: int,
    *,
    rand: Callable[[], float] = random.random,
    table: dict[FailureKind, RetryPolicy] = DEVICE_RETRY,
) -> float:
    """Seconds before the next try after the `attempt`-th consecutive failure of `kind`."""
    return table[kind].delay(attempt, rand)
