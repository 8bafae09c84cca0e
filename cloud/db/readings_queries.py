"""Queries that read readings back, each served by an index or a maintained table."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg.types.string import ByteaBinaryLoader
from psycopg_pool import PoolTimeout

from protocols.metrics import Metric


def raw(
    conn: psycopg.Connection,
    patient_id: str,
    metric: Metric | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    return conn.execute(
        """SELECT reading_id, measurement_id, time AS measured_at, received_at, metric, value,
                  unit, device_kind, device_serial, source, flags, context, staff_id
           FROM readings
           WHERE patient_id = %(p)s
             AND (%(m)s::text IS NULL OR metric = %(m)s)
             AND (%(since)s::timestamptz IS NULL OR time >= %(since)s)
             AND (%(until)s::timestamptz IS NULL OR time < %(until)s)
           ORDER BY time DESC LIMIT %(limit)s""",
        {
            "p": patient_id,
            "m": metric.value if metric else None,
            "since": since,
            "until": until,
            "limit": limit,
        },
    ).fetchall()


def bucketed(
    conn: psycopg.Connection,
    patient_id: str,
    metric: Metric,
    since: datetime,
    until: datetime,
    width: timedelta,
) -> list[dict[str, Any]]:
    return conn.execute(
        """SELECT time_bucket(%(w)s, time, %(since)s) AS bucket, count(*) AS n,
                  avg(value) AS mean, min(value) AS min, max(value) AS max
           FROM readings
           WHERE patient_id = %(p)s AND metric = %(m)s AND time >= %(since)s AND time < %(until)s
           GROUP BY bucket ORDER BY bucket""",
        {"w": width, "p": patient_id, "m": metric.value, "since": since, "until": until},
    ).fetchall()


def daily(
    conn: psycopg.Connection, patient_id: str, metric: Metric, first_day: Any, last_day: Any
) -> list[dict[str, Any]]:
    return conn.execute(
        """SELECT day, n, min_value AS min, max_value AS max, sum_value / n AS mean
           FROM readings_daily
           WHERE patient_id = %s AND metric = %s AND day BETWEEN %s AND %s
           ORDER BY day""",
        (patient_id, metric.value, first_day, last_day),
    ).fetchall()


# Byte order (COLLATE "C") is Python's string order, so sorted halves of a panel queried
# apart and joined come out in the same order as one query over the whole panel.
_LATEST = """SELECT patient_id, metric, time AS measured_at, value, reading_id, source
              FROM patient_latest WHERE patient_id = ANY(%s::text[])
              ORDER BY patient_id COLLATE "C", metric"""

SPLIT_FROM = 2000
"""Panels of at least this many patients are read on two connections at once."""


def latest_for(conn: psycopg.Connection, patient_ids: list[str]) -> list[dict[str, Any]]:
    return conn.execute(_LATEST, (patient_ids,)).fetchall()


_LATEST_ITEMS = """SELECT '[' || coalesce(string_agg(item_json, ','), '') || ']'
                  FROM (SELECT item_json FROM patient_latest WHERE patient_id = ANY(%s::text[])
                        ORDER BY patient_id COLLATE "C", metric) t"""


def latest_for_as_json(conn: psycopg.Connection, patient_ids: list[str]) -> bytes:
    """The same rows as `latest_for`, as a JSON array, `measured_at` in UTC.

    For panels of thousands of patients: encoding tens of thousands of rows in Python costs
    more than the query itself, and so did building their JSON in the server on every
    request; each row keeps its JSON object (`patient_latest.item_json`, migration 0016),
    and the server only joins them.
    """
    # Not prepared: after a few runs a prepared statement may switch to a generic plan, made
    # without knowing how many ids the array holds.
    with conn.cursor(row_factory=tuple_row, binary=True) as cur:
        # The JSON's bytes as they come, not decoded to str and encoded back.
        cur.adapters.register_loader("text", ByteaBinaryLoader)
        row = cur.execute(
            _LATEST_ITEMS, (text_array_literal(patient_ids),), prepare=False
        ).fetchone()
    assert row is not None  # an aggregate always yields a row
    return bytes(row[0])


def text_array_literal(values: list[str]) -> str:
    """`values` as a PostgreSQL text[] literal, for a `%s::text[]` parameter.

    psycopg's list dumper handles each item in Python: for 5,000 ids that takes milliseconds
    while holding the GIL, where one join takes a fraction of one."""
    if not values:
        return "{}"
    joined = "".join(values)
    if "\\" in joined or '"' in joined:
        values = [value.replace("\\", "\\\\").replace('"', '\\"') for value in values]
    return '{"' + '","'.join(values) + '"}'


def latest_for_panel_as_json(
    conn: psycopg.Connection,
    second: Callable[[], AbstractContextManager[psycopg.Connection]],
    patient_ids: list[str],
    *,
    before: bytes = b"",
    after: bytes = b"",
) -> bytes:
    """`latest_for_as_json` for a large panel, its two halves on two connections at once,
    between `before` and `after` (a response's envelope) in the same single copy.

    Building the JSON of tens of thousands of rows is most of this query's time and runs on
    one server core per statement; two statements use both. `second` lends the other
    connection (the API's pool); when it cannot (PoolTimeout: every connection busy), the
    request's own connection reads both halves rather than wait on the others."""
    ids = sorted(set(patient_ids))
    if len(ids) < SPLIT_FROM:
        return join_json_arrays(latest_for_as_json(conn, ids), b"[]", before=before, after=after)
    half = len(ids) // 2
    upper: list[bytes] = []
    failure: list[BaseException] = []

    def read_upper() -> None:
        try:
            with second() as other:
                upper.append(latest_for_as_json(other, ids[half:]))
        except BaseException as exc:  # re-raised in the request's thread below
            failure.append(exc)

    thread = threading.Thread(target=read_upper, name="latest-upper-half")
    thread.start()
    lower = latest_for_as_json(conn, ids[:half])
    thread.join()
    if failure and isinstance(failure[0], PoolTimeout):
        upper.append(latest_for_as_json(conn, ids[half:]))
    elif failure:
        raise failure[0]
    return join_json_arrays(lower, upper[0], before=before, after=after)


def join_json_arrays(
    first: bytes, second: bytes, *, before: bytes = b"", after: bytes = b""
) -> bytes:
    """Two JSON arrays (as text) as one, without parsing them, between `before` and `after`.

    The arrays are megabytes: one copy of them, where slicing and concatenating would copy
    them several times over."""
    parts: list[bytes | memoryview]
    if second == b"[]":
        parts = [before, first, after]
    elif first == b"[]":
        parts = [before, second, after]
    else:
        parts = [before, memoryview(first)[:-1], b",", memoryview(second)[1:], after]
    return b"".join(parts)


def home_bp(
    conn: psycopg.Connection, patient_id: str, since: datetime, timezone: str
) -> list[dict[str, Any]]:
    """Home cuff measurements with both pressures, one row per measurement."""
    return conn.execute(
        """SELECT (min(time) AT TIME ZONE %(tz)s)::date AS day,
                  max(value) FILTER (WHERE metric = 'systolic') AS systolic,
                  max(value) FILTER (WHERE metric = 'diastolic') AS diastolic
           FROM readings
           WHERE patient_id = %(p)s AND time >= %(since)s AND source = 'home'
             AND metric IN ('systolic', 'diastolic')
           GROUP BY measurement_id
           HAVING count(*) FILTER (WHERE metric = 'systolic') = 1
              AND count(*) FILTER (WHERE metric = 'diastolic') = 1""",
        {"p": patient_id, "since": since, "tz": timezone},
    ).fetchall()


def silent_patients(
    conn: psycopg.Connection, days: int, limit: int, offset: int, teams: list[str] | None
) -> list[dict[str, Any]]:
    """`teams` None means every patient (QC); otherwise only those teams' patients."""
    return conn.execute(
        """SELECT l.patient_id, max(l.time) AS last_reading_at
           FROM patient_latest l
           WHERE %(teams)s::text[] IS NULL OR EXISTS (
               SELECT 1 FROM patients p WHERE p.patient_id = l.patient_id
                 AND p.team_id = ANY(%(teams)s))
           GROUP BY l.patient_id
           HAVING max(l.time) < now() - make_interval(days => %(days)s)
           ORDER BY last_reading_at LIMIT %(limit)s OFFSET %(offset)s""",
        {"teams": teams, "days": days, "limit": limit, "offset": offset},
    ).fetchall()


def visible_patients(
    conn: psycopg.Connection, patient_ids: list[str], teams: list[str]
) -> list[str]:
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(
            "SELECT patient_id FROM patients WHERE patient_id = ANY(%s) AND team_id = ANY(%s)",
            (patient_ids, teams),
        ).fetchall()
    return [row[0] for row in rows]
