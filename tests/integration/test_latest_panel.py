"""The latest readings of a large panel, read in two halves on two connections."""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import PoolTimeout

from cloud.db import readings_queries as q

_COLUMNS = "patient_id, metric, time, value, reading_id, source, item_json"
_ITEM = "patient_latest_item(p, m, t, v, r, s)"


def _fill(conn: psycopg.Connection, patients: int) -> None:
    # Mixed-case and digit ids, so byte order and a locale's order would differ.
    conn.execute(
        f"""INSERT INTO patient_latest ({_COLUMNS})
            SELECT *, {_ITEM} FROM (
                SELECT CASE WHEN i %% 2 = 0 THEN 'p' ELSE 'P' END || i, m, now(), i,
                       gen_random_uuid(), 'home'
                FROM generate_series(1, %s) i, unnest(array['systolic', 'diastolic']) m
            ) x(p, m, t, v, r, s)""",
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


def test_each_kept_json_object_says_what_its_row_says_in_utc(database_url):
    odd = ['say "hi"', "back\\slash", "tab\there", "é-Ω", "P1"]
    # dict rows, as the API's connections give them to `latest_for`
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute("SET TimeZone = 'Asia/Shanghai'")  # the object must not depend on it
        conn.execute(
            f"""INSERT INTO patient_latest ({_COLUMNS})
                SELECT *, {_ITEM} FROM (
                    SELECT p, m, t, v, gen_random_uuid(), 'clinic'
                    FROM unnest(%s::text[]) p,
                         (VALUES ('systolic', timestamptz '2026-11-20 09:30:00+08', 121.5),
                                 ('glucose', timestamptz '2026-11-20 23:59:59.000123+00',
                                  0.1::float8 + 0.2::float8)) x(m, t, v)
                ) y(p, m, t, v, r, s)""",
            (odd,),
        )
        kept = json.loads(q.latest_for_as_json(conn, odd))
        rows = q.latest_for(conn, odd)
    assert len(kept) == len(rows) == 2 * len(odd)
    for item, row in zip(kept, rows, strict=True):
        assert item["measured_at"].endswith("+00:00")
        assert datetime.fromisoformat(item["measured_at"]) == row["measured_at"]
        assert item == {
            **row,
            "reading_id": str(row["reading_id"]),
            "measured_at": item["measured_at"],
        }
    assert {i["measured_at"] for i in kept} == {
        "2026-11-20T01:30:00+00:00", "2026-11-20T23:59:59.000123+00:00"
    }  # fmt: skip
    assert 0.1 + 0.2 in {i["value"] for i in kept}  # every digit of a double survives


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
            f"""INSERT INTO patient_latest ({_COLUMNS})
                SELECT *, {_ITEM} FROM (
                    SELECT p, 'systolic', now(), 120.0, gen_random_uuid(), 'home'
                    FROM unnest(%s::text[]) p
                ) x(p, m, t, v, r, s)""",
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
