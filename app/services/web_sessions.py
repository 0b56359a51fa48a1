"""The token of a web session, re-issued while its user keeps working (app/web/session.py): the
pages' session slides with use, the API's bearer tokens do not."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import User
from app.services.auth import issue_token, unauthorized


def renewed_token(
    session: Session, *, username: str, session_id: str, secret: str, ttl_seconds: int
) -> str:
    """A fresh token for a user whose current token was just accepted, through the one issue
    path (`auth.issue_token`): the user's current role and token version, and the same session
    id, so that a logout ends the renewed tokens too."""
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None or not user.active:
        raise unauthorized("The account is disabled or has changed. Log in again.")
    return issue_token(user=user, secret=secret, ttl_seconds=ttl_seconds, session_id=session_id)
