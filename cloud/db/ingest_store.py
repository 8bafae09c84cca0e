"""Writes one ingest flush in one transaction: readings, dead letters, alerts.

Readings go through COPY into a per-connection temporary staging table and then
`INSERT … ON CONFLICT DO NOTHING`, so a reading sent twice is stored once and only the
readings new to the database are returned (and judged by the alert rules).

Arrays of a flush's ids and values are sent in binary (`%b`): psycopg formats a text array
in Python, element by element, and a flush's 5,000 patient ids cost 8 ms that way against
4 in binary, once per statement.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import psycopg
from psycopg.rows import dict_row, tuple_row
from psycopg.types.json import Jsonb

from cloud.alerts.lifecycle import ack_deadline
from cloud.alerts.rule_config import rule_set_from_json
from cloud.alerts.rules import AlertCandidate, PatientProfile
from cloud.alerts.thresholds import Cohort, RuleSet, Target
from cloud.db.alert_notify import notice_sql
from cloud.ingest.intake import AcceptedReading, DeadLetter
from cloud.ingest.resent_copies import EDGE_TIMED_SQL, first_of_each_id, lookup_windows
from protocols.metrics import Metric
from protocols.reading import (
    DeviceKind,
    DeviceRef,
    MeasurementContext,
    Reading,
    Source,
    StatusFlag,
)

_COLUMNS = (
    "time, reading_id, measurement_id, patient_id, edge_id, device_kind, device_model, "
    "device_serial, record_key, metric, value, unit, received_at, device_time, context, "
    "flags, source, staff_id"
)


def prepare_connection(conn: psycopg.Connection) -> None:
    """Set up a new autocommit connection for `copy_readings`."""
    if not conn.autocommit:
        raise ValueError("ingest needs an autocommit connection so each flush is one transaction")
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS readings_staging "
        "(LIKE readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )


COPY_COLUMNS = _COLUMNS
_COPY_TYPES = (
    "timestamptz", "uuid", "uuid", "text", "text", "text", "text", "text", "text", "text",
    "float8", "text", "timestamptz", "timestamp", "jsonb", "text[]", "text", "text",
)  # fmt: skip


@contextmanager
def copy_rows_into(cur: psycopg.Cursor[Any], table: str) -> Iterator[psycopg.Copy]:
    """A binary COPY of `reading_row` rows into `table` (readings or its staging table).

    Binary, because formatting timestamps and UUIDs as text cost the worker 9 µs a row
    against 3.5 (and the server parsing them back); measured with psycopg's C formatter."""
    with cur.copy(f"COPY {table} ({_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_COPY_TYPES)
        yield copy


def reading_row(edge_id: str, r: Reading) -> tuple[object, ...]:
    """A reading as a row of `COPY_COLUMNS`."""
    return (
        r.measured_at,
        r.reading_id,
        r.measurement_id,
        r.patient_id,
        edge_id,
        r.device.kind.value,
        r.device.model,
        r.device.serial,
        r.record_key,
        r.metric.value,
        r.value,
        r.unit,
        r.received_at,
        _wall_clock(r.device_time),
        _context_json(r.context),
        _sorted_flags(r.flags),
        r.source.value,
        r.staff_id,
    )


def _wall_clock(device_time: datetime | None) -> datetime | None:
    """The device's time as the `timestamp` column keeps it: its wall clock, any offset it
    sent dropped, as PostgreSQL does with text. Binary COPY refuses an aware datetime for a
    `timestamp` column, and devices with a time-offset field send aware ones."""
    if device_time is None or device_time.tzinfo is None:
        return device_time
    return device_time.replace(tzinfo=None)


@functools.lru_cache(maxsize=1024)
def _context_json(context: MeasurementContext) -> Jsonb:
    # A handful of distinct contexts cover almost every reading; cached, the row costs less.
    return Jsonb(json.dumps(context.model_dump(mode="json", exclude_none=True)), dumps=_as_is)


def _as_is(text: str) -> str:
    """The `dumps` of a Jsonb whose object is already its JSON text."""
    return text


@functools.lru_cache(maxsize=256)
def _sorted_flags(flags: frozenset[StatusFlag]) -> list[str]:
    return sorted(flag.value for flag in flags)


ROLLUPS_OF_INS = """daily AS (
    INSERT INTO readings_daily AS d
        (patient_id, metric, day, n, min_value, max_value, sum_value)
    SELECT patient_id, metric, (time AT TIME ZONE %(tz)s)::date,
           count(*), min(value), max(value), sum(value)
    FROM ins WHERE patient_id IS NOT NULL
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3  -- one lock order for every worker: no deadlocks between them
    ON CONFLICT (patient_id, metric, day) DO UPDATE SET
        n = d.n + EXCLUDED.n,
        min_value = least(d.min_value, EXCLUDED.min_value),
        max_value = greatest(d.max_value, EXCLUDED.max_value),
        sum_value = d.sum_value + EXCLUDED.sum_value
), latest AS (
    INSERT INTO patient_latest AS l
        (patient_id, metric, time, value, reading_id, source, item_json)
    SELECT DISTINCT ON (patient_id, metric) patient_id, metric, time, value, reading_id, source,
           patient_latest_item(patient_id, metric, time, value, reading_id, source)
    FROM ins WHERE patient_id IS NOT NULL
    ORDER BY patient_id, metric, time DESC
    ON CONFLICT (patient_id, metric) DO UPDATE SET
        time = EXCLUDED.time, value = EXCLUDED.value,
        reading_id = EXCLUDED.reading_id, source = EXCLUDED.source,
        item_json = EXCLUDED.item_json
    WHERE EXCLUDED.time > l.time
)"""
"""Daily rollups and latest values of the rows of a CTE `ins` (reading_id, patient_id,
metric, time, value, source); also used when an unassigned measurement is assigned."""

# A reading with an edge-estimated time is stored only if it claims its id in
# `retimed_readings` first: the claim's unique index makes a second worker inserting the same
# id wait for the first to commit and then give way, whatever time either copy carries.
# Claims are taken in id order, one lock order for every worker. Any reading whose id was
# claimed before (by a copy with an estimated time) is a resend, whatever its time.
_INSERT_NEW = f"""
WITH claimed AS (
    INSERT INTO retimed_readings (reading_id, time)
    SELECT reading_id, time FROM readings_staging WHERE flags && {EDGE_TIMED_SQL}
    ORDER BY reading_id
    ON CONFLICT DO NOTHING
    RETURNING reading_id
), ins AS (
    INSERT INTO readings ({_COLUMNS})
    SELECT {_COLUMNS} FROM readings_staging s
    WHERE NOT EXISTS (SELECT FROM retimed_readings t WHERE t.reading_id = s.reading_id)
      AND (NOT s.flags && {EDGE_TIMED_SQL} OR s.reading_id IN (SELECT reading_id FROM claimed))
    ON CONFLICT DO NOTHING
    RETURNING reading_id, patient_id, metric, time, value, source
), {ROLLUPS_OF_INS}
SELECT reading_id FROM ins
"""


def copy_readings(
    conn: psycopg.Connection, accepted: Sequence[AcceptedReading], timezone: str
) -> set[uuid.UUID]:
    """Stage and insert; keep rollups and latest values current; return the ids new to the
    database. `timezone` names the hospital's calendar for daily rollups."""
    if not accepted:
        return set()
    unique = first_of_each_id(accepted)
    with conn.cursor() as cur:
        stored = stored_at_device_time(cur, [item.reading for item in unique], ZoneInfo(timezone))
        with copy_rows_into(cur, "readings_staging") as copy:
            for item in unique:
                if item.reading.reading_id not in stored:
                    copy.write_row(reading_row(item.edge_id, item.reading))
        cur.execute(_INSERT_NEW, {"tz": timezone})
        return {row[0] for row in cur.fetchall()}


def stored_at_device_time(
    cur: psycopg.Cursor[Any], readings: Sequence[Reading], zone: ZoneInfo
) -> set[uuid.UUID]:
    """Ids of the edge-timed `readings` stored already with their device's own stamp."""
    found: set[uuid.UUID] = set()
    for window in lookup_windows(readings, zone):
        # Constant bounds and no prepared plan, so only the chunks in the window are read.
        rows = cur.execute(
            "SELECT reading_id FROM readings WHERE reading_id = ANY(%b) AND time BETWEEN %s AND %s",
            (list(window.reading_ids), window.since, window.until),
            prepare=False,
        ).fetchall()
        found.update(row[0] for row in rows)
    return found


def recent_blood_pressure(
    conn: psycopg.Connection, readings: Sequence[Reading], window: timedelta
) -> list[Reading]:
    """Stored cuff readings of the same patients from `window` before each of `readings`
    (call it before storing them): the earlier measurements of a blood-pressure session."""
    spans: dict[str, list[datetime]] = {}
    for r in readings:
        if r.patient_id and r.metric in (Metric.SYSTOLIC, Metric.DIASTOLIC):
            first, last = spans.get(r.patient_id, [r.measured_at, r.measured_at])
            spans[r.patient_id] = [min(first, r.measured_at), max(last, r.measured_at)]
    if not spans:
        return []
    patients = sorted(spans)
    # One window per patient, so a flush that spans days (a backlog) reads only what each
    # patient's sessions can reach.
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """SELECT r.time, r.reading_id, r.measurement_id, r.patient_id, r.device_kind,
                      r.device_model, r.device_serial, r.record_key, r.metric, r.value, r.unit,
                      r.received_at, r.context, r.flags, r.source, r.staff_id
               FROM unnest(%b::text[], %b::timestamptz[], %b::timestamptz[])
                    AS w(patient_id, since, until)
               -- LATERAL: one index probe per patient, whatever the statistics of a fresh
               -- chunk say (a hash join would scan the whole chunk on every flush).
               CROSS JOIN LATERAL (
                   SELECT * FROM readings x
                   WHERE x.patient_id = w.patient_id AND x.metric IN ('systolic', 'diastolic')
                     AND x.time >= w.since AND x.time <= w.until) AS r""",
            (patients, [spans[p][0] - window for p in patients], [spans[p][1] for p in patients]),
        ).fetchall()
    incoming = {r.reading_id for r in readings}  # a resend of what is stored already
    return [stored_reading(row) for row in rows if row["reading_id"] not in incoming]


def stored_reading(row: dict[str, Any]) -> Reading:
    """A `readings` row (as a dict) as the Reading it was stored from, unvalidated."""
    return Reading.model_construct(
        reading_id=row["reading_id"],
        measurement_id=row["measurement_id"],
        patient_id=row["patient_id"],
        device=DeviceRef.model_construct(
            kind=DeviceKind(row["device_kind"]),
            model=row["device_model"],
            serial=row["device_serial"],
            manufacturer=None,
        ),
        record_key=row["record_key"],
        metric=Metric(row["metric"]),
        value=row["value"],
        unit=row["unit"],
        measured_at=row["time"],
        received_at=row["received_at"],
        device_time=row.get("device_time"),
        context=MeasurementContext(**row["context"]),
        flags=frozenset(StatusFlag(f) for f in row["flags"]),
        source=Source(row["source"]),
        staff_id=row["staff_id"],
    )


_RULE_SETS: dict[tuple[str, str], RuleSet] = {}
"""Parsed rule sets by (name, version): a version never changes once approved."""


def patient_profiles(
    conn: psycopg.Connection, patient_ids: Sequence[str]
) -> dict[str, PatientProfile]:
    """Cohorts, each metric's newest doctor-set target and the programme's rule set."""
    if not patient_ids:
        return {}
    with conn.cursor(row_factory=dict_row) as cur:
        patients = cur.execute(
            """SELECT p.patient_id, p.cohorts, r.name, r.version, r.definition
               FROM patients p LEFT JOIN rule_sets r ON r.name = p.rule_set
               WHERE p.patient_id = ANY(%b::text[])""",
            (list(patient_ids),),
        ).fetchall()
        targets = cur.execute(
            """SELECT DISTINCT ON (patient_id, metric) patient_id, metric, low, high
               FROM patient_targets WHERE patient_id = ANY(%b::text[])
               ORDER BY patient_id, metric, set_at DESC""",
            (list(patient_ids),),
        ).fetchall()
    by_patient: dict[str, list[Target]] = {}
    for t in targets:
        by_patient.setdefault(t["patient_id"], []).append(
            Target(Metric(t["metric"]), t["low"], t["high"])
        )
    profiles = {}
    for p in patients:
        rules = None
        if p["name"] is not None:
            key = (p["name"], p["version"])
            if key not in _RULE_SETS:
                _RULE_SETS[key] = rule_set_from_json(p["definition"])
            rules = _RULE_SETS[key]
        profiles[p["patient_id"]] = PatientProfile(
            p["patient_id"],
            frozenset(Cohort(c) for c in p["cohorts"] if c in _COHORTS),
            tuple(by_patient.get(p["patient_id"], ())),
            rules,
        )
    return profiles


_COHORTS = frozenset(c.value for c in Cohort)


def queue_for_trends(conn: psycopg.Connection, patient_ids: Sequence[str]) -> None:
    """Ask the trend sweep to look at these patients again."""
    if patient_ids:
        # Most are queued already between two sweeps; ON CONFLICT alone would try to insert
        # each and cost three times as much (21 ms against 6 for a flush's 5,000 patients).
        # It stays for a patient another worker queues meanwhile. `OFFSET 0` keeps the
        # NOT EXISTS a probe of the queue's index per patient: as an anti-join, with the
        # queue's statistics behind its growth, PostgreSQL hashed the whole queue for a
        # flush of 50 patients (2.3 ms against 0.3, auto_explain).
        conn.execute(
            "INSERT INTO trend_queue (patient_id) SELECT p.patient_id FROM patients p "
            "WHERE p.patient_id = ANY(%b::text[]) "
            "AND NOT EXISTS (SELECT FROM trend_queue q WHERE q.patient_id = p.patient_id "
            "OFFSET 0) "
            "ON CONFLICT (patient_id) DO NOTHING",
            (list(patient_ids),),
        )


# A resent letter's key names its edge, topic, code and hour: an edge that is not answered
# sends the same again every ack timeout, and a decommissioned edge left running would
# otherwise add a full copy of its outbox to the table twice a minute, for ever.
_INSERT_DEAD_LETTER = """
INSERT INTO dead_letters
    (edge_id, topic, code, reason, reading_id, item_index, payload, repeat_key)
VALUES (%(edge_id)s, %(topic)s, %(code)s, %(reason)s, %(reading_id)s, %(item_index)s,
        %(payload)s,
        CASE WHEN %(resent)s::boolean THEN concat_ws(' ', %(edge_id)s::text, %(topic)s::text,
             %(code)s::text,
             to_char(date_trunc('hour', now() AT TIME ZONE 'UTC'), 'YYYY-MM-DD"T"HH24')) END)
ON CONFLICT (repeat_key) WHERE repeat_key IS NOT NULL DO UPDATE
    SET repeats = dead_letters.repeats + 1, last_repeat_at = now()
"""


def insert_dead_letters(conn: psycopg.Connection, letters: Sequence[DeadLetter]) -> None:
    """Keep each letter; a resent one (`DeadLetter.resent`) whose edge, topic and code
    have a letter this hour already is counted on it (`repeats`) instead."""
    if not letters:
        return
    # Repeats are updates of a shared row: taken in one key order by every worker, so two
    # flushes holding the same two cannot deadlock.
    ordered = sorted(letters, key=lambda d: (d.resent, d.edge_id or "", d.topic, d.code))
    with conn.cursor() as cur:
        cur.executemany(
            _INSERT_DEAD_LETTER,
            [
                {
                    "edge_id": d.edge_id,
                    "topic": d.topic,
                    "code": d.code,
                    "reason": d.reason,
                    "reading_id": d.reading_id,
                    "item_index": d.item_index,
                    "payload": d.payload,
                    "resent": d.resent,
                }
                for d in ordered
            ],
        )


# Ascending urgency, so array_position gives Tier.rank.
_TIER_ORDER = ["low", "medium", "high", "critical"]
_OPEN = "('open', 'acknowledged', 'in_progress', 'escalated')"
NO_RERAISE = timedelta(hours=24)


def upsert_alerts(
    conn: psycopg.Connection, candidates: Sequence[AlertCandidate], now: datetime, timezone: str
) -> list[tuple[AlertCandidate, uuid.UUID, str]]:
    """Open an alert in the patient's team queue, or add to the open one of the same patient
    and rule (raising its tier when the new finding is worse). A rule closed within 24 h is
    not raised again unless the tier rises (clinical_rules.md §3, alert hygiene).

    Returns, per candidate that touched an alert and in their order, the alert id and
    `opened`, `tier_raised` or `readings_added`.

    Set-based: a flush of readings from thousands of patients raises thousands of
    candidates, and one round trip or four each cost more than storing the readings. Two
    candidates of one patient and rule go in successive rounds, so the second sees the
    alert the first opened or raised, as one after the other would; those that cannot
    raise it share a step (`_steps`), so one patient's backlog takes a few rounds, not one
    per reading."""
    steps = _steps(candidates)
    found: dict[int, tuple[uuid.UUID, str]] = {}
    for round_ in _rounds([step for _members, step in steps]):
        found.update(_joined(conn, round_, now, timezone))
        found.update(_opened(conn, [(i, c) for i, c in round_ if i not in found], now, timezone))
    touched: dict[int, tuple[uuid.UUID, str]] = {}
    for n, (members, _step) in enumerate(steps):
        if n in found:
            touched.update(dict.fromkeys(members, found[n]))
    return [(c, *touched[i]) for i, c in enumerate(candidates) if i in touched]


def _steps(candidates: Sequence[AlertCandidate]) -> list[tuple[list[int], AlertCandidate]]:
    """The candidates as the steps that apply them, in order, each with the indexes of
    the candidates it stands for.

    Of one patient and rule, a candidate no more urgent than one before it (a rider)
    cannot raise the alert that one opened, joined or was kept from reopening, nor open
    one where it could not: it only adds its readings, or is kept out as that one was.
    The riders after each more urgent candidate are one step: the first of them with the
    readings of all. A flush of one patient's 1,000 abnormal cuff measurements took 1,000
    rounds (1.0 s) before."""
    steps: list[tuple[list[int], AlertCandidate, list[uuid.UUID]]] = []
    # Per patient and rule: the highest rank so far, and the step of the riders after it.
    urgency: dict[tuple[str, str], tuple[int, int | None]] = {}
    for index, c in enumerate(candidates):
        key = (c.patient_id, c.rule_id)
        known = urgency.get(key)
        if known is None or c.tier.rank > known[0]:
            steps.append(([index], c, []))
            urgency[key] = (c.tier.rank, None)
        elif known[1] is None:
            steps.append(([index], c, list(c.reading_ids)))
            urgency[key] = (known[0], len(steps) - 1)
        else:
            members, _first, readings = steps[known[1]]
            members.append(index)
            readings.extend(c.reading_ids)
    return [
        (members, replace(c, reading_ids=readings) if len(members) > 1 else c)
        for members, c, readings in steps
    ]


def _rounds(
    candidates: Sequence[AlertCandidate],
) -> list[list[tuple[int, AlertCandidate]]]:
    """The candidates (with their index) split so a patient and rule is once per round."""
    rounds: list[list[tuple[int, AlertCandidate]]] = []
    seen: dict[tuple[str, str], int] = {}
    for index, c in enumerate(candidates):
        key = (c.patient_id, c.rule_id)
        n = seen[key] = seen.get(key, -1) + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append((index, c))
    return rounds


def _round_params(
    round_: Sequence[tuple[int, AlertCandidate]], now: datetime, timezone: str
) -> dict[str, Any]:
    return {
        "n": [i for i, _c in round_],
        "p": [c.patient_id for _i, c in round_],
        "r": [c.rule_id for _i, c in round_],
        "tier": [c.tier.value for _i, c in round_],
        "title": [c.title for _i, c in round_],
        "e": [Jsonb(c.explanation, dumps=_explanation_json) for _i, c in round_],
        # uuid[][] must be rectangular; each candidate's ids travel as one string.
        "ids": [",".join(str(rid) for rid in c.reading_ids) for _i, c in round_],
        "kind": [c.kind for _i, c in round_],
        "due": [ack_deadline(c.tier, now, timezone) for _i, c in round_],
        "now": now,
        "since": now - NO_RERAISE,
        "order": _TIER_ORDER,
    }


_explanation_json = msgspec.json.encode
"""An explanation's JSON: msgspec writes it in a fifth of the time of `json.dumps` (4.6
against 0.85 µs for a glucose alert's), and a flush may raise a thousand."""

# Arrays go in binary (`%b`): psycopg writes a text array element by element through a
# regular expression that escapes quotes, and the explanations' JSON is full of them;
# binary took a flush of 1,000 candidates from 270 ms of client time to 80.
_ROUND = """c AS (
    SELECT * FROM unnest(%(n)b::int[], %(p)b::text[], %(r)b::text[], %(tier)b::text[],
                         %(title)b::text[], %(e)b::jsonb[], %(ids)b::text[], %(kind)b::text[],
                         %(due)b::timestamptz[])
        AS c(n, patient_id, rule_id, tier, title, explanation, ids, kind, due)
)"""

# Two forms of each statement, which differ only in how they find existing alerts. A large
# round joins the candidates with the alerts as the planner sees fit (hashing the open
# alerts, often). A small round probes the alerts' indexes once per candidate, a plan it
# is held to (LATERAL, `OFFSET 0`), because a plan from statistics left behind by the
# alerts' growth (a fresh server, a burst) scans the whole table for a handful of
# candidates: 0.45 ms of a 0.7 ms join at 3,000 alerts (auto_explain), and growing.
#
# Rows are locked in (patient, rule) order, one order for every writer: no deadlocks.
_LOCK_JOINED = f"""locked AS (
    SELECT a.alert_id, a.tier AS old_tier, c.n,
           array_position(%(order)s, c.tier) > array_position(%(order)s, a.tier) AS raised
    FROM alerts a JOIN c ON a.patient_id = c.patient_id AND a.rule_id = c.rule_id
    WHERE a.status IN {_OPEN}
    ORDER BY a.patient_id, a.rule_id
    FOR UPDATE OF a
)"""
# A nested loop keeps its outer order, so the locks are taken in c's sorted order.
_LOCK_PROBED = f"""locked AS (
    SELECT a.alert_id, a.tier AS old_tier, c.n,
           array_position(%(order)s, c.tier) > array_position(%(order)s, a.tier) AS raised
    FROM (SELECT * FROM c ORDER BY patient_id, rule_id) c
    CROSS JOIN LATERAL (
        SELECT alert_id, tier FROM alerts a
        WHERE a.patient_id = c.patient_id AND a.rule_id = c.rule_id AND a.status IN {_OPEN}
        FOR UPDATE OF a
    ) a
)"""
_JOIN_OPEN = """
WITH {round}, {lookup}, joined AS (
    UPDATE alerts a SET
        reading_ids = a.reading_ids || string_to_array(c.ids, ',')::uuid[],
        updated_at = %(now)s,
        tier = CASE WHEN l.raised THEN c.tier ELSE a.tier END,
        title = CASE WHEN l.raised THEN c.title ELSE a.title END,
        explanation = CASE WHEN l.raised THEN c.explanation ELSE a.explanation END,
        ack_due_at = CASE WHEN l.raised THEN least(a.ack_due_at, c.due) ELSE a.ack_due_at END
    FROM locked l JOIN c ON c.n = l.n
    WHERE a.alert_id = l.alert_id
    RETURNING l.n, a.alert_id, l.raised, l.old_tier, a.tier, a.status,
        {notice}
), raise_events AS (
    INSERT INTO alert_events (alert_id, at, action, from_status, to_status, detail)
    SELECT alert_id, %(now)s, 'tier_raised', status, status,
           jsonb_build_object('from_tier', old_tier, 'to_tier', tier)
    FROM joined WHERE raised
)
SELECT n, alert_id, raised FROM joined
"""

_OPEN_NEW = """
WITH {round}, opened AS (
    INSERT INTO alerts AS a (patient_id, rule_id, tier, title, explanation, reading_ids, kind,
                             team_id, assignee_id, ack_due_at, opened_at, updated_at)
    SELECT c.patient_id, c.rule_id, c.tier, c.title, c.explanation,
           string_to_array(c.ids, ',')::uuid[], c.kind,
           pt.team_id, CASE WHEN cm.away THEN NULL ELSE pt.case_manager_id END,
           c.due, %(now)s, %(now)s
    FROM c
    LEFT JOIN patients pt ON pt.patient_id = c.patient_id
    LEFT JOIN users cm ON cm.user_id = pt.case_manager_id
    WHERE NOT EXISTS (
        SELECT 1 FROM alerts closed
        WHERE closed.patient_id = c.patient_id AND closed.rule_id = c.rule_id
          AND closed.status IN ('resolved', 'dismissed') AND closed.closed_at > %(since)s
          AND array_position(%(order)s, closed.tier) >= array_position(%(order)s, c.tier)
        {lookup})
    ORDER BY c.patient_id, c.rule_id
    ON CONFLICT (patient_id, rule_id) WHERE status IN {open} DO NOTHING
    RETURNING a.alert_id, a.patient_id, a.rule_id, a.tier, {notice}
), open_events AS (
    INSERT INTO alert_events (alert_id, at, action, from_status, to_status, detail)
    SELECT alert_id, %(now)s, 'opened', NULL, 'open',
           jsonb_build_object('tier', tier, 'rule', rule_id)
    FROM opened
)
SELECT patient_id, rule_id, alert_id FROM opened
"""


def _statement_forms(template: str, notice: str, joined: str, probed: str) -> tuple[str, str]:
    """The (large round, small round) forms of an alert round's statement: its `{lookup}`
    of existing alerts filled with `joined` or with `probed`."""
    fill = {"round": _ROUND, "open": _OPEN, "notice": notice}
    large = template.format(**fill, lookup=joined)
    small = template.format(**fill, lookup=probed)
    # psycopg keys prepared statements by their text; the mark keeps the forms apart.
    return large, small + "\n-- a small round: probes, prepared"


_JOIN_OPEN_FORMS = _statement_forms(
    _JOIN_OPEN,
    notice_sql("CASE WHEN l.raised THEN 'tier_raised' ELSE 'readings_added' END"),
    joined=_LOCK_JOINED,
    probed=_LOCK_PROBED,
)
# `OFFSET 0` keeps the NOT EXISTS a probe per candidate instead of an anti-join.
_OPEN_NEW_FORMS = _statement_forms(_OPEN_NEW, notice_sql("'opened'"), joined="", probed="OFFSET 0")


def _joined(
    conn: psycopg.Connection,
    round_: Sequence[tuple[int, AlertCandidate]],
    now: datetime,
    timezone: str,
) -> dict[int, tuple[uuid.UUID, str]]:
    """Add each candidate to its open alert, where there is one."""
    rows = _round_rows(conn, _JOIN_OPEN_FORMS, round_, now, timezone)
    return {
        n: (alert_id, "tier_raised" if raised else "readings_added") for n, alert_id, raised in rows
    }


def _opened(
    conn: psycopg.Connection,
    round_: Sequence[tuple[int, AlertCandidate]],
    now: datetime,
    timezone: str,
) -> dict[int, tuple[uuid.UUID, str]]:
    """Open an alert for each candidate, unless its rule was closed lately at that tier or
    higher, or another writer opened one meanwhile."""
    rows = _round_rows(conn, _OPEN_NEW_FORMS, round_, now, timezone)
    index = {(c.patient_id, c.rule_id): i for i, c in round_}
    return {index[(p, r)]: (alert_id, "opened") for p, r, alert_id in rows}


def _round_rows(
    conn: psycopg.Connection,
    forms: tuple[str, str],
    round_: Sequence[tuple[int, AlertCandidate]],
    now: datetime,
    timezone: str,
) -> list[tuple[Any, ...]]:
    if not round_:
        return []
    # A large round is never prepared: from the sixth run on, the generic plan of a prepared
    # statement cannot see how many candidates the arrays hold, and joining open alerts took
    # 4.6 times as long with it (ad-hoc timing of 10 flushes of ~1,000 candidates). A small
    # round's plan is fixed by its form, so it is prepared at once and not planned again.
    few = len(round_) <= PROBED_ROUND_MAX
    large, small = forms
    # Tuples whatever the connection's row factory: callers' connections may return dicts.
    with conn.cursor(row_factory=tuple_row) as cur:
        params = _round_params(round_, now, timezone)
        return cur.execute(small if few else large, params, prepare=few).fetchall()


PROBED_ROUND_MAX = 64
"""Alert rounds of up to this many candidates probe the alerts' indexes per candidate."""


def record_heartbeat(
    conn: psycopg.Connection,
    worker_id: str,
    started_at: object,
    counters: dict[str, int],
    *,
    subscribed: bool,
    broker_problem: str | None,
) -> None:
    conn.execute(
        """
        INSERT INTO ingest_workers (worker_id, started_at, last_seen_at, messages, readings,
                                    dead_letters, subscribed, broker_problem)
        VALUES (%(w)s, %(s)s, now(), %(m)s, %(r)s, %(d)s, %(sub)s, %(problem)s)
        ON CONFLICT (worker_id) DO UPDATE SET
            started_at = EXCLUDED.started_at, last_seen_at = now(),
            messages = EXCLUDED.messages, readings = EXCLUDED.readings,
            dead_letters = EXCLUDED.dead_letters, subscribed = EXCLUDED.subscribed,
            broker_problem = EXCLUDED.broker_problem
        """,
        {
            "w": worker_id,
            "s": started_at,
            "m": counters["messages"],
            "r": counters["readings"],
            "d": counters["dead_letters"],
            "sub": subscribed,
            "problem": broker_problem,
        },
    )
    conn.commit()


def is_known_edge(conn: psycopg.Connection, edge_id: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM edges WHERE edge_id = %s AND disabled_at IS NULL", (edge_id,)
    ).fetchone()
    return row is not None
