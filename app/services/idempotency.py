"""Idempotency-Key handling: replay a finished request, refuse a changed one or one in flight.

A key is claimed in its own short transaction (state `in_flight`, with a lease); the use case
marks it `done` with its response inside the use case's own transaction, so the response is
stored exactly when the work is committed. A refused request releases the key (nothing stays
behind); a process that dies mid-request leaves a lease that expires, after which a retry runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.engine import Database
from app.db.models import IdempotencyKey
from app.domain.errors import Conflict, InvalidInput, MalformedRequest
from app.services.actor import Actor
from app.services.transaction import utcnow, writing

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Claim:
    username: str
    key: str


def request_fingerprint(endpoint: str, body: object) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{endpoint}\n{canonical}".encode()).hexdigest()


def claim(
    db: Database, *, actor: Actor, key: str, endpoint: str, fingerprint: str, lease_seconds: int
) -> Claim | Replay:
    """Claim the key for this request, or return the stored response to replay."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise MalformedRequest(
            "validation_error",
            f"The Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} printable characters.",
        )
    for attempt in range(2):
        try:
            return _claim_once(
                db,
                actor=actor,
                key=key,
                endpoint=endpoint,
                fingerprint=fingerprint,
                lease_seconds=lease_seconds,
            )
        except IntegrityError:
            if attempt:  # a concurrent claim of the same key won the insert twice: give up
                raise
    raise AssertionError("unreachable")


def _claim_once(
    db: Database, *, actor: Actor, key: str, endpoint: str, fingerprint: str, lease_seconds: int
) -> Claim | Replay:
    with db.write() as session:
        now = utcnow()
        lease = now + timedelta(seconds=lease_seconds)
        if _insert_new(session, actor, key, endpoint, fingerprint, now=now, lease=lease):
            return Claim(actor.username, key)
        row = session.execute(
            select(IdempotencyKey)
            .where(IdempotencyKey.username == actor.username, IdempotencyKey.key == key)
            .with_for_update()
        ).scalar_one_or_none()
        if row is None:  # the key was purged between the two statements: claim it anew
            session.add(IdempotencyKey(**_new_row(actor, key, endpoint, fingerprint, now, lease)))
            session.flush()
            return Claim(actor.username, key)
        if row.endpoint != endpoint or row.request_sha256 != fingerprint:
            raise InvalidInput(
                "idempotency_conflict",
                "This Idempotency-Key was already used for a different request. "
                "Use a new key for a new request.",
            )
        if row.state == "done":
            assert row.response_status is not None and row.response_body is not None
            return Replay(row.response_status, json.loads(row.response_body))
        if row.lease_until > now:
            raise Conflict(
                "idempotency_in_flight",
                "The same request is still being processed. Wait a moment and retry "
                "with the same Idempotency-Key.",
            )
        row.lease_until = lease
        return Claim(actor.username, key)


def _insert_new(
    session: Session,
    actor: Actor,
    key: str,
    endpoint: str,
    fingerprint: str,
    *,
    now: datetime,
    lease: datetime,
) -> bool:
    """The common case in one statement: a new key is inserted in flight (INSERT ... ON
    CONFLICT DO NOTHING); False when the key exists, which the caller then reads and locks."""
    made = session.execute(
        _CLAIM[session.get_bind().dialect.name],
        _new_row(actor, key, endpoint, fingerprint, now, lease),
    ).first()
    return made is not None


_CLAIM = {
    name: insert(IdempotencyKey).on_conflict_do_nothing().returning(IdempotencyKey.id)
    for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}
"""The claim's statement per dialect, built once."""


def _new_row(
    actor: Actor, key: str, endpoint: str, fingerprint: str, now: datetime, lease: datetime
) -> dict[str, Any]:
    """The columns of a key claimed now, in flight until `lease`."""
    return {
        "username": actor.username,
        "key": key,
        "endpoint": endpoint,
        "request_sha256": fingerprint,
        "state": "in_flight",
        "created_at": now,
        "lease_until": lease,
    }


def complete(session: Session, *, claim: Claim, status: int, body: dict[str, Any]) -> None:
    """Store the response in the use case's own transaction (one UPDATE, no read: the claim
    made the row)."""
    done = session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.username == claim.username, IdempotencyKey.key == claim.key)
        .values(
            state="done",
            response_status=status,
            response_body=json.dumps(body, sort_keys=True, default=str),
        )
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise RuntimeError(f"Idempotency-Key {claim.key!r} vanished before its response")


def release(db: Database, claim: Claim) -> None:
    """Forget an in-flight claim whose request was refused, so that nothing stays behind."""
    with db.write() as session:
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.username == claim.username,
                IdempotencyKey.key == claim.key,
                IdempotencyKey.state == "in_flight",
            )
        )


def run(
    db: Database,
    *,
    actor: Actor,
    key: str | None,
    endpoint: str,
    payload: object,
    lease_seconds: int,
    work: Callable[[Session], tuple[int, dict[str, Any]]],
) -> tuple[int, dict[str, Any], bool]:
    """Run `work` in one writing transaction at most once per key: (status, body, replayed)."""
    if key is None:
        with writing(db) as session:
            status, body = work(session)
        return status, body, False
    claimed = claim(
        db,
        actor=actor,
        key=key,
        endpoint=endpoint,
        fingerprint=request_fingerprint(endpoint, payload),
        lease_seconds=lease_seconds,
    )
    if isinstance(claimed, Replay):
        return claimed.status, claimed.body, True
    try:
        with writing(db) as session:
            status, body = work(session)
            complete(session, claim=claimed, status=status, body=body)
    except BaseException:
        release(db, claimed)
        raise
    return status, body, False
