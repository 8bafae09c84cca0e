"""The browser session: the API's bearer token carried in a SameSite=Strict, HttpOnly cookie,
and the same-origin check that keeps cookie-authenticated changes CSRF-safe."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request, Response

COOKIE = "cb_session"
LANG_COOKIE = "cb_lang"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def token_from_cookie(request: Request) -> str | None:
    token = request.cookies.get(COOKIE, "").strip()
    return token or None


def start_session(response: Response, token: str, max_age_s: int) -> None:
    response.set_cookie(
        COOKIE, token, max_age=max_age_s, httponly=True, samesite="strict", path="/"
    )


def end_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def same_origin(request: Request) -> bool:
    """True when the request says it comes from a page of this site. SameSite=Strict
    already keeps the cookie off cross-site requests; this also refuses a request whose
    browser sent neither Origin nor Referer."""
    host = request.headers.get("host", "")
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or not host:
        return False
    return urlsplit(origin).netloc == host
