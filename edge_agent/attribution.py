"""Whose reading is it? Centre patient sessions and home households, as pure rules.

Centre mode: a shared device's reading belongs to a patient only through an explicit
session — staff picks or scans the patient for one device before measuring. A session
ends when staff closes it, when another patient's session opens on the same device, or
when it has been idle for its timeout. A reading is attributed to the session whose
window contains its measurement time; a reading outside every window, or whose time
cannot be trusted, stays unassigned for staff to assign: never dropped, never guessed.

Home mode: the phone belongs to one patient; a family member (就诊人) can be chosen for
the next measurement, for a few minutes; otherwise the reading is the owner's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

DEFAULT_SESSION_TIMEOUT: Final = timedelta(minutes=10)
DEFAULT_SESSION_GRACE: Final = timedelta(seconds=90)
"""A reading stamped this little before its session opened still belongs to it, when no
other session claims it: device clocks within the clock tolerance are not corrected."""
DEFAULT_MEMBER_CHOICE: Final = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class PatientSession:
    session_id: str
    device_key: str
    patient_id: str
    staff_id: str | None
    opened_at: datetime
    last_activity_at: datetime
    timeout: timedelta
    closed_at: datetime | None = None

    @property
    def ends_at(self) -> datetime:
        idle_end = self.last_activity_at + self.timeout
        return idle_end if self.closed_at is None else min(self.closed_at, idle_end)

    def is_open(self, now: datetime) -> bool:
        return self.closed_at is None and now < self.ends_at

    def contains(self, moment: datetime) -> bool:
        return self.opened_at <= moment <= self.ends_at

    def touched(self, at: datetime) -> PatientSession:
        """The session with activity at `at` (a reading attributed to it)."""
        if at <= self.last_activity_at or not self.is_open(at):
            return self
        return replace(self, last_activity_at=at)

    def closed(self, at: datetime) -> PatientSession:
        if self.closed_at is not None:
            return self
        return replace(self, closed_at=min(at, self.ends_at))


def sessions_closed_by_opening(
    sessions: Iterable[PatientSession], device_key: str, now: datetime
) -> list[PatientSession]:
    """The sessions on `device_key` that opening a new one there ends (closed at `now`)."""
    return [s.closed(now) for s in sessions if s.device_key == device_key and s.is_open(now)]


class Unassigned(StrEnum):
    """Why a centre reading has no patient."""

    NO_SESSION = "no_session"
    TIME_UNTRUSTED = "time_untrusted"


@dataclass(frozen=True, slots=True)
class Attribution:
    patient_id: str | None
    staff_id: str | None = None
    session: PatientSession | None = None
    unassigned: Unassigned | None = None


def attribute_centre(
    sessions: Sequence[PatientSession],
    *,
    device_key: str,
    measured_at: datetime,
    time_trusted: bool,
    grace: timedelta = DEFAULT_SESSION_GRACE,
) -> Attribution:
    """The session a centre reading belongs to, or why none does."""
    if not time_trusted:
        return Attribution(None, unassigned=Unassigned.TIME_UNTRUSTED)
    mine = [s for s in sessions if s.device_key == device_key]
    inside = [s for s in mine if s.contains(measured_at)]
    if not inside:
        # Only when no session's own window claims it: just before an opening.
        inside = [s for s in mine if s.opened_at - grace <= measured_at < s.opened_at]
    if not inside:
        return Attribution(None, unassigned=Unassigned.NO_SESSION)
    session = max(inside, key=lambda s: s.opened_at)
    return Attribution(session.patient_id, session.staff_id, session)


@dataclass(frozen=True, slots=True)
class MemberChoice:
    """A family member chosen on the phone for the next measurement(s)."""

    patient_id: str
    chosen_at: datetime
    expires_at: datetime

    def contains(self, moment: datetime) -> bool:
        return self.chosen_at <= moment <= self.expires_at


def attribute_home(
    owner_id: str,
    *,
    members: Iterable[str] = (),
    choice: MemberChoice | None = None,
    measured_at: datetime,
    received_at: datetime,
) -> Attribution:
    """The owner, or the family member chosen when the reading was taken.

    A choice counts for a reading measured or received inside it (a cuff that stamps an
    unset clock is received, not measured, inside it); a member no longer in the
    household never gets a reading."""
    if (
        choice is not None
        and choice.patient_id in set(members)
        and (choice.contains(measured_at) or choice.contains(received_at))
    ):
        return Attribution(choice.patient_id)
    return Attribution(owner_id)
