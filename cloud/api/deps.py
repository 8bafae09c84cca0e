"""Dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import psycopg
from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg.rows import dict_row

from cloud.auth import Role, User
from cloud.db import care_store
from cloud.settings import CloudSettings
from cloud.web import session


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


# Declared as a security scheme so the OpenAPI page offers "Authorize" for the token from
# POST /api/v1/auth/token.
_bearer = HTTPBearer(auto_error=False, description="token from POST /api/v1/auth/token")


def _request_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str:
    """The bearer token, else the web UI's session cookie, whose changes must come from a
    page of this site (CSRF)."""
    if credentials is not None and credentials.credentials:
        return credentials.credentials.strip()
    token = session.token_from_cookie(request)
    if token is None:
        raise HTTPException(401, "sign in first", headers={"WWW-Authenticate": "Bearer"})
    if request.method not in session.SAFE_METHODS and not session.same_origin(request):
        raise HTTPException(403, "cross-site request refused")
    return token


def _current_user(
    request: Request,
    conn: Conn,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    user = care_store.user_for_token(conn, _request_token(request, credentials))
    if user is None:
        raise HTTPException(401, "token unknown or expired", headers={"WWW-Authenticate": "Bearer"})
    return user


CurrentUser = Annotated[User, Depends(_current_user)]


def user_from_request(request: Request) -> User:
    """Authenticate with a connection held only for the look-up, for long-lived responses
    (event streams). Browsers' EventSource cannot send headers, so `?access_token=` works
    here too."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        token = request.query_params.get("access_token", "") or (
            session.token_from_cookie(request) or ""
        )
    if not token:
        raise HTTPException(401, "sign in first", headers={"WWW-Authenticate": "Bearer"})
    with request.app.state.pool.connection() as conn:
        user = care_store.user_for_token(conn, token.strip())
    if user is None:
        raise HTTPException(401, "token unknown or expired", headers={"WWW-Authenticate": "Bearer"})
    return user


def require(user: User, *roles: Role) -> None:
    if user.role not in roles:
        raise HTTPException(403, f"{user.role.value} may not do this")


def patient_access(
    conn: psycopg.Connection, user: User, patient_id: str, action: str, **detail: Any
) -> None:
    """Allow a read or change of one patient's data, and audit it; 404 when not allowed, so
    nobody learns which patients exist outside their care teams."""
    if not care_store.can_see_patient(conn, user, patient_id):
        care_store.audit(conn, user, f"denied:{action}", patient_id, **detail)
        raise HTTPException(404, "no such patient")
    care_store.audit(conn, user, action, patient_id, **detail)


@contextmanager
def lookup_as(status: int) -> Iterator[None]:
    """A store's LookupError (no such row, or not in the state the action needs) as HTTP."""
    try:
        yield
    except LookupError as exc:
        raise HTTPException(status, str(exc)) from exc
