"""Login throttling with exponential backoff, by key, reserved atomically before any password is
checked (docs/decisions.md, "Logins").

Keys: a request from a device that has logged in as the user before (it carries a device proof)
is counted under that device only; any other request under its (source, user name), its source
and its user name. Each key allows some failures, then asks for a delay that doubles with each
further failure. An attempt is reserved, that is counted as a failure in advance, in one
transaction that holds the rows of its keys locked (sorted, so two attempts never wait for each
other in a cycle; SQLite's writers are serialized anyway); a success gives it back. So N parallel
wrong passwords cause at most the allowed number of password checks, and an outsider hammering
a user name never delays the user's own known devices."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db.credentials import LoginThrottle
from app.db.engine import Database
from app.db.models import Base
from app.services import audit
from app.settings import Settings

NAME_CHARS = 80
SOURCE_CHARS = 64


@dataclass(frozen=True)
class LoginAttempt:
    """Who tried to log in, as the audit trail records an attempt (no user is logged in)."""

    username: str
    audit_role: str = "anonymous"


ANONYMOUS = LoginAttempt("anonymous")
"""Who a failed login is recorded as: nobody logged in, whatever name was tried (the name is
the entry's entity, or in its `after`), so a tried name such as `system:demo` or another user's
never appears as the one who acted."""


@dataclass(frozen=True)
class ThrottleKey:
    key: str
    kind: str
    """`device`, `source_user`, `user` or `source`."""
    free: int
    """Failures allowed before the delays start."""


@dataclass(frozen=True)
class Reserved:
    created: bool
    """A new key row was made: time to forget the stale ones."""
    failures: int
    """Of the first key (the device, or the source and user name) including this attempt."""
    delayed: bool
    """This attempt started a delay on one of its keys."""


@dataclass(frozen=True)
class Refused:
    retry_after: int
    """Seconds until every key of the attempt allows another one."""


def keys_for(
    *, settings: Settings, source: str, username: str, device_id: str | None
) -> tuple[ThrottleKey, ...]:
    """The keys an attempt is counted under; the first one decides what is audited."""
    name, where = username[:NAME_CHARS], source[:SOURCE_CHARS]
    free = settings.login_free_failures
    if device_id is not None:
        return (ThrottleKey(f"device:{device_id}", "device", free),)
    return (
        ThrottleKey(f"source_user:{where}|{name}", "source_user", free),
        ThrottleKey(f"user:{name}", "user", settings.login_account_free_failures),
        ThrottleKey(f"source:{where}", "source", settings.login_source_free_failures),
    )


def backoff_seconds(*, settings: Settings, beyond: int) -> float:
    """The delay after the `beyond`-th failure past the free ones (0 for the first delay)."""
    factor = 2.0 ** min(beyond, 40)
    return float(
        min(settings.login_backoff_max_seconds, settings.login_backoff_base_seconds * factor)
    )


def insert_ignoring_conflict(session: Session, model: type[Base], values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING (both engines); True if a row was made. Two attempts
    that make the same row at once both go on, instead of one failing."""
    postgres = session.get_bind().dialect.name == "postgresql"
    insert = postgresql.insert if postgres else sqlite.insert
    result = session.execute(insert(model).values(**values).on_conflict_do_nothing())
    return bool(getattr(result, "rowcount", 0))


def stale_keys(session: Session, query: Select[str]) -> Select[str]:
    """`query` (keys of rows to delete) skipping the rows another transaction holds on
    PostgreSQL, so that a clean-up never waits for, or deadlocks with, a login or logout."""
    if session.get_bind().dialect.name == "postgresql":
        return query.limit(1000).with_for_update(skip_locked=True)
    return query.limit(1000)


def _lock(
    session: Session, *, keys: Sequence[str], now: datetime
) -> tuple[dict[str, LoginThrottle], bool]:
    """The rows of `keys`, made if missing, locked until commit (in key order)."""
    ordered = sorted(set(keys))
    created = False
    for key in ordered:
        values = {"key": key, "failures": 0, "last_failure_at": now, "refusals": 0}
        created = insert_ignoring_conflict(session, LoginThrottle, values) or created
    rows = session.execute(
        select(LoginThrottle)
        .where(LoginThrottle.key.in_(ordered))
        .order_by(LoginThrottle.key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalars()
    return {row.key: row for row in rows}, created


def reserve(
    session: Session,
    *,
    settings: Settings,
    keys: Sequence[ThrottleKey],
    username: str,
    source: str,
    now: datetime,
) -> Reserved | Refused:
    """Count this attempt as a failure under every key, or refuse it while a delay runs (the
    first refusal of each delay is audited, with the failures that led to it)."""
    rows, created = _lock(session, keys=[k.key for k in keys], now=now)
    window = timedelta(seconds=settings.login_failure_window_seconds)
    for row in rows.values():
        if now - row.last_failure_at > window and not _blocked(row, now):
            row.failures, row.blocked_until, row.refusals = 0, None, 0
    waiting = [key for key in keys if _blocked(rows[key.key], now)]
    if waiting:
        for key in waiting:
            row = rows[key.key]
            if row.refusals == 0:
                _audit_delay(session, key=key, row=row, username=username, source=source, now=now)
            row.refusals += 1
        until = max(rows[key.key].blocked_until or now for key in waiting)
        return Refused(retry_after=max(1, math.ceil((until - now).total_seconds())))
    delayed = False
    for key in keys:
        row = rows[key.key]
        row.failures += 1
        row.last_failure_at = now
        if row.failures >= key.free:
            delay = backoff_seconds(settings=settings, beyond=row.failures - key.free)
            row.blocked_until, row.refusals = now + timedelta(seconds=delay), 0
            delayed = True
    return Reserved(created=created, failures=rows[keys[0].key].failures, delayed=delayed)


def give_back(session: Session, *, keys: Sequence[ThrottleKey], now: datetime) -> None:
    """A reserved attempt succeeded: the first key starts afresh; the shared keys (user name,
    source) take back the one failure counted in advance."""
    rows, _ = _lock(session, keys=[k.key for k in keys], now=now)
    for index, key in enumerate(keys):
        row = rows[key.key]
        row.failures = 0 if index == 0 else max(0, row.failures - 1)
        if row.failures < key.free:
            row.blocked_until, row.refusals = None, 0


def forget_stale(db: Database, *, settings: Settings, now: datetime) -> None:
    """Delete the keys whose failures are forgotten, in a transaction of their own; rows that
    another attempt holds are skipped (PostgreSQL), so this never waits for one."""
    cut = now - timedelta(seconds=settings.login_failure_window_seconds)
    with db.write() as session:
        stale = (
            select(LoginThrottle.key)
            .where(LoginThrottle.last_failure_at < cut)
            .where((LoginThrottle.blocked_until.is_(None)) | (LoginThrottle.blocked_until < now))
        )
        session.execute(
            delete(LoginThrottle).where(LoginThrottle.key.in_(stale_keys(session, stale)))
        )


def is_audited(reserved: Reserved) -> bool:
    """A wrong password is audited only when it is the first of its key in the window or
    started a delay, so that a flood of attempts leaves a bounded trail."""
    return reserved.failures == 1 or reserved.delayed


def audit_failure(
    session: Session, *, username: str, source: str, reserved: Reserved, known_device: bool
) -> bool:
    """Audit a wrong password if `is_audited`; True if an entry was made."""
    if not is_audited(reserved):
        return False
    name = username[:NAME_CHARS]
    audit.record(
        session,
        actor=ANONYMOUS,
        action="auth.login_failed",
        entity="user",
        entity_id=name,
        before=None,
        after={
            "source": source[:SOURCE_CHARS],
            "known_device": known_device,
            "failures_in_window": reserved.failures,
            "delay_started": reserved.delayed,
        },
    )
    return True


def _blocked(row: LoginThrottle, now: datetime) -> bool:
    return row.blocked_until is not None and row.blocked_until > now


def _audit_delay(
    session: Session,
    *,
    key: ThrottleKey,
    row: LoginThrottle,
    username: str,
    source: str,
    now: datetime,
) -> None:
    entity, entity_id = (
        ("login_source", source[:SOURCE_CHARS])
        if key.kind == "source"
        else (
            "user",
            username[:NAME_CHARS],
        )
    )
    until = row.blocked_until or now
    audit.record(
        session,
        actor=ANONYMOUS,
        action="auth.login_throttled",
        entity=entity,
        entity_id=entity_id,
        before=None,
        after={
            "throttled_by": key.kind,
            "username": username[:NAME_CHARS],
            "source": source[:SOURCE_CHARS],
            "failures_in_window": row.failures,
            "retry_after_seconds": max(1, math.ceil((until - now).total_seconds())),
        },
    )
