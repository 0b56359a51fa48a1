"""Who runs an `irt` command: a named user, by password or by a personal token, never an
anonymous operator (21 CFR 11.10(d), (e): the trail names the person).

A personal token is 32 random bytes shown once; only its SHA-256 is kept (it is long and random,
so a slow hash adds nothing), and it is revoked, never deleted. A wrong password at the command
line is audited (`auth.cli_login_failed`) and counted like a wrong signature: five in fifteen
minutes pause the user name (429)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.credentials import ApiToken
from app.db.engine import Database
from app.db.models import AuditEntry, User, UserSite
from app.domain.errors import NotAuthenticated, NotFound, NotPermitted, TooManyAttempts
from app.domain.reasons import check_reason
from app.domain.roles import Role
from app.services import audit
from app.services.actor import Actor
from app.services.passwords import verify_password
from app.services.signatures import MAX_FAILURES, WINDOW_SECONDS
from app.services.transaction import utcnow, writing

TOKEN_PREFIX = "irt_"


@dataclass(frozen=True)
class Attempt:
    """A failed command-line login, as the trail names it."""

    username: str
    audit_role: str = "anonymous"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _actor(session: Session, user: User) -> Actor:
    sites = session.execute(select(UserSite.site_id).where(UserSite.user_id == user.id)).scalars()
    return Actor(user.username, Role(user.role), frozenset(sites))


def check_role(actor: Actor, roles: Iterable[Role]) -> Actor:
    """The same rule as the API's `require`: a role not allowed is refused (403)."""
    if actor.role not in frozenset(roles):
        raise NotPermitted("forbidden", f"Your role ({actor.role}) may not do this.")
    return actor


def actor_by_password(db: Database, *, username: str, password: str) -> Actor:
    """The user, if the password is theirs and the account active; failures audited, paused."""
    since = (utcnow() - timedelta(seconds=WINDOW_SECONDS)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    name = username[:80]
    with db.read() as session:
        failures = int(
            session.execute(
                select(func.count())
                .select_from(AuditEntry)
                .where(
                    AuditEntry.entity_id == name,
                    AuditEntry.action == "auth.cli_login_failed",
                    AuditEntry.occurred_at > since,
                )
            ).scalar_one()
        )
        user = session.execute(select(User).where(User.username == name)).scalar_one_or_none()
        throttled = failures >= MAX_FAILURES
        if (
            not throttled
            and user is not None
            and user.active
            and verify_password(user.password_hash, password)
        ):
            return _actor(session, user)
    with writing(db) as session:
        audit.record(
            session,
            actor=Attempt(name),
            action="auth.cli_login_failed",
            entity="user",
            entity_id=name,
            before=None,
            after={"throttled": throttled},
        )
    if throttled:
        raise TooManyAttempts(
            "too_many_attempts",
            f"Too many wrong passwords for this user; wait {WINDOW_SECONDS // 60} minutes.",
            retry_after=WINDOW_SECONDS,
        )
    raise NotAuthenticated(
        "unauthorized", "The user name or password is wrong, or the account is disabled."
    )


def actor_by_token(db: Database, *, token: str) -> Actor:
    """The user a live personal token belongs to (an active account), or 401."""
    with db.read() as session:
        row = session.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_sha256 == _digest(token.strip()))
        ).first()
        if row is None or row[0].revoked_at is not None or not row[1].active:
            raise NotAuthenticated(
                "unauthorized", "The token is not valid, revoked, or its account is disabled."
            )
        return _actor(session, row[1])


def create_token(session: Session, *, actor: Actor, name: str) -> tuple[int, str]:
    """A new personal token of `actor` (id, text); the text is shown once, kept as SHA-256."""
    user = session.execute(select(User).where(User.username == actor.username)).scalar_one()
    text = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name[:80], token_sha256=_digest(text), created_at=utcnow())
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="token.create",
        entity="api_token",
        entity_id=row.id,
        before=None,
        after={"name": row.name, "user": actor.username},
    )
    return row.id, text


def revoke_token(session: Session, *, actor: Actor, token_id: int, reason: str) -> None:
    """Revoke one of the actor's own tokens (a sponsor admin may revoke anyone's)."""
    reason = check_reason(reason)
    row = session.get(ApiToken, token_id)
    owner = None if row is None else session.get(User, row.user_id)
    if (
        row is None
        or owner is None
        or (owner.username != actor.username and actor.role != Role.SPONSOR_ADMIN)
    ):
        raise NotFound("not_found", f"Token {token_id} was not found.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(
            session,
            actor=actor,
            action="token.revoke",
            entity="api_token",
            entity_id=row.id,
            before={"revoked": False},
            after={"revoked": True, "user": owner.username},
            reason=reason,
        )


def has_users(db: Database) -> bool:
    with db.read() as session:
        return session.execute(select(User.id).limit(1)).first() is not None
