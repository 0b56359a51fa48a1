"""Login and bearer tokens (HS256 JWT: subject, role, token version, session id, expiry). The
user is re-read on every request, so a disabled user, a changed role, a reset password or a
logout stops tokens at once."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from app.db.credentials import RevokedToken
from app.db.engine import Database
from app.db.models import User, UserSite
from app.domain.errors import DomainError, NotAuthenticated, TooManyAttempts
from app.domain.roles import Role
from app.services import audit, throttle
from app.services.actor import Actor
from app.services.passwords import dummy_hash, verify_password
from app.services.throttle import LoginAttempt, Refused, insert_ignoring_conflict, stale_keys
from app.services.transaction import utcnow, writing
from app.settings import Settings

ALGORITHM = "HS256"

__all__ = ["LoginAttempt", "actor_from_token", "issue_token", "login", "logout", "unauthorized"]


def unauthorized(detail: str) -> DomainError:
    return NotAuthenticated("unauthorized", detail)


def login(
    db: Database,
    *,
    settings: Settings,
    username: str,
    password: str,
    source: str,
    device_id: str | None = None,
) -> User:
    """Check the password, throttled by key (app/services/throttle.py): the attempt is reserved
    first, and a refused one (429 with the seconds to wait) checks no password. Unknown, disabled
    and real users cost the same: one user read, one Argon2 check (against a dummy hash of the
    same parameters when there is no user), the same throttle and audit work.

    `source` is the client address as the app sees it; `device_id` comes from a valid device
    proof for this user name (app/services/device_proof.py), None without one."""
    keys = throttle.keys_for(
        settings=settings, source=source, username=username, device_id=device_id
    )
    now = utcnow()
    with writing(db) as session:
        outcome = throttle.reserve(
            session, settings=settings, keys=keys, username=username, source=source, now=now
        )
        user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if isinstance(outcome, Refused):
        raise _throttled(outcome.retry_after)
    if outcome.created:
        throttle.forget_stale(db, settings=settings, now=now)
    checked = verify_password(user.password_hash if user is not None else dummy_hash(), password)
    if checked and user is not None and user.active:
        with writing(db) as session:
            throttle.give_back(session, keys=keys, now=utcnow())
        return user
    if throttle.is_audited(outcome):  # decided by the counts alone, never by the user
        with writing(db) as session:
            throttle.audit_failure(
                session,
                username=username,
                source=source,
                reserved=outcome,
                known_device=device_id is not None,
            )
    raise unauthorized("The user name or password is wrong, or the account is disabled.")


def _throttled(retry_after: int) -> DomainError:
    if retry_after < 120:
        wait = "1 second" if retry_after == 1 else f"{retry_after} seconds"
    else:
        wait = f"{-(-retry_after // 60)} minutes"
    return TooManyAttempts(
        "too_many_attempts",
        f"Too many failed logins. Wait {wait} before trying again; a device you have logged in "
        "on before is not held up by other people's attempts.",
        retry_after=retry_after,
    )


def issue_token(*, user: User, secret: str, ttl_seconds: int, session_id: str | None = None) -> str:
    """A bearer token; `session_id` (the `sid` claim, new unless given) is what logout ends, so a
    token renewed within one session should carry it on."""
    now = utcnow()
    claims = {
        "sub": user.username,
        "role": user.role,
        "ver": user.token_version,
        "sid": session_id or secrets.token_hex(16),
        "iat": now,
        "exp": now + timedelta(seconds=ttl_seconds),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def _claims(token: str, secret: str) -> dict[str, object]:
    try:
        claims: dict[str, object] = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sid"]}
        )
    except jwt.ExpiredSignatureError:
        raise unauthorized("Your session has expired. Log in again.") from None
    except jwt.PyJWTError:
        raise unauthorized("The access token is not valid. Log in again.") from None
    return claims


def logout(db: Database, *, token: str, secret: str, ttl_seconds: int) -> None:
    """End the token's session on the server: every token of it is refused from now on. Ended
    sessions are forgotten once no token of theirs can still be valid."""
    with db.read() as session:
        actor = actor_from_token(session, token=token, secret=secret)
    claims = _claims(token, secret)
    now = utcnow()
    expires = datetime.fromtimestamp(int(str(claims["exp"])), UTC)
    keep_until = max(expires, now + timedelta(seconds=ttl_seconds))
    with writing(db) as session:
        ended = select(RevokedToken.session_id).where(RevokedToken.expires_at < now)
        session.execute(
            delete(RevokedToken).where(RevokedToken.session_id.in_(stale_keys(session, ended)))
        )
        insert_ignoring_conflict(
            session,
            RevokedToken,
            {"session_id": str(claims["sid"])[:64], "expires_at": keep_until},
        )
        audit.record(
            session,
            actor=actor,
            action="auth.logout",
            entity="user",
            entity_id=actor.username,
            before=None,
            after=None,
        )


_TOKEN_USER = (
    select(
        User.username,
        User.role,
        User.active,
        User.token_version,
        UserSite.site_id,
        select(RevokedToken.session_id)
        .where(RevokedToken.session_id == bindparam("session_id"))
        .exists(),
    )
    .outerjoin(UserSite, UserSite.user_id == User.id)
    .where(User.username == bindparam("username"))
)
"""Built once: read on every request, the same but for its parameters."""


def actor_from_token(session: Session, *, token: str, secret: str) -> Actor:
    """The token's user as it is now, in one statement (read on every request): its role, token
    version, sites, and whether the token's session was ended."""
    claims = _claims(token, secret)
    rows = session.execute(
        _TOKEN_USER, {"session_id": str(claims["sid"])[:64], "username": claims.get("sub")}
    ).all()
    if rows and rows[0][5]:
        raise unauthorized("You have logged out of this session. Log in again.")
    if (
        not rows
        or not rows[0].active
        or rows[0].role != claims.get("role")
        or rows[0].token_version != claims.get("ver", 0)
    ):
        raise unauthorized("The account is disabled or has changed. Log in again.")
    sites = frozenset(row.site_id for row in rows if row.site_id is not None)
    return Actor(rows[0].username, Role(rows[0].role), sites)
