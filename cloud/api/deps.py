"""Dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Query, Request
from psycopg.rows import dict_row

from cloud.settings import CloudSettings


def _conn(request: Request) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with request.app.state.pool.connection() as conn:
        conn.row_factory = dict_row  # type: ignore[assignment]
        yield conn  # type: ignore[misc]


def _settings(request: Request) -> CloudSettings:
    settings: CloudSettings = request.app.state.settings
    return settings


Conn = Annotated[psycopg.Connection, Depends(_conn)]
Settings = Annotated[CloudSettings, Depends(_settings)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]
