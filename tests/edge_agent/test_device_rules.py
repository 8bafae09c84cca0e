"""The pure rules of the device side: retry delays by failure kind, device clocks, and
whose reading it is (centre sessions, home households)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from device_drivers.errors import (
    ConnectionFailedError,
    DeviceNotFoundError,
    DeviceRejectedError,
    PayloadError,
    ProcedureTimeoutError,
    ProfileMismatchError,
    RecordAccessError,
)
from edge_agent.attribution import (
    MemberChoice,
    PatientSession,
    Unassigned,
    attribute_centre,
    attribute_home,
    sessions_closed_by_opening,
)
from edge_agent.backoff import DEVICE_RETRY, FailureKind, RetryPolicy, classify, retry_delay
from edge_agent.clock import clock_offset, device_local, judge_time

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


# -- backoff -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (DeviceNotFoundError("gone"), FailureKind.NOT_FOUND),
        (ConnectionFailedError("dropped"), FailureKind.LINK),
        (ProcedureTimeoutError("silent"), FailureKind.TIMEOUT),
        (TimeoutError(), FailureKind.TIMEOUT),
        (DeviceRejectedError("auth", att_error=0x05), FailureKind.NEEDS_PAIRING),
        (DeviceRejectedError("enc", att_error=0x0F), FailureKind.NEEDS_PAIRING),
        (DeviceRejectedError("busy", att_error=0x80), FailureKind.BUSY),
        (DeviceRejectedError("other", att_error=0x0E), FailureKind.OTHER),
        (ProfileMismatchError("no RACP"), FailureKind.PROFILE_MISMATCH),
        (RecordAccessError("refused", response_code=4), FailureKind.RECORD_ACCESS),
        (PayloadError("garbled"), FailureKind.OTHER),
        (RuntimeError("bug"), FailureKind.OTHER),
    ],
)
def test_each_failure_has_its_kind(error: BaseException, kind: FailureKind) -> None:
    assert classify(error) is kind


def test_delays_grow_by_kind_up_to_their_cap_without_jitter() -> None:
    middle = lambda: 0.5  # noqa: E731 - jitter factor 1.0
    assert [retry_delay(FailureKind.LINK, n, rand=middle) for n in (1, 2, 3, 7, 20)] == [
        0.5,
        1.0,
        2.0,
        30.0,
        30.0,
    ]
    # A device that wants pairing, or lacks its profile, is not hammered: a person must act.
    assert retry_delay(FailureKind.NEEDS_PAIRING, 1, rand=middle) == 300.0
    assert retry_delay(FailureKind.PROFILE_MISMATCH, 5, rand=middle) == 3600.0
    assert retry_delay(FailureKind.BUSY, 1, rand=middle) < retry_delay(
        FailureKind.RECORD_ACCESS, 1, rand=middle
    )
    assert set(DEVICE_RETRY) == set(FailureKind)


def test_jitter_spreads_delays_twenty_percent_either_way() -> None:
    policy = RetryPolicy(10.0, 2.0, 100.0, jitter=0.2)
    assert policy.delay(1, rand=lambda: 0.0) == pytest.approx(8.0)
    assert policy.delay(1, rand=lambda: 1.0) == pytest.approx(12.0)
    with pytest.raises(ValueError, match="starts at 1"):
        policy.delay(0)


# -- clock -------------------------------------------------------------------------------


def test_the_offset_is_device_minus_agent_wall_clock_to_the_second() -> None:
    device_now = datetime(2026, 12, 1, 12, 0, 0, 400000)  # Shanghai wall clock, 2 h ahead
    assert clock_offset(device_now, T0, SHANGHAI) == timedelta(hours=2)
    assert clock_offset(None, T0, SHANGHAI) is None
    assert device_local(T0, SHANGHAI) == datetime(2026, 12, 1, 10, 0)
    with pytest.raises(ValueError):
        device_local(datetime(2026, 1, 1), SHANGHAI)


def judge(device_time: datetime | None, **kwargs: object) -> tuple[datetime, frozenset[str]]:
    arguments: dict[str, object] = {
        "device_time": device_time,
        "clock_set": True,
        "received_at": T0,
        "zone": SHANGHAI,
        "offset": timedelta(0),
    }
    arguments.update(kwargs)
    verdict = judge_time(**arguments)  # type: ignore[arg-type]
    return verdict.measured_at, frozenset(flag.value for flag in verdict.flags)


def test_a_clock_never_set_gives_the_receive_time_and_the_flag() -> None:
    assert judge(None, clock_set=False) == (T0, {"clock_unset"})


def test_a_record_without_a_time_is_timed_by_its_receipt() -> None:
    assert judge(None) == (T0, frozenset())


def test_a_good_clock_is_trusted_as_it_is() -> None:
    stamped = datetime(2026, 12, 1, 9, 30)  # half an hour ago, Shanghai time
    assert judge(stamped, offset=timedelta(seconds=45)) == (
        datetime(2026, 12, 1, 1, 30, tzinfo=UTC),
        frozenset(),
    )


def test_a_clock_two_hours_ahead_is_corrected_by_the_offset_it_was_read_with() -> None:
    stamped = datetime(2026, 12, 1, 11, 30)  # really 09:30, the meter shows 11:30
    measured, flags = judge(stamped, offset=timedelta(hours=2))
    assert measured == datetime(2026, 12, 1, 1, 30, tzinfo=UTC)
    assert flags == {"clock_corrected"}


def test_a_clock_behind_is_corrected_forwards() -> None:
    stamped = datetime(2026, 12, 1, 6, 0)  # 3 h behind: really 09:00
    measured, flags = judge(stamped, offset=timedelta(hours=-3))
    assert measured == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert flags == {"clock_corrected"}


def test_a_record_taken_after_the_agent_set_the_clock_is_not_corrected() -> None:
    set_at = T0 - timedelta(seconds=20)
    live = datetime(2026, 12, 1, 10, 0)  # agrees with the agent's clock
    assert judge(live, offset=timedelta(hours=2), clock_set_at=set_at) == (T0, frozenset())
    # Without the set, the same stamp under a 2 h offset is an old record.
    measured, flags = judge(live, offset=timedelta(hours=2))
    assert (measured, flags) == (T0 - timedelta(hours=2), {"clock_corrected"})


def test_times_that_cannot_be_right_are_not_trusted() -> None:
    future = datetime(2026, 12, 1, 10, 30)  # half an hour after the receipt
    assert judge(future, offset=None) == (T0, {"clock_unset"})
    assert judge(future, offset=timedelta(minutes=-10)) == (T0, {"clock_unset"})
    with pytest.raises(ValueError):
        judge(future, received_at=datetime(2026, 12, 1))


# -- attribution ---------------------------------------------------------------------------


def session(
    patient: str, opened: int, closed: int | None = None, device: str = "AA", idle_min: int = 10
) -> PatientSession:
    at = T0 + timedelta(minutes=opened)
    return PatientSession(
        session_id=f"s-{patient}",
        device_key=device,
        patient_id=patient,
        staff_id="hm01",
        opened_at=at,
        last_activity_at=at,
        timeout=timedelta(minutes=idle_min),
        closed_at=None if closed is None else T0 + timedelta(minutes=closed),
    )


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_reading_belongs_to_the_session_open_on_its_device_when_measured() -> None:
    sessions = [session("P1", 0, 5), session("P2", 5, 9), session("P3", 0, device="BB")]
    found = attribute_centre(sessions, device_key="AA", measured_at=at(6), time_trusted=True)
    assert (found.patient_id, found.staff_id, found.unassigned) == ("P2", "hm01", None)
    # Downloaded late, a record measured during P1's session is still P1's.
    assert attribute_centre(sessions, device_key="AA", measured_at=at(2), time_trusted=True)
    late = attribute_centre(sessions, device_key="AA", measured_at=at(2), time_trusted=True)
    assert late.patient_id == "P1"


def test_no_session_or_an_untrusted_time_leaves_the_reading_unassigned() -> None:
    sessions = [session("P1", 0, 5)]
    after = attribute_centre(sessions, device_key="AA", measured_at=at(7), time_trusted=True)
    assert (after.patient_id, after.unassigned) == (None, Unassigned.NO_SESSION)
    other = attribute_centre(sessions, device_key="BB", measured_at=at(2), time_trusted=True)
    assert other.unassigned is Unassigned.NO_SESSION
    untrusted = attribute_centre(sessions, device_key="AA", measured_at=at(2), time_trusted=False)
    assert (untrusted.patient_id, untrusted.unassigned) == (None, Unassigned.TIME_UNTRUSTED)


def test_sessions_time_out_when_idle_and_activity_extends_them() -> None:
    idle = session("P1", 0, idle_min=10)
    assert (
        attribute_centre([idle], device_key="AA", measured_at=at(11), time_trusted=True).patient_id
        is None
    )
    busy = idle.touched(at(8))
    assert busy.ends_at == at(18)
    assert (
        attribute_centre([busy], device_key="AA", measured_at=at(11), time_trusted=True).patient_id
        == "P1"
    )
    assert busy.touched(at(30)) is busy  # a timed-out session is not revived
    assert busy.closed(at(12)).ends_at == at(12)


def test_a_slightly_early_stamp_goes_to_the_opening_session_only_if_no_other_claims_it() -> None:
    first = [session("P2", 5)]
    early = attribute_centre(first, device_key="AA", measured_at=at(4.5), time_trusted=True)
    assert early.patient_id == "P2"
    both = [session("P1", 0, 5), session("P2", 5)]
    claimed = attribute_centre(both, device_key="AA", measured_at=at(4.5), time_trusted=True)
    assert claimed.patient_id == "P1"


def test_opening_a_session_closes_the_one_open_on_that_device_only() -> None:
    closed = sessions_closed_by_opening(
        [session("P1", 0), session("P3", 0, device="BB"), session("P0", -30, -20)], "AA", at(3)
    )
    assert [(s.patient_id, s.closed_at) for s in closed] == [("P1", at(3))]


def test_home_readings_are_the_owners_unless_a_member_was_chosen_for_them() -> None:
    choice = MemberChoice("MOTHER", at(0), at(5))
    members = ["MOTHER"]
    assert attribute_home("OWNER", measured_at=at(1), received_at=at(1)).patient_id == "OWNER"
    chosen = attribute_home(
        "OWNER", members=members, choice=choice, measured_at=at(1), received_at=at(1)
    )
    assert chosen.patient_id == "MOTHER"
    # A cuff with a wrong clock: received inside the choice, so still the member's.
    received = attribute_home(
        "OWNER", members=members, choice=choice, measured_at=at(-90), received_at=at(2)
    )
    assert received.patient_id == "MOTHER"
    expired = attribute_home(
        "OWNER", members=members, choice=choice, measured_at=at(9), received_at=at(9)
    )
    assert expired.patient_id == "OWNER"
    removed = attribute_home(
        "OWNER", members=[], choice=choice, measured_at=at(1), received_at=at(1)
    )
    assert removed.patient_id == "OWNER"
