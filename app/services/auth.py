"""Login and bearer tokens (HS256 JWT: subject, role, token version, expiry). The user is re-read
on every request, so a disabled user, a changed role or a reset password stops tokens at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import jwt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.engine import Database
from app.db.models import LoginFailure, User, UserSite
from app.domain.errors import DomainError, NotAuthenticated, TooManyAttempts
from app.domain.roles import Role
from app.services import audit
from app.services.actor import Actor
from app.services.passwords import verify_password
from app.services.transaction import utcnow, writing
from app.settings import Settings

ALGORITHM = "HS256"


def unauthorized(detail: str) -> DomainError:
    return NotAuthenticated("unauthorized", detail)


@dataclass(frozen=True)
class LoginAttempt:
    """Who tried to log in, as the audit trail records a failed attempt."""

    username: str
    audit_role: str = "anonymous"


def login(db: Database, *, settings: Settings, username: str, password: str) -> User:
    """Check the password; throttle repeated failures per user name (429); audit each failure."""
    since = utcnow() - timedelta(seconds=settings.login_failure_window_seconds)
    with db.read() as session:
        recent = int(
            session.execute(
                select(func.count())
                .select_from(LoginFailure)
                .where(LoginFailure.username == username, LoginFailure.failed_at > since)
            ).scalar_one()
        )
        user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
        throttled = recent >= settings.login_max_failures
        if (
            not throttled
            and user is not None
            and user.active
            and verify_password(user.password_hash, password)
        ):
            return user
    name = username[:80]
    with writing(db) as session:
        session.add(LoginFailure(username=name, failed_at=utcnow()))
        action = "auth.login_throttled" if throttled else "auth.login_failed"
        audit.record(
            session,
            actor=LoginAttempt(name),
            action=action,
            entity="user",
            entity_id=name,
            before=None,
            after={"failures_in_window": recent + 1},
        )
    if throttled:
        raise TooManyAttempts(
            "too_many_attempts",
            f"Too many failed logins for this user. Wait "
            f"{settings.login_failure_window_seconds // 60} minutes, or ask an administrator.",
        )
    raise unauthorized("The user name or password is wrong, or the account is disabled.")


def issue_token(*, user: User, secret: str, ttl_seconds: int) -> str:
    now = utcnow()
    claims = {
        "sub": user.username,
        "role": user.role,
        "ver": user.token_version,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_seconds),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def actor_from_token(session: Session, *, token: str, secret: str) -> Actor:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp"]})
    except jwt.ExpiredSignatureError:
        raise unauthorized("Your session has expired. Log in again.") from None
    except jwt.PyJWTError:
        raise unauthorized("The access token is not valid. Log in again.") from None
    user = session.execute(
        select(User).where(User.username == claims.get("sub"))
    ).scalar_one_or_none()
    if (
        user is None
        or not user.active
        or user.role != claims.get("role")
        or user.token_version != claims.get("ver", 0)
    ):
        raise unauthorized("The account is disabled or has changed. Log in again.")
    sites = session.execute(select(UserSite.site_id).where(UserSite.user_id == user.id)).scalars()
    return Actor(user.username, Role(user.role), frozenset(sites))
