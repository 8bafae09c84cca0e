"""Statements on a shared aiosqlite connection that leave no open cursor behind.

aiosqlite runs every call on the connection's own thread, but a cursor it returns is freed
wherever its last reference drops — on the event loop's thread. Freeing an unclosed
`sqlite3.Cursor` resets its prepared statement, and the connection caches statements by
their SQL, so that reset can land, from the wrong thread, on the very statement another
task is using on the connection's thread at that moment: SQLite answers `SQLITE_MISUSE`
("bad parameter or other API misuse") and the other task's insert fails. With several
device sessions queueing readings at once this lost readings
(tests/edge_agent/test_sqlite_calls.py reproduces it). Every helper here closes its cursor
on the connection's thread before returning, so no SQLite call is made from the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import aiosqlite

Params = Sequence[Any]


async def run(db: aiosqlite.Connection, sql: str, params: Params = ()) -> int:
    """Execute one statement; return its row count (-1 for statements without one)."""
    async with db.execute(sql, params) as cursor:
        return cursor.rowcount


async def run_many(db: aiosqlite.Connection, sql: str, rows: Iterable[Params]) -> int:
    """Execute a statement once per row of parameters; return the rows it changed."""
    async with db.executemany(sql, rows) as cursor:
        return cursor.rowcount


async def run_script(db: aiosqlite.Connection, script: str) -> None:
    """Execute a script of statements (schema set-up), committing what came before."""
    async with db.executescript(script):
        pass


async def fetch_all(db: aiosqlite.Connection, sql: str, params: Params = ()) -> list[Any]:
    """Every row of a query (aiosqlite's execute_fetchall frees its cursor on its thread)."""
    return list(await db.execute_fetchall(sql, params))


async def fetch_one(db: aiosqlite.Connection, sql: str, params: Params = ()) -> Any | None:
    """The row of a query that yields at most one (a key or an aggregate), or None.

    One trip to the connection's thread, where execute, fetch and close would be three."""
    rows = await fetch_all(db, sql, params)
    return rows[0] if rows else None
