"""`python -m cloud …` jobs as an operator runs them: `replay-dead-letters` (a dry run says
what it would publish and changes nothing; without a choice of letters it refuses) and
`retention` (dead letters go with the readings' horizon unless given their own); and which
letters a replay chooses, read a page at a time."""

from __future__ import annotations

import logging

import psycopg
import pytest

from cloud.__main__ import main
from cloud.ingest.dead_letter_replay import Selection, counts, letter_pages, mark_replayed
from cloud.settings import get_settings
from protocols import topics


@pytest.fixture
def cloud_env(database_url, monkeypatch):
    monkeypatch.setenv("CAREBRIDGE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield database_url
    # `main` sets up logging for a process of its own; this one is pytest's.
    root.handlers[:] = handlers
    root.setLevel(level)
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
