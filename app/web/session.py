"""The login session of the pages: its cookie, and `page_actor`, the dependency that admits
the logged-in user of the roles a page allows (and checks the CSRF token of every POST)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import Response

from app.api.deps import DB, SettingsDep
from app.domain.errors import DomainError
from app.domain.roles import EVERYONE, Role
from app.services.actor import Actor
from app.services.auth import actor_from_token
from app.web.csrf import check_csrf, session_csrf_token
from app.web.refusals import LoginRequired, PageRefused

SESSION_COOKIE = "irt_session"


def set_cookie(
    request: Request, *, response: Response, name: str, value: str, max_age: int | None
) -> None:
    """A cookie no script can read and no other site can send; HTTPS-only when the request came
    over HTTPS (as told by a trusted proxy, IRT_FORWARDED_ALLOW_IPS) or IRT_SECURE_COOKIES is on."""
    secure = request.app.state.settings.secure_cookies or request.url.scheme == "https"
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=bool(secure),
    )


def safe_next(url: str | None) -> str:
    """Only a path of this site is a place to go back to after logging in."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    return url


def _here(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path


def page_actor(*roles: Role) -> Callable[..., Awaitable[Actor]]:
    """A page dependency: the logged-in user (303 to /login when there is no valid session),
    refused with a 403 page unless of one of `roles`; every POST must carry the CSRF token."""
    allowed = frozenset(roles) if roles else EVERYONE

    async def check(request: Request, db: DB, settings: SettingsDep) -> Actor:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise LoginRequired(_here(request) if request.method == "GET" else "/")
        try:
            with db.read() as session:
                actor = actor_from_token(session, token=token, secret=settings.secret_key)
        except DomainError:
            raise LoginRequired(_here(request) if request.method == "GET" else "/") from None
        request.state.actor = actor
        request.state.session_token = token
        if request.method not in ("GET", "HEAD"):
            form = await request.form()
            check_csrf(request, form, session_csrf_token(settings.secret_key, token))
        if actor.role not in allowed:
            raise PageRefused(
                403,
                "Not for your role",
                f"Your role ({actor.role.replace('_', ' ')}) may not open this page.",
            )
        return actor

    check.allowed_roles = allowed  # type: ignore[attr-defined]
    return check


def mark_page(request: Request) -> None:
    """Router-level dependency: errors of this request are shown as HTML pages."""
    request.state.is_page = True
