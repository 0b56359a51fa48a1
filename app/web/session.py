"""The login session of the pages: its cookie, and `page_actor`, the dependency that admits
the logged-in user of the roles a page allows (and checks the CSRF token of every POST).

The session ends IRT_SESSION_IDLE_SECONDS after its last page request, and at the latest
IRT_SESSION_MAX_SECONDS after its login (docs/web.md, "Session"). The cookie holds the API's
token (which expires with the session) and, signed with the IRT secret key, the session's id,
user, start and end: the id makes the CSRF token, so that renewing the token does not void the
forms open in other tabs; the user lets a form sent after the end be kept for that user alone."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import DB, SettingsDep
from app.domain.errors import DomainError
from app.domain.roles import EVERYONE, Role
from app.services import attempts
from app.services.actor import Actor
from app.services.auth import actor_from_token, issue_token
from app.services.web_sessions import renewed_token
from app.settings import Settings
from app.web import kept_forms
from app.web.cookies import queue_cookie, set_cookie
from app.web.csrf import check_csrf, session_csrf_token
from app.web.refusals import LoginRequired, PageRefused

if TYPE_CHECKING:
    from app.db.models import User

__all__ = ["SESSION_COOKIE", "page_actor", "safe_next", "set_cookie", "start_session"]

SESSION_COOKIE = "irt_session"
RENEW_AFTER_FRACTION = 4
"""The token is re-issued once a quarter of the idle period has passed since it was issued
(not on every request: that would sign a token per page)."""

clock: Callable[[], float] = time.time
"""Seconds since the epoch; the tests move it on to age a session."""


def now() -> int:
    """The sessions' time (whole seconds, by `clock`)."""
    return int(clock())


@dataclass(frozen=True)
class WebSession:
    """What the session cookie holds (signed): `sid` is fixed from login to the end."""

    sid: str
    username: str
    started: int
    expires: int
    token: str


def _mac(secret: str, body: str) -> str:
    return hmac.new(secret.encode(), f"web-session\0{body}".encode(), hashlib.sha256).hexdigest()


def encode_session(web: WebSession, secret: str) -> str:
    fields = [web.sid, web.username, web.started, web.expires, web.token]
    body = base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")
    return f"{body}.{_mac(secret, body)}"


def decode_session(raw: str, secret: str) -> WebSession | None:
    """The session in a cookie; None when it was not made here (or was altered)."""
    body, _, mac = raw.rpartition(".")
    if not body or not hmac.compare_digest(mac, _mac(secret, body)):
        return None
    try:
        sid, username, started, expires, token = json.loads(
            base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        )
        return WebSession(str(sid), str(username), int(started), int(expires), str(token))
    except (ValueError, TypeError, binascii.Error):
        return None


def _set_session(request: Request, *, response: Response | None, web: WebSession) -> None:
    """The cookie outlives the session by the kept-form window, so that a form sent late is
    still known to be this user's; the server, not the cookie's age, ends the session."""
    settings: Settings = request.app.state.settings
    end = web.started + settings.session_max_seconds + settings.session_kept_form_seconds
    value = encode_session(web, settings.secret_key)
    max_age = max(0, end - now())
    if response is None:
        queue_cookie(request, name=SESSION_COOKIE, value=value, max_age=max_age)
    else:
        set_cookie(request, response=response, name=SESSION_COOKIE, value=value, max_age=max_age)


def start_session(request: Request, *, response: Response, user: User, settings: Settings) -> None:
    """Log `user` in in this browser: a new session id, and a token for the first idle period."""
    started = now()
    ttl = min(settings.session_idle_seconds, settings.session_max_seconds)
    sid = secrets.token_hex(16)
    token = issue_token(user=user, secret=settings.secret_key, ttl_seconds=ttl, session_id=sid)
    web = WebSession(sid, user.username, started, started + ttl, token)
    _set_session(request, response=response, web=web)


def safe_next(url: str | None) -> str:
    """Only a path of this site is a place to go back to after logging in."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    return url


def _here(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path


class Renewal(Enum):
    """When a request re-issues the session's token."""

    WHEN_DUE = "when due"  # every page: a quarter of the idle period after the last issue
    ALWAYS = "always"  # "Stay logged in"
    NEVER = "never"  # the warning's look at the time left, which is no activity


def _actor(db: DB, web: WebSession, secret: str) -> Actor | None:
    if clock() >= web.expires:
        return None
    try:
        with db.read() as session:
            return actor_from_token(session, token=web.token, secret=secret)
    except DomainError:
        return None


async def _ended(request: Request, web: WebSession | None, settings: Settings) -> LoginRequired:
    """The way to the login page; a form sent by the session's user is kept for them first
    (not an HTMX request: those redo nothing a user typed)."""
    if request.method in ("GET", "HEAD"):
        return LoginRequired(_here(request))
    if web is not None and not request.headers.get("HX-Request"):
        kept = await kept_forms.keep_expired_post(
            request,
            username=web.username,
            expected_csrf=session_csrf_token(settings.secret_key, web.sid),
            settings=settings,
            now=now(),
        )
        if kept:
            return LoginRequired(kept_forms.KEPT_PATH)
    return LoginRequired("/")


def _renew(request: Request, *, db: DB, web: WebSession, renewal: Renewal) -> WebSession:
    settings: Settings = request.app.state.settings
    at = now()
    idle = settings.session_idle_seconds
    end = min(at + idle, web.started + settings.session_max_seconds)
    due = renewal is Renewal.ALWAYS or (
        renewal is Renewal.WHEN_DUE and web.expires - at <= idle - idle // RENEW_AFTER_FRACTION
    )
    if not due or end <= web.expires:
        return web
    with db.read() as session:
        token = renewed_token(
            session,
            username=web.username,
            session_id=web.sid,
            secret=settings.secret_key,
            ttl_seconds=end - at,
        )
    renewed = WebSession(web.sid, web.username, web.started, end, token)
    _set_session(request, response=None, web=renewed)
    return renewed


def _dependency(roles: tuple[Role, ...], renewal: Renewal) -> Callable[..., Awaitable[Actor]]:
    allowed = frozenset(roles) if roles else EVERYONE

    async def check(request: Request, db: DB, settings: SettingsDep) -> Actor:
        raw = request.cookies.get(SESSION_COOKIE)
        web = decode_session(raw, settings.secret_key) if raw else None
        actor = _actor(db, web, settings.secret_key) if web is not None else None
        if web is None or actor is None:
            raise await _ended(request, web, settings)
        request.state.actor = actor
        request.state.session_id = web.sid
        request.state.session_token = web.token  # the API token: what a logout ends
        if request.method not in ("GET", "HEAD"):
            form = await request.form()
            check_csrf(request, form, session_csrf_token(settings.secret_key, web.sid))
            kept_forms.forget_when_sent(request, settings=settings, now=now())
        if actor.role not in allowed:
            await run_in_threadpool(
                attempts.record_forbidden,
                db,
                actor=actor,
                method=request.method,
                path=request.url.path,
            )
            raise PageRefused(
                403,
                "Not for your role",
                f"Your role ({actor.role.replace('_', ' ')}) may not open this page.",
            )
        web = _renew(request, db=db, web=web, renewal=renewal)
        request.state.session_expires = web.expires
        request.state.session_token = web.token
        request.state.session_extendable = web.expires < web.started + settings.session_max_seconds
        return actor

    check.allowed_roles = allowed  # type: ignore[attr-defined]
    return check


def page_actor(*roles: Role) -> Callable[..., Awaitable[Actor]]:
    """A page dependency: the logged-in user (303 to /login when there is no valid session),
    refused with a 403 page unless of one of `roles` (recorded in the audit trail as
    `request.forbidden`); every POST must carry the CSRF token. The request renews the
    session (re-issues its token when due)."""
    return _dependency(roles, Renewal.WHEN_DUE)


def session_actor(renewal: Renewal) -> Callable[..., Awaitable[Actor]]:
    """The dependency of the session's own routes (any role): "Stay logged in" renews always,
    the look at the time left never."""
    return _dependency((), renewal)


def seconds_left(request: Request) -> int | None:
    """Seconds until this request's session ends (None outside a session)."""
    expires: int | None = getattr(request.state, "session_expires", None)
    return None if expires is None else max(0, expires - now())


def mark_page(request: Request) -> None:
    """Router-level dependency: errors of this request are shown as HTML pages."""
    request.state.is_page = True
