"""A form sent after its session ended is kept, not lost (WCAG 2.2.5): its fields go into a short-
lived cookie, encrypted and authenticated (AES-256-GCM, key derived from the IRT secret key), so
nothing is stored server-side; after the same user logs in again, /session/kept shows it with a
"Submit now" button. The CSRF token and any password field are never kept; the one-time key is,
so that sending it again, or twice, still does the work once."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import Request

from app.settings import Settings
from app.web.cookies import queue_cookie, queue_deletion
from app.web.csrf import CSRF_FIELD, csrf_matches

KEPT_COOKIE = "irt_kept_form"
KEPT_PATH = "/session/kept"
IDEMPOTENCY_FIELD = "idempotency_key"
MAX_COOKIE_CHARS = 3800
"""Browsers keep cookies up to 4096 bytes; a larger form is not kept (none of ours is)."""
_AAD = b"irt kept form v1"


@dataclass(frozen=True)
class KeptForm:
    """A form its user sent after the session ended: where it went and what it held."""

    username: str
    action: str
    fields: tuple[tuple[str, str], ...]
    kept_at: int
    asked: tuple[str, ...] = ()
    """The password fields the form had (an electronic signature's): never kept, so the kept
    page asks for them again."""

    def shown_fields(self) -> list[tuple[str, str]]:
        """The answers, as the kept-form page lists them (not the one-time key)."""
        return [(name, value) for name, value in self.fields if name != IDEMPOTENCY_FIELD]


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"irt kept-form key", hashlib.sha256).digest()


def seal(kept: KeptForm, secret: str) -> str:
    """The cookie value: nonce and ciphertext, base64url."""
    payload = json.dumps(
        {
            "u": kept.username,
            "a": kept.action,
            "f": kept.fields,
            "t": kept.kept_at,
            "p": kept.asked,
        },
        separators=(",", ":"),
    ).encode()
    nonce = secrets.token_bytes(12)
    sealed = nonce + AESGCM(_key(secret)).encrypt(nonce, payload, _AAD)
    return base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def unseal(value: str, secret: str) -> KeptForm | None:
    """The kept form, or None when the value was not made with this secret key or was altered."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        payload = AESGCM(_key(secret)).decrypt(raw[:12], raw[12:], _AAD)
        data = json.loads(payload)
        fields = tuple((str(name), str(text)) for name, text in data["f"])
        asked = tuple(str(name) for name in data.get("p", ()))
        return KeptForm(str(data["u"]), str(data["a"]), fields, int(data["t"]), asked)
    except (InvalidTag, ValueError, binascii.Error, KeyError, TypeError):
        return None


def _never_kept(name: str) -> bool:
    return name == CSRF_FIELD or "password" in name.lower()


def _action(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path


async def keep_expired_post(
    request: Request, *, username: str, expected_csrf: str, settings: Settings, now: int
) -> bool:
    """Keep the form of a POST whose session has ended, for `username`; True when kept. Only a
    form that carries its session's CSRF token is kept (it came from that user's page); a form
    with a file, or too large for a cookie, is not."""
    form = await request.form()
    if not csrf_matches(request, form, expected_csrf):
        return False
    fields: list[tuple[str, str]] = []
    asked: list[str] = []
    for name, value in form.multi_items():
        if not isinstance(value, str):
            return False
        if not _never_kept(name):
            fields.append((name, value))
        elif name != CSRF_FIELD:
            asked.append(name)
    kept = KeptForm(username, _action(request), tuple(fields), now, tuple(asked))
    value = seal(kept, settings.secret_key)
    if len(value) > MAX_COOKIE_CHARS:
        return False
    queue_cookie(request, name=KEPT_COOKIE, value=value, max_age=settings.session_kept_form_seconds)
    return True


def read_kept(request: Request, *, settings: Settings, now: int) -> KeptForm | None:
    """The form kept in this browser, unless it is older than IRT_SESSION_KEPT_FORM_SECONDS."""
    raw = request.cookies.get(KEPT_COOKIE)
    kept = unseal(raw, settings.secret_key) if raw else None
    if kept is None or now - kept.kept_at >= settings.session_kept_form_seconds:
        return None
    return kept


def kept_for(request: Request, *, username: str, settings: Settings, now: int) -> KeptForm | None:
    """The kept form of `username`; another user's is deleted, never shown."""
    kept = read_kept(request, settings=settings, now=now)
    if kept is not None and kept.username == username:
        return kept
    if KEPT_COOKIE in request.cookies:
        queue_deletion(request, KEPT_COOKIE)
    return None


def forget_when_sent(request: Request, *, settings: Settings, now: int) -> None:
    """A logged-in POST to the kept form's own address is that form sent again (or a newer one):
    the kept copy is no longer needed. An unreadable or stale one goes too."""
    if KEPT_COOKIE not in request.cookies:
        return
    kept = read_kept(request, settings=settings, now=now)
    if kept is None or kept.action == _action(request):
        queue_deletion(request, KEPT_COOKIE)


def after_login(request: Request, *, username: str, settings: Settings, now: int) -> str | None:
    """Where a login goes when its user has a kept form (the kept-form page), else None; a
    different user's kept form is deleted at that login."""
    return KEPT_PATH if kept_for(request, username=username, settings=settings, now=now) else None
