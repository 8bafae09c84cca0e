"""Signing in and out of the web UI, the language switch, vendor assets, and showing a
patient's identifiers in full (a reason, a role that contacts patients, an audit row)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from cloud.api.care_routes import TOKEN_LIFETIME
from cloud.api.deps import Conn, CurrentUser, patient_access
from cloud.auth import Role, token_hash
from cloud.db import care_store
from cloud.web import assets, i18n, session
from cloud.web.render import check_assets, home_for, language, node_modules, render

router = APIRouter(include_in_schema=False)

# Roles that phone patients and so may need the full number or ID (QC reads masked only).
UNMASK_ROLES = (Role.CASE_MANAGER, Role.DOCTOR, Role.NURSE, Role.HEALTH_MANAGER)


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site, so the sign-in page cannot send anyone elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    return target if not urlsplit(target).netloc else None


@router.get("/")
def root(request: Request, conn: Conn) -> Response:
    token = session.token_from_cookie(request)
    user = care_store.user_for_token(conn, token) if token else None
    return RedirectResponse(home_for(user.role) if user else "/login", status_code=303)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    check_assets(request)
    return render(request, "login.html", language(request), None, next=_safe_next(next))


@router.post("/login")
async def login(request: Request, conn: Conn) -> Response:
    if not session.same_origin(request):
        raise HTTPException(403, "cross-site request refused")
    # A plain urlencoded form: parsed here rather than adding python-multipart for one form.
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    username = form.get("username", [""])[0].strip()
    password = form.get("password", [""])[0]
    target = _safe_next(form.get("next", [""])[0])
    # scrypt and the database are blocking work: keep them off the event loop, which also
    # carries every open event stream.
    return await run_in_threadpool(_sign_in, request, conn, username, password, target)


def _sign_in(
    request: Request, conn: Conn, username: str, password: str, target: str | None
) -> Response:
    token = care_store.issue_token(conn, username, password, TOKEN_LIFETIME)
    care_store.audit(
        conn, None, "sign_in" if token else "sign_in_failed", username=username, via="web"
    )
    if token is None:
        return render(
            request,
            "login.html",
            language(request),
            None,
            status=401,
            failed=True,
            username=username,
            next=target,
        )
    user = care_store.user_for_token(conn, token)
    assert user is not None
    response = RedirectResponse(target or home_for(user.role), status_code=303)
    session.start_session(response, token, int(TOKEN_LIFETIME.total_seconds()))
    return response


@router.post("/logout")
def logout(request: Request, conn: Conn) -> Response:
    if not session.same_origin(request):
        raise HTTPException(403, "cross-site request refused")
    token = session.token_from_cookie(request)
    if token:
        # Signing out ends the token itself, not only the cookie that carried it.
        conn.execute(
            "UPDATE api_tokens SET expires_at = now() WHERE token_hash = %s", (token_hash(token),)
        )
    response = RedirectResponse("/login", status_code=303)
    session.end_session(response)
    return response


@router.get("/lang/{code}")
def switch_language(request: Request, code: str) -> Response:
    if code not in i18n.LANGUAGES:
        raise HTTPException(404, "unknown language")
    back = _safe_next(urlsplit(request.headers.get("referer", "")).path) or "/"
    response = RedirectResponse(back, status_code=303)
    response.set_cookie(session.LANG_COOKIE, code, max_age=365 * 86400, samesite="strict", path="/")
    return response


@router.get("/assets/{name}")
def vendor_asset(request: Request, name: str) -> Response:
    path = assets.vendor_path(name, node_modules(request))
    if path is None or not path.is_file():
        raise HTTPException(404, "asset not installed: run scripts/setup.sh")
    return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})


class UnmaskIn(BaseModel):
    reason: str = Field(min_length=4, max_length=500)


@router.post("/web/patients/{patient_id}/identifiers")
def unmask(conn: Conn, user: CurrentUser, patient_id: str, body: UnmaskIn) -> dict[str, Any]:
    """The full ID number and phone, for a role that contacts patients, with the reason
    written to the audit log."""
    if user.role not in UNMASK_ROLES:
        care_store.audit(conn, user, "denied:unmask_identifiers", patient_id, reason=body.reason)
        raise HTTPException(403, f"{user.role.value} may not see identifiers in full")
    patient_access(conn, user, patient_id, "unmask_identifiers", reason=body.reason)
    row = conn.execute(
        "SELECT id_number, phone FROM patients WHERE patient_id = %s", (patient_id,)
    ).fetchone()
    assert row is not None
    return {"patient_id": patient_id, "id_number": row["id_number"], "phone": row["phone"]}
