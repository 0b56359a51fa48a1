"""The tables of who may act, besides the users themselves: login throttling, ended login
sessions and personal tokens (app/services/throttle.py, auth.py, personal_tokens.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.models import Base
from app.db.types import UTCDateTime


class LoginThrottle(Base):
    """The login attempts of one key (a source, a source and user name, a user name from unknown
    devices, or a known device), locked while an attempt is reserved (app/services/throttle.py).
    Forgotten once `last_failure_at` is older than the window and no delay is running."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    refusals: Mapped[int] = mapped_column(Integer, default=0)
    """Attempts refused during the current delay (the first one is audited)."""


class RevokedToken(Base):
    """A login session ended by logout: every token carrying its `sid` claim is refused. Kept
    until every such token would have expired anyway."""

    __tablename__ = "revoked_tokens"
    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ApiToken(Base):
    """A personal token for `irt` (migration 0009): only its SHA-256 is kept; revoked, never
    deleted, so the trail can still name the token a command ran with."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
