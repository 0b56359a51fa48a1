"""Login and bearer tokens (HS256 JWT: subject, role, expiry; the user is re-read per request)."""

from __future__ import annotations

from datetime import timedelta

import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import User, UserSite
from app.domain.roles import Role
from app.services.actor import Actor
from app.services.errors import ServiceError
from app.services.passwords import verify_password
from app.services.transaction import utcnow

ALGORITHM = "HS256"


def unauthorized(detail: str) -> ServiceError:
    return ServiceError(401, "unauthorized", detail)


def authenticate(session: Session, username: str, password: str) -> User:
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None or not user.active or not verify_password(user.password_hash, password):
        raise unauthorized("The user name or password is wrong, or the account is disabled.")
    return user


def issue_token(user: User, secret: str, ttl_seconds: int) -> str:
    now = utcnow()
    claims = {
        "sub": user.username,
        "role": user.role,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_seconds),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def actor_from_token(session: Session, token: str, secret: str) -> Actor:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp"]})
    except jwt.ExpiredSignatureError:
        raise unauthorized("Your session has expired. Log in again.") from None
    except jwt.PyJWTError:
        raise unauthorized("The access token is not valid. Log in again.") from None
    user = session.execute(
        select(User).where(User.username == claims.get("sub"))
    ).scalar_one_or_none()
    if user is None or not user.active or user.role != claims.get("role"):
        raise unauthorized("The account is disabled or has changed. Log in again.")
    sites = session.execute(select(UserSite.site_id).where(UserSite.user_id == user.id)).scalars()
    return Actor(user.username, Role(user.role), frozenset(sites))
