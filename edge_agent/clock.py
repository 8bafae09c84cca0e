"""When was a record really measured? Device clocks versus the agent's clock.

A device stamps records with its own clock: local time, no zone, often wrong (batteries
swapped, never set, drifting for months). The agent reads the device's clock when it
connects, before setting it, and so knows the offset the device's stored records were
taken under. The rules (docs/edge_agent.md, "Clock rules"):

1. The device says its clock was never set → measured at the agent's receive time,
   flagged `clock_unset`; the device time stays None.
2. No device time at all (a live value the device does not stamp) → the receive time.
3. Offset unknown (no readable clock) → the device time is trusted unless it lies in the
   future by more than the tolerance: then it cannot be right, so the receive time is used
   and the reading is flagged `clock_unset` (time untrusted).
4. Offset within the tolerance → the device time as it is.
5. Offset beyond the tolerance → the device time minus the offset, flagged
   `clock_corrected`, unless the record was taken after the agent set the clock (received
   after the set and its device time agrees with the agent's clock): then it is used as is.
   A corrected time in the future (the device's memory spans an earlier clock change) is
   not trusted: receive time and `clock_unset`.

The device's own timestamp is always kept (`Reading.device_time`), so the skew of every
stored reading is `device_time - measured_at`, and the cloud can audit each correction.
Pure: no clocks are read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Final

from protocols.reading import StatusFlag

DEFAULT_TOLERANCE: Final = timedelta(seconds=90)
"""A device clock this close to the agent's is fine: minutes matter for rules, not seconds,
and correcting small drifts would make a record's time depend on when it was downloaded."""


def device_local(moment: datetime, zone: tzinfo) -> datetime:
    """An aware agent time as the naive wall-clock time a device in `zone` shows."""
    if moment.tzinfo is None:
        raise ValueError("agent times carry a time zone")
    return moment.astimezone(zone).replace(tzinfo=None)


def clock_offset(
    device_now: datetime | None, agent_now: datetime, zone: tzinfo
) -> timedelta | None:
    """Device clock minus agent clock (both as wall-clock time in `zone`), to the second;
    None when the device's clock is not set."""
    if device_now is None:
        return None
    offset = device_now - device_local(agent_now, zone)
    return timedelta(seconds=round(offset.total_seconds()))


@dataclass(frozen=True, slots=True)
class TimeVerdict:
    measured_at: datetime
    flags: frozenset[StatusFlag]

    @property
    def trusted(self) -> bool:
        return StatusFlag.CLOCK_UNSET not in self.flags


def judge_time(
    *,
    device_time: datetime | None,
    clock_set: bool,
    received_at: datetime,
    zone: tzinfo,
    offset: timedelta | None,
    clock_set_at: datetime | None = None,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> TimeVerdict:
    """The best time for one record, and the flags that say how it was found.

    `offset` is what `clock_offset` measured when the session began; `clock_set_at` is
    when the agent wrote the device's clock in this session (None if it could not)."""
    if received_at.tzinfo is None:
        raise ValueError("received_at must carry a time zone")
    if not clock_set:
        return TimeVerdict(received_at, frozenset({StatusFlag.CLOCK_UNSET}))
    if device_time is None:
        return TimeVerdict(received_at, frozenset())
    stamped = device_time.replace(tzinfo=zone)
    if offset is None:
        if stamped - received_at > tolerance:
            return TimeVerdict(received_at, frozenset({StatusFlag.CLOCK_UNSET}))
        return TimeVerdict(stamped, frozenset())
    if abs(offset) <= tolerance:
        return TimeVerdict(stamped, frozenset())
    taken_after_set = (
        clock_set_at is not None
        and received_at >= clock_set_at
        and abs(stamped - received_at) <= tolerance
    )
    if taken_after_set:
        return TimeVerdict(stamped, frozenset())
    corrected = stamped - offset
    if corrected - received_at > tolerance:
        return TimeVerdict(received_at, frozenset({StatusFlag.CLOCK_UNSET}))
    return TimeVerdict(corrected, frozenset({StatusFlag.CLOCK_CORRECTED}))
