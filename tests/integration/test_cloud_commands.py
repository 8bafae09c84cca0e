"""`python -m cloud …` jobs as an operator runs them: `replay-dead-letters` (a dry run says
what it would publish and changes nothing; without a choice of letters it refuses) and
`retention` (dead letters go with the readings' horizon unless given their own); `rollups`
(daily rollups checked against the raw readings and rebuilt where they differ, never for
days retention has taken the readings of); and which letters a replay chooses, read a page
at a time. A database the commands cannot reach is named in one line, password left out."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from cloud.__main__ import main
from cloud.db import rollup_repair
from cloud.db.retention import drop_old_readings
from cloud.ingest.dead_letter_replay import Selection, counts, letter_pages, mark_replayed
from cloud.readings.rollup_days import DayRange
from cloud.settings import get_settings
from devstack.cloud import REPO
from devstack.ports import free_port
from protocols import topics
from simulators.readings import SimulatedCuff, SimulatedGlucoseMeter
from tests.integration.edge_support import store_readings


@pytest.fixture
def cloud_env(database_url, monkeypatch):
    monkeypatch.setenv("CAREBRIDGE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def _letter_ages(database_url: str) -> list[int]:
    with psycopg.connect(database_url) as conn:
        return [
            row[0]
            for row in conn.execute(
                "SELECT extract(day FROM now() - received_at)::int FROM dead_letters "
                "ORDER BY received_at"
            )
        ]


def _insert_letters_aged(database_url: str, *days: int) -> None:
    with psycopg.connect(database_url) as conn:
        for age in days:
            conn.execute(
                "INSERT INTO dead_letters (received_at, topic, code, reason, payload) "
                "VALUES (now() - make_interval(days => %s), 't', 'malformed_message', 'r', '')",
                (age,),
            )


def _replays(database_url: str) -> list[tuple[int, bool]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT replays, replayed_at IS NULL FROM dead_letters ORDER BY dead_letter_id"
        ).fetchall()


def test_a_dry_run_lists_what_it_would_publish_and_publishes_nothing(cloud_env, capsys):
    with psycopg.connect(cloud_env) as conn:
        conn.execute(
            "INSERT INTO dead_letters (edge_id, topic, code, reason, payload) VALUES "
            "('e1', %s, 'internal_error', 'boom', '{\"batch_id\": 1}'), "
            "('e1', %s, 'schema_violation', 'bad', '{}')",
            (topics.readings("e1"), topics.assignments("e1")),
        )
    code = main(["replay-dead-letters", "--code", "internal_error", "--id", "2", "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert "dead letter 2 cannot be replayed: not an edge's readings" in out
    assert f"would publish 15 bytes to {topics.readings('e1')} (dead letter 1)" in out
    assert _replays(cloud_env) == [(0, True), (0, True)]


def test_without_a_choice_of_letters_nothing_is_replayed(cloud_env, capsys):
    assert main(["replay-dead-letters"]) == 1
    assert "choose dead letters by id or by code" in capsys.readouterr().err


def test_retention_takes_dead_letters_with_the_readings_horizon_or_their_own(
    cloud_env, capsys, monkeypatch
):
    _insert_letters_aged(cloud_env, 400, 200, 100, 1)
    assert main(["retention"]) == 0
    assert "no dead-letter horizon: keeping all" in capsys.readouterr().out
    assert _letter_ages(cloud_env) == [400, 200, 100, 1]

    assert main(["retention", "--days", "365"]) == 0
    assert "deleted 1 dead letter(s) older than 365 days" in capsys.readouterr().out
    assert _letter_ages(cloud_env) == [200, 100, 1]

    monkeypatch.setattr("cloud.db.retention.DEAD_LETTER_SLICE", 1)  # several slices
    monkeypatch.setenv("CAREBRIDGE_DEAD_LETTER_RETENTION_DAYS", "30")
    get_settings.cache_clear()
    assert main(["retention", "--days", "365"]) == 0
    out = capsys.readouterr().out
    assert "  1 dead letters deleted so far\n  2 dead letters deleted so far" in out
    assert "deleted 2 dead letter(s) older than 30 days" in out
    assert _letter_ages(cloud_env) == [1]


def test_letters_are_chosen_by_code_once_by_id_always_and_read_in_pages(cloud_env):
    with psycopg.connect(cloud_env, autocommit=True) as conn:
        for code in ("internal_error", "internal_error", "storage_rejected", "internal_error"):
            conn.execute(
                "INSERT INTO dead_letters (topic, code, reason, payload) VALUES (%s, %s, 'r', '')",
                (topics.readings("e1"), code),
            )
        by_code = Selection(codes=["internal_error"])
        pages = [[k.dead_letter_id for k in page] for page in letter_pages(conn, by_code, 2)]
        assert pages == [[1, 2], [4]]
        mark_replayed(conn, [1, 2])
        assert counts(conn, by_code) == (1, 2)  # 4 chosen; 1 and 2 passed over
        assert [k.dead_letter_id for p in letter_pages(conn, by_code) for k in p] == [4]
        again = Selection(codes=["internal_error"], again=True)
        assert counts(conn, again) == (3, 0)
        named = Selection(ids=[1, 3])  # named letters go, replayed before or not
        assert [k.dead_letter_id for p in letter_pages(conn, named) for k in p] == [1, 3]
        assert counts(conn, named) == (2, 0)


# --- rollups ------------------------------------------------------------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _rollups(database_url: str) -> dict[tuple[str, str, date], tuple]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT patient_id, metric, day, n, min_value, max_value, round(sum_value::numeric, 6) "
            "FROM readings_daily"
        ).fetchall()
    return {row[:3]: row[3:] for row in rows}


def _three_days_of_readings(database_url: str) -> datetime:
    """Readings of two patients on 1–3 November (Shanghai); returns the first's time."""
    first = datetime(2026, 11, 1, 9, 30, tzinfo=SHANGHAI)
    cuff, meter = SimulatedCuff("RC-1"), SimulatedGlucoseMeter("RG-1")
    for day in range(3):
        at = first + timedelta(days=day)
        store_readings(database_url, cuff.measure(130 + day, 85, 70, patient_id="P1", at=at))
        store_readings(database_url, meter.measure(6.1 + day, patient_id="P2", at=at))
        later = at + timedelta(hours=5)
        store_readings(database_url, meter.measure(7.3, patient_id="P2", at=later))
    return first


def test_rollups_that_agree_with_their_readings_pass_the_check(cloud_env, capsys):
    _three_days_of_readings(cloud_env)
    assert main(["rollups", "--since", "2026-11-01", "--until", "2026-11-03"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "2026-11-01: agree",
        "2026-11-02: agree",
        "2026-11-03: agree",
        "checked 3 day(s): 0 rollup(s) differed",
    ]


def test_rollups_that_differ_are_listed_and_repair_rebuilds_them_from_the_readings(
    cloud_env, capsys
):
    _three_days_of_readings(cloud_env)
    made_by_ingest = _rollups(cloud_env)
    with psycopg.connect(cloud_env) as conn:
        # What a restore of one table without the other, or a hand-made fix, leaves behind.
        conn.execute(
            "UPDATE readings_daily SET n = n + 1 WHERE patient_id = 'P2' AND day = '2026-11-02'"
        )
        conn.execute(
            "DELETE FROM readings_daily WHERE patient_id = 'P1' AND metric = 'systolic' "
            "AND day = '2026-11-03'"
        )
        conn.execute(
            "INSERT INTO readings_daily VALUES ('P9', 'glucose', '2026-11-03', 1, 5, 5, 5)"
        )
    args = ["rollups", "--since", "2026-11-01", "--until", "2026-11-03"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "2026-11-01: agree" in out
    assert "2026-11-02: 1 rollup(s) differ" in out
    assert (
        "  2026-11-02 P2 glucose: rollup n=3 min=7.1 max=7.3 sum=14.4, "
        "readings n=2 min=7.1 max=7.3 sum=14.4"
    ) in out
    assert "2026-11-03: 2 rollup(s) differ" in out
    assert "  2026-11-03 P1 systolic: rollup missing, readings n=1 min=132 max=132 sum=132" in out
    assert "  2026-11-03 P9 glucose: rollup n=1 min=5 max=5 sum=5, readings none" in out
    assert out.endswith("checked 3 day(s): 3 rollup(s) differed\n")
    assert _rollups(cloud_env) != made_by_ingest  # a check changes nothing
    assert main([*args, "--show", "1"]) == 1
    out = capsys.readouterr().out
    assert "  … and 2 more (--show N lists more)" in out
    assert "P9" not in out

    assert main([*args, "--repair"]) == 0
    out = capsys.readouterr().out
    assert "  rebuilding 2026-11-02 from its readings" in out
    assert "rebuilding 2026-11-01" not in out
    assert out.endswith("checked 3 day(s): 3 rollup(s) differed; rebuilt 2 day(s), 0 differ now\n")
    assert _rollups(cloud_env) == made_by_ingest
    assert main(args) == 0


def test_days_whose_readings_retention_dropped_are_neither_checked_nor_rebuilt(cloud_env, capsys):
    first = _three_days_of_readings(cloud_env)
    with psycopg.connect(cloud_env, autocommit=True) as conn:
        # One-day chunks end at UTC midnight, 08:00 in Shanghai: the retention job dropping
        # the chunk that ends on 2 November 08:00 takes the 1st's readings (and would take
        # the 2nd's first hours, had it any).
        horizon = datetime.now(UTC) - datetime(2026, 11, 2, tzinfo=UTC)
        assert len(drop_old_readings(conn, horizon)) == 1
        conn.execute("UPDATE readings_daily SET n = 99 WHERE day = '2026-11-01'")
    kept = {k: v for k, v in _rollups(cloud_env).items() if k[2] == first.date()}
    assert main(["rollups", "--since", "2026-11-01", "--until", "2026-11-03", "--repair"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:3] == [
        "2026-11-01…2026-11-02: not checked, raw readings are complete only from 2026-11-03 "
        "(retention may have dropped older chunks)",
        "2026-11-03: agree",
        "checked 1 day(s): 0 rollup(s) differed; rebuilt 0 day(s), 0 differ now",
    ]
    assert {k: v for k, v in _rollups(cloud_env).items() if k[2] == first.date()} == kept

    assert main(["rollups", "--since", "2026-10-01", "--until", "2026-11-02"]) == 2
    assert "raw readings are complete only from 2026-11-03" in capsys.readouterr().err


def test_a_rebuild_that_cannot_get_past_ingest_gives_up_and_says_so(cloud_env, capsys, monkeypatch):
    _three_days_of_readings(cloud_env)
    with psycopg.connect(cloud_env) as conn:
        conn.execute("UPDATE readings_daily SET n = 99 WHERE day = '2026-11-03'")
    monkeypatch.setattr(rollup_repair, "LOCK_TIMEOUT", "200ms")
    with psycopg.connect(cloud_env) as flush:
        # A flush in progress, holding what ingest's statement holds on the rollups.
        flush.execute("LOCK TABLE readings_daily IN ROW EXCLUSIVE MODE")
        code = main(["rollups", "--since", "2026-11-01", "--until", "2026-11-03", "--repair"])
        flush.rollback()
    captured = capsys.readouterr()
    assert code == 1
    assert "  rebuilding 2026-11-03 from its readings" in captured.out
    assert "gave up rebuilding the last day above" in captured.err
    assert "longer than 200ms" in captured.err
    assert main(["rollups", "--since", "2026-11-03", "--until", "2026-11-03"]) == 1  # unchanged


def test_a_rebuild_while_ingest_stores_the_same_days_loses_and_doubles_nothing(cloud_env):
    first = _three_days_of_readings(cloud_env)
    days = DayRange(date(2026, 11, 1), date(2026, 11, 3))
    stop = threading.Event()
    stored_live: list[int] = []
    failures: list[BaseException] = []

    def keep_storing() -> None:
        meter = SimulatedGlucoseMeter("RG-LIVE")
        try:
            while not stop.is_set():
                n = len(stored_live)
                at = first + timedelta(days=n % 3, minutes=n)
                store_readings(cloud_env, meter.measure(5.0, patient_id=f"L{n % 7}", at=at))
                stored_live.append(n)
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)

    storing = threading.Thread(target=keep_storing)
    storing.start()
    rebuilt_after: set[int] = set()  # how many flushes were stored when a rebuild began
    try:
        with psycopg.connect(cloud_env, autocommit=True) as conn:
            deadline = time.monotonic() + 60
            # Rebuilds back to back until ingest has stored 40 flushes among them.
            while len(stored_live) < 40 and time.monotonic() < deadline and not failures:
                rebuilt_after.add(len(stored_live))
                rollup_repair.rebuild(conn, days, "Asia/Shanghai")
    finally:
        stop.set()
        storing.join(30)
    assert failures == []
    assert len(stored_live) >= 40
    assert len(rebuilt_after) >= 10  # rebuilds all along the flushes, not bunched
    with psycopg.connect(cloud_env, autocommit=True) as conn:
        live = conn.execute("SELECT count(*) FROM readings WHERE patient_id LIKE 'L%'").fetchone()
        assert rollup_repair.differences(conn, days, "Asia/Shanghai") == []
    assert live[0] == len(stored_live)


@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["ingest"], ["retention"]])
def test_a_database_that_cannot_be_reached_is_one_line_naming_it_and_exit_2(command, tmp_path):
    port = free_port()  # nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    env.update(
        CAREBRIDGE_DATABASE_URL=f"postgresql://carer:s3cret@127.0.0.1:{port}/nowhere",
        CAREBRIDGE_HTTP_PORT=str(free_port()),
        CAREBRIDGE_RETENTION_DAYS="30",
    )
    done = subprocess.run(
        [sys.executable, "-m", "cloud", *command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2, done.stderr
    said = [line for line in done.stderr.splitlines() if not line.startswith("{")]
    assert said == [
        f"cloud {command[0]}: the database at host=127.0.0.1 port={port} dbname=nowhere "
        f'user=carer could not be used: connection failed: connection to server at "127.0.0.1",'
        f" port {port} failed: Connection refused"
    ]
    assert "Traceback" not in done.stderr
    assert "s3cret" not in done.stderr + done.stdout
