"""The demo seeding behind the README's run command: packages, enrolled patients with
pathway progress, and last month's QC score with its audited sample; idempotent."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from cloud.db import programme_store, qc_store
from devstack import demo
from devstack.demo_programmes import HOSPITAL, seed_programmes

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 1 December, 10:00 in Shanghai


def test_demo_seeding_shows_programmes_progress_and_last_months_score(database_url):
    demo.seed_people(database_url)
    shown = seed_programmes(database_url, NOW)
    assert shown["month"] == "2026-11"
    assert 0 < shown["total"] <= 100
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM programmes").fetchone() == (10,)
        progress = programme_store.list_enrolments(conn, teams=None, now=NOW, hospital_id=HOSPITAL)
        assert len(progress) == 18
        running = [p for p in progress if p["status"] == "active"]
        assert running and all(p["tasks_done"] > 0 for p in running)
        assert {p["status"] for p in progress} >= {"active", "withdrawn"}
        score = qc_store.monthly_score(conn, HOSPITAL, "2026-11", "Asia/Shanghai")
        assert not score["provisional"]
        assert (
            score["score"]["satisfaction"]["numerator"]
            < score["score"]["satisfaction"]["denominator"]
        )
        assert score["score"]["revisit_timeliness"]["denominator"] > 0
        assert score["score"]["bonus"] == 1.0
        assert qc_store.redraw(conn, score["sample"]["sample_id"])["identical"]
        queue = conn.execute(
            "SELECT count(*) FROM alerts WHERE kind = 'pathway' AND status = 'open'"
        ).fetchone()
        assert queue[0] > 0
    assert seed_programmes(database_url, NOW) == shown
