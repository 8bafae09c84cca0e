"""Where to look for a stored copy of a reading whose time an edge estimated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cloud.ingest.intake import AcceptedReading
from cloud.ingest.resent_copies import first_of_each_id, is_edge_timed, lookup_windows
from protocols.reading import Reading, StatusFlag
from simulators.readings import SimulatedGlucoseMeter

ZONE = ZoneInfo("Asia/Shanghai")
DAY = timedelta(days=1)
METER = SimulatedGlucoseMeter("G-COPIES")  # one meter: every record gets its own id


def reading(device_time: datetime | None, *flags: StatusFlag) -> Reading:
    (r,) = METER.measure(6.1, patient_id="P1")
    return r.model_copy(update={"device_time": device_time, "flags": frozenset(flags)})


def test_only_readings_with_an_edge_estimated_time_are_looked_for():
    trusted = reading(datetime(2026, 5, 1, 8, 0))
    unusual = reading(datetime(2026, 5, 1, 8, 0), StatusFlag.UNUSUAL_VALUE)
    corrected = reading(datetime(2026, 5, 1, 8, 0), StatusFlag.CLOCK_CORRECTED)
    unset = reading(datetime(2026, 5, 2, 8, 0), StatusFlag.CLOCK_UNSET)
    never_stamped = reading(None, StatusFlag.CLOCK_UNSET)
    assert [is_edge_timed(r) for r in (trusted, unusual, corrected, unset)] == [
        False, False, True, True
    ]  # fmt: skip
    windows = lookup_windows([trusted, unusual, corrected, unset, never_stamped], ZONE)
    assert len(windows) == 1
    assert set(windows[0].reading_ids) == {corrected.reading_id, unset.reading_id}


def test_a_naive_device_time_is_read_in_the_hospitals_zone_with_a_days_margin():
    r = reading(datetime(2026, 5, 1, 8, 0), StatusFlag.CLOCK_CORRECTED)
    (window,) = lookup_windows([r], ZONE)
    at = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    assert (window.since, window.until) == (at - DAY, at + DAY)


def test_an_aware_device_time_keeps_its_own_offset():
    stamped = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    (window,) = lookup_windows([reading(stamped, StatusFlag.CLOCK_CORRECTED)], ZONE)
    assert (window.since, window.until) == (stamped - DAY, stamped + DAY)


def test_nearby_times_share_a_window_and_distant_ones_get_their_own():
    # A meter's memory over three weeks, and one record from a clock reset to its epoch:
    # one window spanning 2000 to 2026 would make the database read every chunk.
    weeks = [
        reading(datetime(2026, 5, 1) + timedelta(days=d), StatusFlag.CLOCK_CORRECTED)
        for d in (20, 0, 1, 3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 18, 19)
    ]
    epoch = reading(datetime(2000, 1, 1, 0, 5), StatusFlag.CLOCK_CORRECTED)
    windows = lookup_windows([*weeks, epoch], ZONE)
    assert [w.reading_ids for w in windows] == [
        (epoch.reading_id,),
        tuple(r.reading_id for r in sorted(weeks, key=lambda r: r.device_time)),
    ]
    assert windows[1].since == datetime(2026, 4, 30, tzinfo=ZONE)
    assert windows[1].until == datetime(2026, 5, 22, tzinfo=ZONE)
    gap = [
        reading(datetime(2026, 5, 1), StatusFlag.CLOCK_CORRECTED),
        reading(datetime(2026, 5, 3, 0, 0, 1), StatusFlag.CLOCK_CORRECTED),
    ]
    assert len(lookup_windows(gap, ZONE)) == 2


def test_the_first_copy_of_each_id_in_a_flush_is_kept():
    first = reading(datetime(2026, 5, 1, 8, 0), StatusFlag.CLOCK_CORRECTED)
    again = first.model_copy(update={"measured_at": first.measured_at + timedelta(seconds=3)})
    other = reading(None)
    items = [AcceptedReading("edge-a", first), AcceptedReading("edge-b", again),
             AcceptedReading("edge-a", other)]  # fmt: skip
    assert first_of_each_id(items) == [items[0], items[2]]
