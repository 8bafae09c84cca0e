"""Daily rollups checked against the raw readings, and rebuilt where they differ: what
`refresh_continuous_aggregate` is to a continuous aggregate, for `readings_daily`
(`python -m cloud rollups`).

Ingest keeps the rollups exact in the statement that stores the readings, so a difference
means something went around it: a restore of one table without the other, a hand-made
correction, a bug. The check is one statement per slice of days, so it sees readings and
rollups as of one instant, whatever ingest commits meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from cloud.readings.rollup_days import CheckPlan, DayRange

SUM_TOLERANCE = 1e-9
"""Relative: a rollup adds its values one flush at a time, the check all at once, and
floating-point sums depend on the order."""

LOCK_TIMEOUT = "10s"
"""How long a rebuild waits for the ingest flushes in progress; it fails rather than hold
every later flush behind it for longer."""


@dataclass(frozen=True)
class Totals:
    n: int
    min_value: float
    max_value: float
    sum_value: float

    def __str__(self) -> str:
        return f"n={self.n} min={self.min_value:g} max={self.max_value:g} sum={self.sum_value:g}"


@dataclass(frozen=True)
class RollupDifference:
    patient_id: str
    metric: str
    day: date
    stored: Totals | None
    raw: Totals | None
    """What the raw readings add up to; None when the day has none (a rollup too many)."""

    def __str__(self) -> str:
        return (
            f"{self.day} {self.patient_id} {self.metric}: rollup "
            f"{self.stored or 'missing'}, readings {self.raw or 'none'}"
        )


def readings_dropped_until(conn: psycopg.Connection) -> datetime | None:
    """How far retention has dropped raw readings; None if it never has."""
    row = conn.execute("SELECT until FROM readings_dropped_until").fetchone()
    return row[0] if row else None


def _bounds(days: DayRange, timezone: str) -> dict[str, object]:
    zone = ZoneInfo(timezone)
    return {
        "first": days.first,
        "last": days.last,
        "tz": timezone,
        # Constant bounds, so only the chunks of these days are read.
        "since": datetime.combine(days.first, time(0), zone),
        "until": datetime.combine(days.last + timedelta(days=1), time(0), zone),
        "tol": SUM_TOLERANCE,
    }


# The same day and filter as ingest's `ROLLUPS_OF_INS` (cloud/db/ingest_store.py).
_RAW_TOTALS = """
SELECT patient_id, metric, (time AT TIME ZONE %(tz)s)::date AS day,
       count(*)::integer AS n, min(value) AS min_value, max(value) AS max_value,
       sum(value) AS sum_value
FROM readings
WHERE patient_id IS NOT NULL AND time >= %(since)s AND time < %(until)s
GROUP BY 1, 2, 3
"""

_DIFFERENCES = f"""
SELECT coalesce(r.patient_id, d.patient_id), coalesce(r.metric, d.metric),
       coalesce(r.day, d.day),
       d.n, d.min_value, d.max_value, d.sum_value, r.n, r.min_value, r.max_value, r.sum_value
FROM ({_RAW_TOTALS}) r
FULL JOIN (SELECT * FROM readings_daily WHERE day BETWEEN %(first)s AND %(last)s) d
    ON d.patient_id = r.patient_id AND d.metric = r.metric AND d.day = r.day
WHERE r.n IS DISTINCT FROM d.n
   OR r.min_value IS DISTINCT FROM d.min_value
   OR r.max_value IS DISTINCT FROM d.max_value
   OR abs(r.sum_value - d.sum_value)
      > %(tol)s * greatest(abs(r.sum_value), abs(d.sum_value), 1)
ORDER BY 3, 1, 2
"""


def _totals(values: tuple[Any, ...]) -> Totals | None:
    n, low, high, total = values
    return None if n is None else Totals(n, low, high, total)


def differences(conn: psycopg.Connection, days: DayRange, timezone: str) -> list[RollupDifference]:
    """Every rollup of `days` that its raw readings do not add up to, and every day with
    readings but no rollup; by day, patient and metric."""
    rows = conn.execute(_DIFFERENCES, _bounds(days, timezone), prepare=False).fetchall()
    return [
        RollupDifference(row[0], row[1], row[2], _totals(row[3:7]), _totals(row[7:11]))
        for row in rows
    ]


def rebuild(conn: psycopg.Connection, days: DayRange, timezone: str) -> None:
    """Replace the rollups of `days` with what their raw readings add up to, in one
    transaction.

    `SHARE ROW EXCLUSIVE` on `readings_daily` waits for the ingest statements writing to it
    and holds off new ones until the commit (readers go on), so no flush's readings are
    counted twice or lost between the delete and the insert."""
    params = _bounds(days, timezone)
    with conn.transaction():
        conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        conn.execute("LOCK TABLE readings_daily IN SHARE ROW EXCLUSIVE MODE")
        conn.execute("DELETE FROM readings_daily WHERE day BETWEEN %(first)s AND %(last)s", params)
        conn.execute(
            "INSERT INTO readings_daily (patient_id, metric, day, n, min_value, max_value, "
            f"sum_value) {_RAW_TOTALS}",
            params,
            prepare=False,
        )


@dataclass
class CheckOutcome:
    days_checked: int = 0
    differences: int = 0
    days_rebuilt: int = 0
    left: int = 0
    """Differences found again right after a rebuild (none, unless something wrote
    around ingest meanwhile)."""


def check_rollups(
    conn: psycopg.Connection,
    plan: CheckPlan,
    timezone: str,
    *,
    repair: bool,
    report: Callable[[DayRange, list[RollupDifference]], None],
) -> CheckOutcome:
    """Check each slice of `plan`; with `repair`, rebuild each slice that differs and check
    it again. `report` hears each slice's differences (an empty list when it agrees)."""
    outcome = CheckOutcome()
    for days in plan.slices:
        found = differences(conn, days, timezone)
        outcome.days_checked += days.days
        outcome.differences += len(found)
        report(days, found)
        if found and repair:
            rebuild(conn, days, timezone)
            outcome.days_rebuilt += days.days
            outcome.left += len(differences(conn, days, timezone))
    return outcome
