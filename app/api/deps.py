"""Request dependencies: database, study definition, the authenticated actor and role checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request
from fastapi.security import OAuth2PasswordBearer

from app.db.engine import Database
from app.domain.errors import NotPermitted
from app.domain.roles import Role
from app.domain.study import StudyDefinition
from app.services import attempts
from app.services.actor import Actor
from app.services.auth import actor_from_token, unauthorized
from app.services.idempotency import MAX_KEY_LENGTH
from app.settings import Settings

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_study(request: Request) -> StudyDefinition:
    study: StudyDefinition = request.app.state.study
    return study


DB = Annotated[Database, Depends(get_db)]
StudyDep = Annotated[StudyDefinition, Depends(get_study)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def client_source(request: Request) -> str:
    """The client's address as the app sees it: the peer, or what a trusted proxy reports
    (IRT_FORWARDED_ALLOW_IPS); what logins are throttled by."""
    return request.client.host if request.client else "unknown"


def current_actor(
    db: DB, settings: SettingsDep, token: Annotated[str | None, Depends(oauth2)]
) -> Actor:
    if not token:
        raise unauthorized("Log in first: this request needs a bearer token.")
    with db.read() as session:
        return actor_from_token(session, token=token, secret=settings.secret_key)


def require(*roles: Role) -> Callable[..., Actor]:
    """A dependency admitting only the given roles (403 `forbidden` for any other, recorded in
    the audit trail as `request.forbidden`)."""
    allowed = frozenset(roles)

    def check(actor: Annotated[Actor, Depends(current_actor)], db: DB, request: Request) -> Actor:
        if actor.role not in allowed:
            attempts.record_forbidden(db, actor=actor, method=request.method, path=request.url.path)
            raise NotPermitted("forbidden", f"Your role ({actor.role}) may not do this.")
        return actor

    check.allowed_roles = allowed  # type: ignore[attr-defined]
    return check


KEY_REQUIRED = "x-irt-key-required"
"""Marks the Idempotency-Key of a command that refuses to run without one; app/api/contract.py
makes the header required in the OpenAPI document there, and only there."""


def _key_header(use: str, *, required: bool) -> Any:
    """The Idempotency-Key header: one format, and what this command does without a key."""
    return Header(
        alias="Idempotency-Key",
        description="Client-chosen key, 1 to 200 printable ASCII characters; a retry with the "
        f"same key gets the first answer back. {use}",
        max_length=MAX_KEY_LENGTH,
        pattern=r"^[ -~]+$",
        json_schema_extra={KEY_REQUIRED: True} if required else None,
    )


IdempotencyKeyHeader = Annotated[
    str | None,
    _key_header(
        "This command refuses to run without one (400 idempotency_key_required): it "
        "allocates, reveals or moves places, which a blind retry must never do twice.",
        required=True,
    ),
]
OptionalIdempotencyKeyHeader = Annotated[
    str | None,
    _key_header(
        "Optional here: without one, a repeated request is refused by the state it finds "
        "(e.g. a screening number already registered).",
        required=False,
    ),
]


MAX_ID = 2**31 - 1
"""Row ids are 32-bit INTEGER columns on PostgreSQL: a larger number can name no row, and
sending it to the database would fail there (500) instead of answering the client."""
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
