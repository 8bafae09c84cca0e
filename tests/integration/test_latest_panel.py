"""The latest readings of a large panel, read in two halves on two connections."""

from __future__ import annotations

import json
from contextlib import contextmanager

import psycopg
from psycopg_pool import PoolTimeout

from cloud.db import readings_queries as q


def _fill(conn: psycopg.Connection, patients: int) -> None:
    # Mixed-case and digit ids, so byte order and a locale's order would differ.
    conn.execute(
        """INSERT INTO patient_latest (patient_id, metric, time, value, reading_id, source)
           SELECT CASE WHEN i %% 2 = 0 THEN 'p' ELSE 'P' END || i, m, now(), i, gen_random_uuid(),
                  'home'
           FROM generate_series(1, %s) i, unnest(array['systolic', 'diastolic']) m""",
        (patients,),
    )


def test_a_large_panel_read_in_halves_equals_one_query_in_order(database_url):
    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        psycopg.connect(database_url, autocommit=True) as other,
    ):
        # As on a server set up with a language's collation, where 'p2' sorts before 'P3'.
        conn.execute(
            'ALTER TABLE patient_latest ALTER COLUMN patient_id TYPE text COLLATE "und-x-icu"'
        )
        _fill(conn, q.SPLIT_FROM + 500)
        ids = [f"{'p' if i % 2 == 0 else 'P'}{i}" for i in range(1, q.SPLIT_FROM + 501)]
        ids += ["nobody", ids[0]]  # unknown and repeated ids change nothing

        @contextmanager
        def lend():
            yield other

        split = json.loads(q.latest_for_panel_as_json(conn, lend, ids))
        whole = json.loads(q.latest_for_as_json(conn, ids))
    assert len(whole) == 2 * (q.SPLIT_FROM + 500)
    assert split == whole
    assert [r["patient_id"] for r in split] == sorted(r["patient_id"] for r in split)


def test_a_busy_pool_reads_both_halves_on_the_requests_connection(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        _fill(conn, q.SPLIT_FROM)
        ids = [f"{'p' if i % 2 == 0 else 'P'}{i}" for i in range(1, q.SPLIT_FROM + 1)]

        def busy():
            raise PoolTimeout("every connection is in use")

        items = json.loads(q.latest_for_panel_as_json(conn, busy, ids))
    assert len(items) == 2 * q.SPLIT_FROM


def test_json_arrays_join_without_parsing():
    assert q.join_json_arrays(b"[]", b"[]") == b"[]"
    assert q.join_json_arrays(b'[{"a": 1}]', b"[]") == b'[{"a": 1}]'
    assert q.join_json_arrays(b"[]", b'[{"a": 1}]') == b'[{"a": 1}]'
    assert json.loads(q.join_json_arrays(b'[{"a": 1}]', b'[{"a": 2}, {"a": 3}]')) == [
        {"a": 1},
        {"a": 2},
        {"a": 3},
    ]


def test_ids_that_need_quoting_in_an_array_literal_are_read_back(database_url):
    odd = ['say "hi"', "back\\slash", "a,b", "{braced}", " spaced ", "NULL", "é-Ω", ""]
    fillers = [f"F{i:05d}" for i in range(q.SPLIT_FROM)]  # enough for the two-halves path
    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        psycopg.connect(database_url, autocommit=True) as other,
    ):
        conn.execute(
            """INSERT INTO patient_latest (patient_id, metric, time, value, reading_id, source)
               SELECT p, 'systolic', now(), 120, gen_random_uuid(), 'home'
               FROM unnest(%s::text[]) p""",
            (odd + fillers,),
        )

        @contextmanager
        def lend():
            yield other

        alone = json.loads(q.latest_for_as_json(conn, [*odd, "nobody"]))
        panel = json.loads(q.latest_for_panel_as_json(conn, lend, odd + fillers))
    assert [r["patient_id"] for r in alone] == sorted(odd, key=lambda s: s.encode())
    assert [r["patient_id"] for r in panel] == sorted(odd + fillers, key=lambda s: s.encode())


def test_the_panel_comes_inside_the_envelope_asked_for(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        _fill(conn, q.SPLIT_FROM)
        ids = [f"{'p' if i % 2 == 0 else 'P'}{i}" for i in range(1, q.SPLIT_FROM + 1)]

        @contextmanager
        def same():
            yield conn

        body = q.latest_for_panel_as_json(conn, same, ids, before=b'{"items":', after=b"}")
        nobody = q.latest_for_panel_as_json(conn, same, ["nobody"], before=b"{", after=b"}")
        # Statements prepared after a few runs (psycopg's default) would soon be planned
        # without knowing how many ids the array holds.
        for _ in range(8):
            q.latest_for_as_json(conn, ids[:10])
        (prepared,) = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
    assert len(json.loads(body)["items"]) == 2 * q.SPLIT_FROM
    assert nobody == b"{[]}"
    assert prepared == 0


def test_joined_arrays_keep_the_envelope():
    assert q.join_json_arrays(b"[]", b"[]", before=b"(", after=b")") == b"([])"
    assert q.join_json_arrays(b"[1]", b"[]", before=b"(", after=b")") == b"([1])"
    assert q.join_json_arrays(b"[]", b"[2]", before=b"(", after=b")") == b"([2])"
    assert q.join_json_arrays(b"[1]", b"[2,3]", before=b"(", after=b")") == b"([1,2,3])"
