"""`ingest_store.upsert_alerts` on a real TimescaleDB: a batch of candidates opens, joins and
raises alerts as handling them one after the other would, with the events and notices."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from cloud.alerts.lifecycle import ack_deadline
from cloud.alerts.rules import AlertCandidate
from cloud.alerts.thresholds import Tier
from cloud.db import care_store, ingest_store
from cloud.db.alert_notify import CHANNEL
from tests.conftest import make_user

TZ = "Asia/Shanghai"
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
RULE = "glucose.fasting_high"


@pytest.fixture(autouse=True, params=["probed", "joined"])
def round_form(request, monkeypatch):
    """Every test runs with both forms of the round statements: small rounds probe the
    alerts' indexes, large ones join; here the rounds are small, so the joined form is
    forced by lowering the bound."""
    if request.param == "joined":
        monkeypatch.setattr(ingest_store, "PROBED_ROUND_MAX", 0)
    return request.param


@pytest.fixture
def conn(database_url):
    make_user(database_url, "cm-u", "case_manager", ("team-u",))
    with psycopg.connect(database_url, autocommit=True) as connection:
        for patient in ("P-U1", "P-U2"):
            care_store.create_patient(
                connection, patient, "测试", team_id="team-u", case_manager_id="cm-u"
            )
        yield connection


def _candidate(patient: str, tier: Tier, title: str) -> AlertCandidate:
    return AlertCandidate(
        patient_id=patient,
        rule_id=RULE,
        tier=tier,
        title=title,
        explanation={"why": title},
        reading_ids=[uuid.uuid4(), uuid.uuid4()],
    )


def _notices(listener: psycopg.Connection) -> list[dict[str, str]]:
    return [json.loads(n.payload) for n in listener.notifies(timeout=0.5, stop_after=10)]


def test_a_batch_opens_joins_and_raises_as_one_after_the_other_would(conn, database_url):
    first = _candidate("P-U1", Tier.MEDIUM, "空腹血糖偏高")
    other = _candidate("P-U2", Tier.HIGH, "空腹血糖高")
    worse = _candidate("P-U1", Tier.CRITICAL, "空腹血糖危急")
    milder = _candidate("P-U1", Tier.LOW, "空腹血糖略高")
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        with conn.transaction():
            done = ingest_store.upsert_alerts(conn, [first, other, worse, milder], NOW, TZ)
        notices = _notices(listener)

    assert [(c, what) for c, _id, what in done] == [
        (first, "opened"), (other, "opened"), (worse, "tier_raised"), (milder, "readings_added")
    ]  # fmt: skip
    ids = [alert_id for _c, alert_id, _what in done]
    assert ids[0] == ids[2] == ids[3] != ids[1]
    alert = conn.execute(
        "SELECT tier, title, reading_ids, ack_due_at, team_id, assignee_id, status "
        "FROM alerts WHERE alert_id = %s",
        (ids[0],),
    ).fetchone()
    assert alert == (
        "critical",
        "空腹血糖危急",
        first.reading_ids + worse.reading_ids + milder.reading_ids,
        min(ack_deadline(Tier.MEDIUM, NOW, TZ), ack_deadline(Tier.CRITICAL, NOW, TZ)),
        "team-u",
        "cm-u",
        "open",
    )
    events = conn.execute(
        "SELECT action, from_status, to_status, detail FROM alert_events "
        "WHERE alert_id = %s ORDER BY event_id",
        (ids[0],),
    ).fetchall()
    assert events == [
        ("opened", None, "open", {"tier": "medium", "rule": RULE}),
        ("tier_raised", "open", "open", {"from_tier": "medium", "to_tier": "critical"}),
    ]
    assert [(n["alert_id"], n["action"], n["tier"]) for n in notices] == [
        (str(ids[0]), "opened", "medium"),
        (str(ids[1]), "opened", "high"),
        (str(ids[0]), "tier_raised", "critical"),
        (str(ids[0]), "readings_added", "critical"),
    ]
    assert {(n["team_id"], n["status"]) for n in notices} == {("team-u", "open")}


def _resolved_high_alert(conn: psycopg.Connection) -> uuid.UUID:
    """A high alert of P-U1 opened at NOW and resolved an hour later."""
    (opened,) = ingest_store.upsert_alerts(conn, [_candidate("P-U1", Tier.HIGH, "高")], NOW, TZ)
    conn.execute(
        "UPDATE alerts SET status = 'resolved', closed_at = %s WHERE alert_id = %s",
        (NOW + timedelta(hours=1), opened[1]),
    )
    return opened[1]


def test_a_rule_closed_within_a_day_comes_back_only_at_a_higher_tier(conn):
    closed = _resolved_high_alert(conn)
    later = NOW + timedelta(hours=3)
    assert ingest_store.upsert_alerts(conn, [_candidate("P-U1", Tier.HIGH, "高")], later, TZ) == []
    again = ingest_store.upsert_alerts(conn, [_candidate("P-U1", Tier.CRITICAL, "危急")], later, TZ)
    assert [what for _c, _id, what in again] == ["opened"]
    assert again[0][1] != closed
    conn.execute(
        "UPDATE alerts SET status = 'dismissed', closed_at = %s WHERE alert_id = %s",
        (later, again[0][1]),
    )
    next_day = later + timedelta(hours=25)
    back = ingest_store.upsert_alerts(conn, [_candidate("P-U1", Tier.HIGH, "高")], next_day, TZ)
    assert [what for _c, _id, what in back] == ["opened"]


def test_a_connection_returning_dicts_gets_the_same(conn, database_url):
    # The sweeps, QC and programme stores call it on their dict-row connections.
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as dicts:
        opened = ingest_store.upsert_alerts(dicts, [_candidate("P-U1", Tier.HIGH, "高")], NOW, TZ)
        joined = ingest_store.upsert_alerts(dicts, [_candidate("P-U1", Tier.LOW, "低")], NOW, TZ)
    assert [what for _c, _id, what in opened + joined] == ["opened", "readings_added"]
    assert isinstance(opened[0][1], uuid.UUID) and opened[0][1] == joined[0][1]


def test_one_patients_backlog_joins_in_a_few_rounds_as_one_after_the_other_would(conn):
    tiers = [Tier.MEDIUM, Tier.LOW, Tier.MEDIUM, Tier.CRITICAL, Tier.LOW, Tier.HIGH]
    batch = [_candidate("P-U1", tier, f"第{n}次") for n, tier in enumerate(tiers)]
    # The riders after each more urgent candidate travel together: four steps, not six.
    assert [members for members, _step in ingest_store._steps(batch)] == [
        [0], [1, 2], [3], [4, 5]
    ]  # fmt: skip
    with conn.transaction():
        done = ingest_store.upsert_alerts(conn, batch, NOW, TZ)

    assert [(c, what) for c, _id, what in done] == [
        (batch[0], "opened"),
        (batch[1], "readings_added"),
        (batch[2], "readings_added"),
        (batch[3], "tier_raised"),
        (batch[4], "readings_added"),
        (batch[5], "readings_added"),
    ]
    assert len({alert_id for _c, alert_id, _what in done}) == 1
    alert = conn.execute(
        "SELECT tier, title, reading_ids FROM alerts WHERE alert_id = %s", (done[0][1],)
    ).fetchone()
    assert alert == ("critical", "第3次", [rid for c in batch for rid in c.reading_ids])
    actions = conn.execute(
        "SELECT action FROM alert_events WHERE alert_id = %s ORDER BY event_id", (done[0][1],)
    ).fetchall()
    assert actions == [("opened",), ("tier_raised",)]


def test_riders_of_a_candidate_kept_from_reopening_are_kept_out_too(conn):
    _resolved_high_alert(conn)
    later = NOW + timedelta(hours=3)
    tiers = [Tier.HIGH, Tier.LOW, Tier.HIGH, Tier.CRITICAL, Tier.MEDIUM]
    batch = [_candidate("P-U1", tier, f"第{n}次") for n, tier in enumerate(tiers)]
    done = ingest_store.upsert_alerts(conn, batch, later, TZ)

    assert [(c, what) for c, _id, what in done] == [
        (batch[3], "opened"), (batch[4], "readings_added")
    ]  # fmt: skip
    reading_ids = conn.execute(
        "SELECT reading_ids FROM alerts WHERE alert_id = %s", (done[0][1],)
    ).fetchone()
    assert reading_ids == (batch[3].reading_ids + batch[4].reading_ids,)
