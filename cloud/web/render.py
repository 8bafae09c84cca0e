"""What every page shares: the signed-in user, the language, the templates, the navigation
by role, and the pages for errors (sign-in needed, refused, assets missing)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from cloud.auth import TEAM_SCOPED, Role, User
from cloud.db import care_store
from cloud.privacy import mask_id_number, mask_name, mask_phone
from cloud.web import assets, i18n, session
from protocols.metrics import METRICS, Metric

templates = Jinja2Templates(directory=str(assets.TEMPLATES))


def _script_json(value: Any) -> str:
    """JSON safe inside <script>: no "<" can close the element early."""
    return json.dumps(value, ensure_ascii=False, default=str).replace("<", "\\u003c")


def _replace_page(params: Any, page: int) -> str:
    return urlencode({**dict(params), "page": page})


def _figure(value: float | None) -> str:
    """A score figure as the API gives it, without trailing zeros; "—" when nobody was
    measured."""
    return "—" if value is None else f"{value:g}"


templates.env.filters["replace_page"] = _replace_page
templates.env.filters["figure"] = _figure

# (path, text key, roles): the role's first entry is its home page.
NAV: tuple[tuple[str, str, frozenset[Role]], ...] = (
    ("/centre", "nav.centre", frozenset({Role.HEALTH_MANAGER})),
    ("/doctor", "nav.doctor", frozenset({Role.DOCTOR})),
    ("/workbench", "nav.workbench", frozenset({*TEAM_SCOPED, Role.QC_SUPERVISOR})),
    (
        "/dashboard",
        "nav.dashboard",
        frozenset({Role.CASE_MANAGER, Role.DOCTOR, Role.QC_SUPERVISOR}),
    ),
    ("/admin", "nav.admin", frozenset({Role.ADMIN})),
    (
        "/programmes",
        "nav.programmes",
        frozenset({Role.CASE_MANAGER, Role.HEALTH_MANAGER, Role.QC_SUPERVISOR, Role.ADMIN}),
    ),
    ("/qc", "nav.qc", frozenset({Role.QC_SUPERVISOR, Role.ADMIN})),
)


class PageError(Exception):
    """A page that cannot be shown: the handler renders it (or redirects to sign in)."""

    def __init__(self, status: int, message_key: str, detail: str = "") -> None:
        super().__init__(message_key)
        self.status = status
        self.message_key = message_key
        self.detail = detail


def home_for(role: Role) -> str:
    for path, _key, roles in NAV:
        if role in roles:
            return path
    return "/login"


def nav_for(role: Role) -> list[tuple[str, str]]:
    return [(path, key) for path, key, roles in NAV if role in roles]


def language(request: Request) -> str:
    return i18n.pick_language(request.cookies.get(session.LANG_COOKIE))


def node_modules(request: Request) -> Path:
    configured = request.app.state.settings.web_node_modules
    return Path(configured) if configured else assets.NODE_MODULES


def check_assets(request: Request) -> None:
    missing = assets.missing_assets(node_modules(request))
    if missing:
        raise PageError(503, "err.assets", ", ".join(missing))


@dataclass(frozen=True)
class Page:
    request: Request
    user: User
    lang: str

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return render(self.request, template, self.lang, self.user, status, **context)

    def require(self, *roles: Role) -> None:
        if self.user.role not in roles:
            raise PageError(403, "err.forbidden")


def page_for(request: Request, conn: Any) -> Page:
    """The signed-in user of a page request, or a redirect to the sign-in page."""
    check_assets(request)
    token = session.token_from_cookie(request)
    user = care_store.user_for_token(conn, token) if token else None
    if user is None:
        raise PageError(401, "login.title")
    return Page(request, user, language(request))


def render(
    request: Request,
    template: str,
    lang: str,
    user: User | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    zone = ZoneInfo(request.app.state.settings.timezone)
    t = i18n.translator(lang)

    def metric_name(metric: str) -> str:
        try:
            info = METRICS[Metric(metric)]
        except ValueError:
            return metric
        return info.name_en if lang == "en" else info.name_zh

    def local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return value.astimezone(zone).strftime(fmt) if value else ""

    response = templates.TemplateResponse(
        request,
        template,
        {
            "t": t,
            "lang": lang,
            "user": user,
            "nav": nav_for(user.role) if user else [],
            "path": request.url.path,
            "local": local,
            "metric_name": metric_name,
            "mask_name": mask_name,
            "mask_id_number": mask_id_number,
            "mask_phone": mask_phone,
            "tojson": _script_json,
            **context,
        },
        status_code=status,
    )
    response.headers["Cache-Control"] = "no-store"
    return response
