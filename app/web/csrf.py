"""CSRF protection of the forms: every token is an HMAC with the IRT secret key of what a cookie
the browser sends holds (the session's id, or before login a pre-session), so no token is stored
server-side."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request
from starlette.datastructures import FormData

from app.web.refusals import PageRefused

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_CSRF_COOKIE = "irt_login_csrf"


def _hmac(secret: str, purpose: str, value: str) -> str:
    message = f"{purpose}\0{value}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def session_csrf_token(secret: str, session_id: str) -> str:
    """The CSRF token of a session: an HMAC of its id with the IRT secret key. The id stays the
    same while the session's cookie is renewed, so a form open in another tab stays valid."""
    return _hmac(secret, "csrf", session_id)


def login_csrf_token(secret: str, pre_session: str) -> str:
    """The login form's token: an HMAC of the pre-session cookie (login CSRF protection)."""
    return _hmac(secret, "login-csrf", pre_session)


def new_pre_session() -> str:
    """The value of a new pre-session cookie, which the login form's token is made from."""
    return secrets.token_urlsafe(32)


def _sent_csrf(request: Request, form: FormData | None) -> str:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and form is not None:
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    return sent or ""


def csrf_refused() -> PageRefused:
    return PageRefused(
        403,
        "The form has expired",
        "The form could not be verified (a missing or wrong security token), so nothing was "
        "changed. Go back, reload the page and submit it again.",
    )


def csrf_matches(request: Request, form: FormData | None, expected: str) -> bool:
    """Whether the request's header or form field carries `expected`."""
    return hmac.compare_digest(_sent_csrf(request, form), expected)


def check_csrf(request: Request, form: FormData | None, expected: str) -> None:
    """Refuse (403 page) a request whose header or form field does not carry `expected`."""
    if not csrf_matches(request, form, expected):
        raise csrf_refused()
