"""Account administration: disable a user, reset a password (both end every token); a new
password must follow the password policy (app/domain/password_policy.py)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.db.models import User
from app.domain.errors import Conflict
from app.domain.password_policy import check_password
from app.domain.reasons import check_reason
from app.services import audit
from app.services.actor import Actor
from app.services.locks import lock_row
from app.services.passwords import hash_password


def _user(session: Session, username: str) -> User:
    return lock_row(session, model=User, key_column=User.username, key=username, what="User")


def disable(session: Session, *, actor: Actor, username: str, reason: str) -> None:
    reason = check_reason(reason)
    user = _user(session, username)
    if not user.active:
        raise Conflict("already_disabled", f"User {username} is disabled already.")
    user.active = False
    user.token_version += 1
    audit.record(
        session,
        actor=actor,
        action="user.disable",
        entity="user",
        entity_id=username,
        before={"active": True},
        after={"active": False},
        reason=reason,
    )


def reset_password(
    session: Session, *, actor: Actor, username: str, password: str, reason: str
) -> None:
    reason = check_reason(reason)
    user = _user(session, username)
    user.password_hash = hash_password(check_password(password, username=username))
    user.token_version += 1
    audit.record(
        session,
        actor=actor,
        action="user.reset_password",
        entity="user",
        entity_id=username,
        before=None,
        after={"token_version": user.token_version},
        reason=reason,
    )
