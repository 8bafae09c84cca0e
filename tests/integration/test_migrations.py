"""The one migration path, run on empty databases of the real TimescaleDB (the other tests'
databases are copies of one it migrated, `migrated_template` in tests/conftest.py)."""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from cloud.db.migrate import MIGRATIONS_DIR, MigrationError, discover, migrate
from devstack.postgres import LocalPostgres


@pytest.fixture
def empty_database(pg_server: LocalPostgres) -> Iterator[Callable[[], str]]:
    names: list[str] = []

    def make() -> str:
        name = f"m_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(pg_server.admin_dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        names.append(name)
        return pg_server.admin_dsn(name)

    yield make
    with psycopg.connect(pg_server.admin_dsn(), autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _applied(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT version, name FROM schema_migrations ORDER BY version"
        ).fetchall()


def test_an_empty_database_gets_every_migration_in_order_then_nothing_more(empty_database):
    url = empty_database()
    everything = discover()

    assert migrate(url) == [m.name for m in everything]
    assert _applied(url) == [(m.version, m.name) for m in everything]
    with psycopg.connect(url) as conn:
        hypertables = {
            row[0]
            for row in conn.execute(
                "SELECT hypertable_name FROM timescaledb_information.hypertables"
            )
        }
    assert "readings" in hypertables
    assert migrate(url) == []


def test_two_processes_starting_at_once_apply_each_migration_once(empty_database):
    url = empty_database()
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(url))
        except BaseException as exc:  # the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert sorted(results[0] + results[1]) == sorted(m.name for m in discover())
    assert len(_applied(url)) == len(discover())


def _copy_of_migrations(tmp_path: Path, up_to: int) -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql"))[:up_to]:
        shutil.copy(path, directory / path.name)
    return directory


def test_a_migration_edited_after_it_was_applied_is_refused(empty_database, tmp_path):
    url = empty_database()
    directory = _copy_of_migrations(tmp_path, up_to=3)
    migrate(url, directory)
    last = sorted(directory.glob("*.sql"))[-1]
    last.write_text(last.read_text(encoding="utf-8") + "\n-- edited\n", encoding="utf-8")

    with pytest.raises(MigrationError, match=f"{last.stem} was changed after it was applied"):
        migrate(url, directory)


def test_a_failing_migration_leaves_the_database_at_the_one_before(empty_database, tmp_path):
    url = empty_database()
    directory = _copy_of_migrations(tmp_path, up_to=2)
    (directory / "0900_broken.sql").write_text(
        "CREATE TABLE half_done (id integer);\nSELECT no_such_function();\n", encoding="utf-8"
    )

    with pytest.raises(MigrationError, match="0900_broken failed and none of it") as failed:
        migrate(url, directory)

    assert isinstance(failed.value.__cause__, psycopg.errors.UndefinedFunction)

    assert [version for version, _ in _applied(url)] == [m.version for m in discover()][:2]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
